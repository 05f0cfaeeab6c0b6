"""``entryexit evaluate lfw``: accuracy of the face engine on labelled photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from entryexit.bootstrap import build_face_engine, operating_thresholds
from entryexit.cli._common import load_settings
from entryexit.cli.fingerprints import evaluate_fingerprints
from entryexit.domain.policy import DEFAULT_OPERATING_POINT
from entryexit.errors import InvalidInputError
from entryexit.evaluation.fairness import FairnessRun, evaluate_fairness
from entryexit.evaluation.gallery import GalleryRun, evaluate_gallery
from entryexit.evaluation.lfw import LfwRun, default_pairs_file, evaluate_lfw

# Embedding a data set is the slow part of every evaluation; runs can share it.
CacheOption = Annotated[
    Path | None,
    typer.Option(help="Folder to keep embeddings in between runs (keyed by model+files)."),
]

app = typer.Typer(help="Measure accuracy on labelled photo collections.", no_args_is_help=True)


@app.command("lfw")
def lfw(
    data: Annotated[Path, typer.Option(help="LFW folder (lfw-dev layout or person/image tree).")],
    out: Annotated[Path, typer.Option(help="Where to write scores, summary and plots.")] = Path(
        "evaluation-lfw"
    ),
    pairs: Annotated[
        Path | None, typer.Option(help="pairs-dev.tsv or LFW pairs.txt (default: found in --data).")
    ] = None,
    impostors: Annotated[
        int, typer.Option(help="Extra impostor pairs drawn from different persons.", min=0)
    ] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed for the impostor draw.")] = 0,
    threads: Annotated[int, typer.Option(help="Parallel embedding threads.", min=1)] = 2,
    reference_recipe: Annotated[
        bool,
        typer.Option(
            help="Score each pair as the service does: the first photo as an enrolled reference"
            " (multi-crop template), the second as a live capture."
        ),
    ] = False,
    cache: CacheOption = None,
) -> int:
    """LFW verification: 10-fold accuracy, TAR at FAR 1e-2/1e-3, EER, ROC and DET plots."""
    settings = load_settings()
    engine = build_face_engine(settings)
    run = LfwRun(
        data_dir=data,
        pairs_file=pairs or default_pairs_file(data),
        out_dir=out,
        impostor_pairs=impostors,
        seed=seed,
        threads=threads,
        reference_recipe=reference_recipe,
        cache_dir=cache,
    )
    with tqdm(desc="embedding", unit="img", disable=None) as bar:
        summary = evaluate_lfw(
            engine, run, on_total=lambda n: setattr(bar, "total", n), on_progress=bar.update
        )
    accuracy = summary["accuracy_10fold"]
    typer.echo(
        f"pairs: {summary['matched_pairs']} matched, {summary['mismatched_pairs']} mismatched;"
        f" {summary['drawn_impostor_pairs']} drawn impostor pairs (seed {seed})"
    )
    typer.echo(f"10-fold accuracy: {accuracy['mean'] * 100:.2f}% ± {accuracy['std'] * 100:.2f}")
    for point in summary["operating_points"]:
        typer.echo(
            f"TAR at FAR {point['far']:g}: {point['tar'] * 100:.2f}%"
            f" (threshold {point['threshold']:.4f})"
        )
    typer.echo(f"EER: {summary['eer'] * 100:.2f}%")
    typer.echo(
        f"failure to enrol: {summary['failure_to_enrol']} of {summary['images']} images"
        f" ({summary['pairs_with_failure_to_enrol']} pairs scored as non-matches)"
    )
    typer.echo(f"wrote {out}/summary.json, scores.txt, roc.png, det.png")
    return 0


@app.command("fairness")
def fairness(
    data: Annotated[Path, typer.Option(help="Folder of labelled photos (person/image).")],
    labels: Annotated[Path, typer.Option(help="image<TAB>value file (e.g. lfw-dev's sex.tsv).")],
    attribute: Annotated[str, typer.Option(help="What the labels are (for the report).")] = "sex",
    out: Annotated[Path, typer.Option(help="Where to write JSON, Markdown and plots.")] = Path(
        "evaluation-fairness"
    ),
    target_fmr: Annotated[
        float, typer.Option(help="Overall FMR for the second operating point.")
    ] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed for pair draws, flights and bootstrap.")] = 0,
    threads: Annotated[int, typer.Option(help="Parallel embedding threads.", min=1)] = 2,
    reference_recipe: Annotated[
        bool,
        typer.Option(
            help="Open set: embed gallery entries with the service's reference recipe"
            " (--no-reference-recipe: the capture recipe, faster)."
        ),
    ] = True,
    cache: CacheOption = None,
) -> int:
    """FMR and FNMR per group (with person-bootstrap intervals and the ratio to the lowest
    group) at the deployed threshold and at one set for an overall FMR, plus open-set FNIR and
    FPIR per group on seeded flights."""
    settings = load_settings()
    engine = build_face_engine(settings)
    thresholds = operating_thresholds(settings, engine)
    run = FairnessRun(
        data_dir=data,
        labels_file=labels,
        out_dir=out,
        attribute=attribute,
        deployed_threshold=thresholds.verification_threshold(DEFAULT_OPERATING_POINT),
        gallery_threshold=thresholds.gallery_threshold(DEFAULT_OPERATING_POINT),
        target_fmr=target_fmr,
        seed=seed,
        threads=threads,
        reference_recipe=reference_recipe,
        cache_dir=cache,
    )
    with tqdm(desc="embedding", unit="img", disable=None) as bar:
        summary = evaluate_fairness(
            engine, run, on_total=lambda n: setattr(bar, "total", n), on_progress=bar.update
        )
    typer.echo((out / "fairness.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {out}/fairness.json, fairness.md, fairness.png ({summary['model']})")
    return 0


@app.command("gallery")
def gallery(
    data: Annotated[Path, typer.Option(help="Folder of labelled photos (person/image).")],
    gallery_size: Annotated[
        str,
        typer.Option(
            help="Travelers per flight, or 'all': everyone with a mated capture on one flight,"
            " everyone else as non-mated captures."
        ),
    ] = "300",
    draws: Annotated[int, typer.Option(help="Seeded random flights.", min=1)] = 50,
    references: Annotated[
        int, typer.Option(help="Reference photos per traveler (fused).", min=1)
    ] = 1,
    out: Annotated[Path, typer.Option(help="Where to write scores, summary and plots.")] = Path(
        "evaluation-gallery"
    ),
    seed: Annotated[int, typer.Option(help="Seed for the flights.")] = 0,
    threads: Annotated[int, typer.Option(help="Parallel embedding threads.", min=1)] = 2,
    reference_recipe: Annotated[
        bool,
        typer.Option(
            help="Embed references with the service's multi-crop enrolment recipe"
            " (--no-reference-recipe: the capture recipe for both)."
        ),
    ] = True,
    quality_gate: Annotated[
        bool,
        typer.Option(
            help="Send captures the service would refuse for quality to recapture (counted"
            " as failure to acquire and in FNIR)."
        ),
    ] = True,
    same_person: Annotated[
        Path | None,
        typer.Option(help="Tab-separated name groups that are one person (label errata)."),
    ] = None,
    cache: CacheOption = None,
) -> int:
    """Open-set 1:N on flight-sized galleries: rank-1, FNIR at FPIR 1e-2 and 1e-3 (per draw),
    their spread, the deployed gallery threshold's FNIR/FPIR, CMC and FNIR-vs-FPIR plots."""
    settings = load_settings()
    engine = build_face_engine(settings)
    thresholds = operating_thresholds(settings, engine)
    run = GalleryRun(
        data_dir=data,
        out_dir=out,
        gallery_size=_gallery_size(gallery_size),
        draws=draws,
        references=references,
        seed=seed,
        threads=threads,
        operating_threshold=thresholds.gallery_threshold(DEFAULT_OPERATING_POINT),
        reference_recipe=reference_recipe,
        quality_gate=quality_gate,
        same_person_file=same_person,
        cache_dir=cache,
    )
    with tqdm(desc="embedding", unit="img", disable=None) as bar:
        summary = evaluate_gallery(
            engine, run, on_total=lambda n: setattr(bar, "total", n), on_progress=bar.update
        )
    rank1 = summary["rank1"]
    flights = summary["draws"]
    typer.echo(
        f"rank-1: {rank1['mean'] * 100:.2f}% ± {rank1['std'] * 100:.2f} over {flights} flights"
    )
    fta = summary["failure_to_acquire"]
    typer.echo(
        f"failure to acquire (quality gate): mated {fta['mated']['mean'] * 100:.2f}%,"
        f" non-mated {fta['non_mated']['mean'] * 100:.2f}% (mated ones count in FNIR)"
    )
    for target, point in summary["fnir_at_fpir"].items():
        typer.echo(
            f"FNIR at FPIR {target}: mean {point['mean'] * 100:.2f}% ± {point['std'] * 100:.2f},"
            f" median {point['median'] * 100:.2f}% (threshold ~{point['threshold_mean']:.3f})"
        )
    operating = summary["at_operating_threshold"]
    fnir, fpir = operating["fnir"]["mean"] * 100, operating["fpir"]["mean"] * 100
    typer.echo(
        f"at the gallery threshold {operating['threshold']}: FNIR {fnir:.2f}%, FPIR {fpir:.2f}%"
    )
    label = "non-mated captures scoring >= 0.9 (probable label errors)"
    typer.echo(f"{label}: {summary['non_mated_above_0_9']}")
    typer.echo(f"failure to enrol: {summary['failure_to_enrol']}")
    calibration = ", ".join(
        f"FPIR {target} -> {threshold:.3f}"
        for target, threshold in summary["calibration"]["gallery_fpir"].items()
    )
    typer.echo(f"calibration (pooled over flights): {calibration}")
    typer.echo(f"wrote {out}/summary.json, calibration.toml, scores.txt, cmc.png, fnir_fpir.png")
    return 0


def _gallery_size(value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        size = int(value)
    except ValueError:
        raise InvalidInputError("--gallery-size is a number of travelers or 'all'") from None
    if size < 2:
        raise InvalidInputError("--gallery-size must be at least 2 travelers")
    return size


app.command("fingerprints")(evaluate_fingerprints)
