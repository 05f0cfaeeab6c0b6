"""1:1 comparison of two photos: the use case behind ``entryexit compare``."""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.biometrics import FaceAnalysis, compare_templates
from entryexit.errors import BiometricError
from entryexit.services.ports import FaceAnalyser


@dataclass(frozen=True, slots=True)
class Comparison:
    similarity: float
    threshold: float
    first: FaceAnalysis
    second: FaceAnalysis

    @property
    def is_match(self) -> bool:
        return self.similarity >= self.threshold


def _analyse(engine: FaceAnalyser, data: bytes, label: str) -> FaceAnalysis:
    try:
        return engine.analyse(data)
    except BiometricError as exc:
        raise type(exc)(f"{label}: {exc.message}") from exc


def compare_photos(
    engine: FaceAnalyser,
    first: bytes,
    second: bytes,
    threshold: float,
    labels: tuple[str, str] = ("first photo", "second photo"),
) -> Comparison:
    """Analyse both photos and compare their subjects at ``threshold``.

    A decode or no-face error names the photo (by ``labels``) it came from.
    """
    first_analysis = _analyse(engine, first, labels[0])
    second_analysis = _analyse(engine, second, labels[1])
    score = compare_templates([first_analysis.template], [second_analysis.template])[0, 0]
    return Comparison(float(score), threshold, first_analysis, second_analysis)
