"""``entryexit compare A B``: 1:1 comparison of two photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings, read_input_file
from entryexit.domain.policy import DEFAULT_OPERATING_POINT

if TYPE_CHECKING:
    from entryexit.biometrics import FaceAnalysis


def compare(
    first: Annotated[Path, typer.Argument(help="First photo (JPEG or PNG).")],
    second: Annotated[Path, typer.Argument(help="Second photo (JPEG or PNG).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    threshold: Annotated[
        float | None,
        typer.Option(help="Decision threshold (default: the calibrated one for FAR 1e-3)."),
    ] = None,
) -> int:
    """Compare the faces in two photos: similarity, decision and each photo's quality."""
    from entryexit.bootstrap import build_face_engine, operating_thresholds
    from entryexit.services.comparison import compare_photos

    settings = load_settings()
    first_bytes = read_input_file(first, "photo", settings.max_image_bytes)
    second_bytes = read_input_file(second, "photo", settings.max_image_bytes)
    engine = build_face_engine(settings)
    resolved_threshold = (
        operating_thresholds(settings, engine).verification_threshold(DEFAULT_OPERATING_POINT)
        if threshold is None
        else threshold
    )
    result = compare_photos(
        engine, first_bytes, second_bytes, resolved_threshold, labels=(str(first), str(second))
    )
    decision = "match" if result.is_match else "no_match"
    if as_json:
        report = {
            "similarity": round(result.similarity, 4),
            "threshold": result.threshold,
            "decision": decision,
            "model": engine.model,
            "images": [
                {"path": str(first), **_image_report(result.first)},
                {"path": str(second), **_image_report(result.second)},
            ],
        }
        typer.echo(json.dumps(report, indent=2))
        return 0
    typer.echo(
        f"similarity {result.similarity:.4f}  threshold {result.threshold:.4f}  ->  {decision}"
    )
    for name, image in ((str(first), result.first), (str(second), result.second)):
        quality = image.quality
        verdict = "ok" if quality.acceptable else "recapture (" + ", ".join(quality.reasons) + ")"
        typer.echo(
            f"{name}: face at {image.subject.box()}, inter-eye {quality.inter_eye_pixels:.0f} px,"
            f" yaw {quality.yaw_degrees:+.0f}°, roll {quality.roll_degrees:+.0f}°,"
            f" sharpness {quality.sharpness:.0f}, brightness {quality.brightness:.0f},"
            f" detector {quality.detector_score:.2f}, other faces {len(image.other_faces)};"
            f" quality {verdict}"
        )
    return 0


def _image_report(analysis: FaceAnalysis) -> dict[str, object]:
    return {
        "face_box": list(analysis.subject.box()),
        "other_faces": len(analysis.other_faces),
        "width": analysis.image_width,
        "height": analysis.image_height,
        "quality": analysis.quality.as_dict(),
    }
