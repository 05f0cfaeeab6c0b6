"""``entryexit evaluate lfw``: accuracy of the face engine on labelled photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.cli.fingerprints import evaluate_fingerprints
from entryexit.domain.policy import DEFAULT_OPERATING_POINT
from entryexit.errors import InvalidInputError

if TYPE_CHECKING:
    from entryexit.biometrics import FaceEngine
    from entryexit.evaluation.bursts import BurstRun
    from entryexit.evaluation.crossval import CrossValidation
    from entryexit.evaluation.gallery import GalleryRun
    from entryexit.services.thresholds import OperatingThresholds

# Each command imports the face engine and the evaluation code when it runs: `entryexit
# --help` and the commands that need neither start without loading them.

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
    from tqdm import tqdm

    from entryexit.bootstrap import build_face_engine
    from entryexit.evaluation.lfw import LfwRun, default_pairs_file, evaluate_lfw

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
    from tqdm import tqdm

    from entryexit.bootstrap import build_face_engine, operating_thresholds
    from entryexit.evaluation.fairness import FairnessRun, evaluate_fairness

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
    folds: Annotated[
        int,
        typer.Option(
            help="Person-disjoint cross-validated calibration: folds (0: none). Embeds every"
            " image with the reference recipe too (once, with --cache).",
            min=0,
        ),
    ] = 3,
    repeats: Annotated[int, typer.Option(help="Fresh fold shuffles.", min=1)] = 3,
    split_flights: Annotated[
        int, typer.Option(help="Flights per split on each side (fit, held out).", min=1)
    ] = 20,
    confidence: Annotated[
        float,
        typer.Option(
            help="The shipped threshold is this quantile of the fitted threshold over a"
            " person bootstrap (0.5: no margin).",
            min=0.5,
            max=0.999,
        ),
    ] = 0.9,
    compare_normalisation: Annotated[
        bool,
        typer.Option(
            help="Also cross-validate Z-norm and adaptive S-norm scores (cohort: another"
            " fold's reference templates; needs --folds 3 or more)."
        ),
    ] = False,
    frames: Annotated[
        int,
        typer.Option(
            help="Multi-frame capture: measure probes fused from k = 1..FRAMES frames instead"
            " (a lower bound from synthetic bursts of one photo, an upper one from different"
            " photos of the person; FNIR at FPIR 1e-3 and CPU time per frame).",
            min=1,
            max=10,
        ),
    ] = 1,
    timed_bursts: Annotated[
        int,
        typer.Option(help="With --frames: bursts whose CPU time is measured (0: none).", min=0),
    ] = 40,
) -> int:
    """Open-set 1:N on flight-sized galleries: rank-1, FNIR at FPIR 1e-2 and 1e-3 (per draw),
    their spread, the deployed gallery threshold's FNIR/FPIR, CMC and FNIR-vs-FPIR plots;
    then (``--folds``) the threshold fitted on some persons and measured on the others."""
    from tqdm import tqdm

    from entryexit.bootstrap import build_face_engine, operating_thresholds
    from entryexit.evaluation.bursts import BurstRun
    from entryexit.evaluation.crossval import RAW, SCORINGS, CrossValidation
    from entryexit.evaluation.gallery import GalleryRun, evaluate_gallery

    settings = load_settings()
    engine = build_face_engine(settings)
    thresholds = operating_thresholds(settings, engine)
    if frames > 1:
        _bursts(
            engine,
            thresholds,
            BurstRun(
                data_dir=data,
                out_dir=out,
                frames=frames,
                gallery_size=_burst_gallery_size(gallery_size),
                draws=draws,
                seed=seed,
                threads=threads,
                same_person_file=same_person,
                cache_dir=cache,
                latency_sample=timed_bursts,
            ),
        )
        return 0
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
    if folds >= 2:
        config = CrossValidation(
            folds=folds,
            repeats=repeats,
            draws=split_flights,
            gallery_size=run.gallery_size or 300,
            confidence=confidence,
            seed=seed,
            scorings=SCORINGS if compare_normalisation else (RAW,),
        )
        _cross_validated(engine, run, config, out, cache, threads, same_person, quality_gate)
    return 0


def _burst_gallery_size(text: str) -> int:
    size = _gallery_size(text)
    if size is None:
        raise InvalidInputError("--frames needs a numeric --gallery-size")
    return size


def _bursts(engine: FaceEngine, thresholds: OperatingThresholds, run: BurstRun) -> None:
    from tqdm import tqdm

    from entryexit.evaluation.bursts import evaluate_bursts

    frames, size, out = run.frames, run.gallery_size, run.out_dir
    calibrated = thresholds.gallery_thresholds_by_frames(DEFAULT_OPERATING_POINT, frames)
    with tqdm(desc="embedding (photos, references, bursts)", unit="img", disable=None) as bar:
        summary = evaluate_bursts(
            engine,
            run,
            calibrated,
            on_total=lambda n: setattr(bar, "total", n),
            on_progress=bar.update,
        )
    typer.echo(
        f"{summary['draws']} flights of {size}; {summary['persons_with_k_plus_1_photos']}"
        f" persons with {frames + 1}+ photos for the different-photos bound"
    )
    typer.echo("k  FNIR@FPIR1e-3 synthetic (lower)  different photos (upper)  threshold shift")
    for k in range(1, frames + 1):
        low = summary["lower_synthetic"][str(k)]
        high = summary["upper_different_photos"][str(k)]
        shift = summary["threshold_shift"][str(k)]
        low_shift, high_shift = shift["lower_synthetic"], shift["upper_different_photos"]
        typer.echo(
            f"{k}  {low['fnir_at_fpir_1e-3']['mean'] * 100:6.2f}%"
            f" (FTA {low['failure_to_acquire'] * 100:.2f}%)"
            f"           {high['fnir_at_fpir_1e-3']['mean'] * 100:6.2f}%"
            f"                  {low_shift:+.3f} / {high_shift:+.3f}"
        )
        if "at_threshold" in low:
            low_at, high_at = low["at_threshold"], high["at_threshold"]
            typer.echo(
                f"   at the calibrated {low_at['threshold']:.3f}: FNIR"
                f" {low_at['fnir'] * 100:.2f}% / {high_at['fnir'] * 100:.2f}%,"
                f" FPIR {low_at['fpir']:.2e} / {high_at['fpir']:.2e}"
            )
    if "cpu_seconds" in summary:
        cpu = summary["cpu_seconds"]
        per_burst = ", ".join(f"k={k}: {v * 1000:.0f} ms" for k, v in cpu["per_burst"].items())
        typer.echo(
            f"CPU time per burst ({cpu['bursts_timed']} bursts): {per_burst};"
            f" added per frame {cpu['added_per_frame'] * 1000:.0f} ms"
        )
    typer.echo(f"wrote {out}/bursts.json")


def _cross_validated(
    engine: FaceEngine,
    run: GalleryRun,
    config: CrossValidation,
    out: Path,
    cache: Path | None,
    threads: int,
    same_person: Path | None,
    quality_gate: bool,
) -> None:
    from tqdm import tqdm

    from entryexit.evaluation.crossval import (
        RAW,
        calibrate_on_everyone,
        calibration_toml,
        cross_validate,
        embed_population,
        summarise,
    )

    with tqdm(desc="embedding (every image, both recipes)", unit="img", disable=None) as bar:
        population, facts = embed_population(
            engine,
            run.data_dir,
            cache,
            threads,
            same_person,
            quality_gate=quality_gate,
            on_total=lambda n: setattr(bar, "total", n),
            on_progress=bar.update,
        )
    fixed = {"deployed": run.operating_threshold} if run.operating_threshold else {}
    result = cross_validate(population, config)
    summary = summarise(result, config, fixed)
    everyone = calibrate_on_everyone(population, config, (1e-2, config.target))
    command = (
        f"entryexit evaluate gallery --data {run.data_dir} --folds {config.folds}"
        f" --repeats {config.repeats} --split-flights {config.draws} --seed {config.seed}"
        f" --confidence {config.confidence}"
        + (" --compare-normalisation" if len(config.scorings) > 1 else "")
        + (f" --same-person {same_person}" if same_person else "")
        + ("" if quality_gate else " --no-quality-gate")
    )
    target = config.target
    typer.echo(
        f"\ncross-validated on held-out persons ({config.folds} folds x {config.repeats}"
        f" repeats, {config.draws} flights per split side; target FPIR {target:g} on"
        f" {config.gallery_size} travelers, on smaller flights the same per-entry rate):"
    )
    for key, entry in summary.items():
        references, scoring = key.split(":")
        size = result["gallery_sizes"][int(references)]
        for rule, label in (
            ("point", "fitted, no margin (previous method)"),
            ("confident", f"per reference count, {config.confidence:g} bound (shipped)"),
            ("confident_one_threshold", "one threshold for 1 and 2 references"),
            *((name, f"at the {name} threshold") for name in fixed if scoring == RAW),
        ):
            rates = entry[rule]
            flights = rates["fpir_per_flight"]
            typer.echo(
                f"  {references} ref, {size} travelers, {scoring:7s} {label:38s}"
                f" FPIR {rates['fpir']:.2e} ({rates['fpir_to_target']:.2f}x target;"
                f" flights p5-p95 {flights['p5']:.1e}-{flights['p95']:.1e})"
                f"  FNIR {rates['fnir'] * 100:.2f}%"
            )
    typer.echo(
        f"\nthe shipped rule on held-out persons (each entry at its reference count's"
        f" threshold; target FPIR {target:g}, band {0.5 * target:g}-{1.5 * target:g}):"
    )
    for count in config.references:
        rates = summary[f"{count}:{RAW}"]["confident"]
        flights = rates["fpir_per_flight"]
        splits = rates["fpir_per_split"]
        within = 0.5 <= rates["fpir_to_target"] <= 1.5
        scaled = summary[f"{count}:{RAW}"]["target"]
        size = result["gallery_sizes"][count]
        typer.echo(
            f"  {count} ref, {size} travelers: FPIR {rates['fpir']:.2e} achieved vs"
            f" {scaled:.2e} target ({target:g} on {config.gallery_size} travelers)"
            f" ({rates['fpir_to_target']:.2f}x, {'within' if within else 'OUTSIDE'} the band;"
            f" {rates['false_positives']} of {rates['non_mated_searches']:,});"
            f" per flight p5 / median / p95 {flights['p5']:.1e} / {flights['median']:.1e} /"
            f" {flights['p95']:.1e}, {flights['share_of_flights_above_1_5x'] * 100:.0f}% of"
            f" flights above 1.5x; per split median {splits['median']:.1e}, max"
            f" {splits['max']:.1e}; FNIR {rates['fnir'] * 100:.2f}%"
        )
    shipped = everyone["shipped"]
    for scoring in config.scorings:
        values = ", ".join(f"FPIR {rate} -> {t:.4f}" for rate, t in shipped[scoring].items())
        typer.echo(f"thresholds fitted on everyone ({scoring}, strictest): {values}")
        for references, rates_of in everyone["shipped_by_references"][scoring].items():
            values = ", ".join(f"FPIR {rate} -> {t:.4f}" for rate, t in rates_of.items())
            typer.echo(f"  {references} ref ({scoring}): {values}")
    (out / "crossval.json").write_text(
        json.dumps(
            {"facts": facts, "splits": result["splits"], "summary": summary, "everyone": everyone},
            indent=2,
        ),
        encoding="utf-8",
    )
    (out / "calibration.toml").write_text(
        calibration_toml(engine.recipe, everyone, summary, config, facts, command),
        encoding="utf-8",
    )
    typer.echo(f"wrote {out}/crossval.json and the cross-validated calibration.toml")


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
