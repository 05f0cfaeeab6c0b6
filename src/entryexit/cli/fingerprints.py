"""``entryexit evaluate fingerprints``: accuracy and speed of the fingerprint engine."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from entryexit.cli._common import load_settings


class Extractor(StrEnum):
    """The engine profiles (``biometrics.fingerprints.FingerprintExtractor``), named here so
    that the command line starts without loading the engine."""

    MINDTCT = "mindtct"
    LEADER = "leader"
    LEADER_FAST = "leader-fast"


def _pct(value: Any) -> str:
    return f"{100.0 * float(value):6.2f}%"


def evaluate_fingerprints(
    data: Annotated[
        Path,
        typer.Option(
            help="FVC-style folder: DB*/<finger>_<impression>.tif|png|wsq, or .iso records"
            " (e.g. ../shared/data/fvc2002-b or its iso19794-2/ folder)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write scores, summary and the DET plot.")] = (
        Path("evaluation-fingerprints")
    ),
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default: ENTRYEXIT_MODEL_DIR).")
    ] = None,
    extractor: Annotated[
        Extractor,
        typer.Option(
            help="Engine profile: mindtct (nbis-mcc-v1), leader (leader-mcc-v1) or"
            " leader-fast (leader-mcc-v2: the same network, fused and cropped)."
        ),
    ] = Extractor.MINDTCT,
) -> int:
    """FVC protocol EER and all-impostor EER, FMR100, FMR1000, ZeroFMR, per database and
    averaged; two-finger fusion; failure to enrol; time per extraction and comparison."""
    from tqdm import tqdm

    from entryexit.biometrics.fingerprints import FingerprintExtractor, open_engine
    from entryexit.evaluation.fingerprints import FingerprintRun, run_fingerprint_evaluation

    engine = open_engine(
        model_dir or load_settings().resolved_model_dir, FingerprintExtractor(extractor.value)
    )
    run = FingerprintRun(data_dir=data, out_dir=out)
    with tqdm(desc="fingerprints", unit="step", disable=None) as bar:
        summary = run_fingerprint_evaluation(
            engine, run, progress=bar.update, total=lambda n: setattr(bar, "total", n)
        )
    databases: list[dict[str, Any]] = summary["databases"]  # type: ignore[assignment]
    average: dict[str, Any] = summary["average"]  # type: ignore[assignment]
    typer.echo(f"engine {summary['engine']}, {summary['kind']}, {data}")
    typer.echo(
        "database   FVC EER    EER      FMR100   FMR1000  ZeroFMR  FTE  2-finger EER"
        "  extract  compare"
    )
    rows = [(d["database"], d, d["failures_to_enrol"]) for d in databases]
    for name, row, fte in [*rows, ("average", average, average["failures_to_enrol"])]:
        fused = row["fused"]
        typer.echo(
            f"{name:9} {_pct(fused['fvc_eer'])} {_pct(fused['eer'])} {_pct(fused['fmr100'])}"
            f" {_pct(fused['fmr1000'])} {_pct(fused['zero_fmr'])} {fte:4d}"
            f" {_pct(row['two_finger_mean']['eer']) if row['two_finger_mean'] else '    n/a'}"
            f"  {row['extraction_ms_median']:5.1f} ms {row['comparison_ms_median']:5.2f} ms"
        )
    typer.echo(f"wrote {out / 'summary.json'}, {out / 'scores.txt'}, {out / 'det.png'}")
    return 0
