"""The fingerprint profiles' calibration tables (``_calibration.py``)."""

from __future__ import annotations

import pytest

from entryexit.biometrics.fingerprints import ENGINE_KEYS, FingerprintExtractor
from entryexit.biometrics.fingerprints._calibration import fingerprint_threshold
from entryexit.errors import ConfigurationError


def test_calibrated_profiles_have_thresholds_that_tighten_with_the_target() -> None:
    for extractor in (FingerprintExtractor.MINDTCT, FingerprintExtractor.LEADER_FAST):
        key = ENGINE_KEYS[extractor]
        thresholds = [fingerprint_threshold(key, far) for far in (1e-2, 1e-3, 1e-4)]
        assert thresholds == sorted(thresholds)
        assert len(set(thresholds)) == 3
    # The scales differ (fused [0, 1] against raw MCC): never one profile's threshold for another.
    assert fingerprint_threshold("leader-mcc-v2", 1e-3) < fingerprint_threshold("nbis-mcc-v1", 1e-2)
    with pytest.raises(ConfigurationError):
        fingerprint_threshold(ENGINE_KEYS[FingerprintExtractor.LEADER], 1e-3)
