"""Quality: NFIQ 2 score and recapture reasons."""

from __future__ import annotations

import numpy as np

from entryexit.biometrics.fingerprints import FingerprintRecaptureReason
from entryexit.biometrics.fingerprints._quality import assess_quality


def test_a_blank_image_is_sent_back_as_blank() -> None:
    quality = assess_quality(np.full((300, 300), 255, np.uint8), np.zeros((0, 2)))
    assert quality.reasons == (FingerprintRecaptureReason.BLANK,)
    assert not quality.acceptable


def test_ridges_without_minutiae_are_too_few_minutiae() -> None:
    _y, x = np.mgrid[0:300, 0:300]
    stripes = (127 + 100 * np.sin(x * 2 * np.pi / 9)).astype(np.uint8)
    quality = assess_quality(stripes, np.zeros((3, 2)))
    assert FingerprintRecaptureReason.TOO_FEW_MINUTIAE in quality.reasons
    assert 0 <= quality.score <= 100
