"""The fused 1:1 score's thresholds for target false accept rates, per engine profile.

Measured with ``entryexit evaluate fingerprints --data ../shared/data/fvc2002-b`` over the
all-impostor extension (every pair of impressions of different fingers: 11,520 pairs over the
four databases, one finger each): the lowest threshold whose impostor rate is at most the
target (1e-2: 115 impostor pairs allowed, single-finger FNMR 4.8% over the 1,120 genuine
pairs; 1e-3: 11 allowed, FNMR 7.6%). The officer's check fuses fingers by the mean of their
scores, whose impostor tail is thinner than one finger's, so one finger's threshold holds the
target (or better) for the fusion too. At 1e-4 the data has about one impostor pair: that row
is just above the largest impostor score seen (0.501), not a measured rate. Recalibrate on the
agency's own prints.

``leader-mcc-v2`` (session 6) the same way, from ``entryexit evaluate fingerprints --extractor
leader-fast`` through ``benchmarks/fingerprint_calibration.py`` (4 decimals: its score is raw
MCC, whose impostors stay under 0.06): 1e-2 allows 115 impostor pairs (114 reach 0.0242,
FNMR 1.9%), 1e-3 allows 11 (11 reach 0.0371, FNMR 2.3%), 1e-4 is just above the largest
impostor score (0.0552; FNMR 4.5%, not a measured rate). The two failures to enrol of DB3_B
count as genuine misses.
"""

from __future__ import annotations

from collections.abc import Mapping

from entryexit.errors import ConfigurationError

FINGERPRINT_CALIBRATION: Mapping[str, Mapping[float, float]] = {
    "nbis-mcc-v1": {1e-2: 0.302, 1e-3: 0.358, 1e-4: 0.502},
    "leader-mcc-v2": {1e-2: 0.0242, 1e-3: 0.0371, 1e-4: 0.0553},
}


def fingerprint_threshold(engine: str, target_far: float) -> float:
    """The threshold of ``engine``'s fused score for ``target_far``."""
    table = FINGERPRINT_CALIBRATION.get(engine)
    if table is None:
        raise ConfigurationError(f"the fingerprint engine {engine!r} has no calibration")
    for calibrated, threshold in table.items():
        if abs(calibrated - target_far) <= 1e-12:
            return threshold
    known = ", ".join(f"{t:g}" for t in sorted(table))
    raise ConfigurationError(
        f"no fingerprint threshold is calibrated for FAR {target_far:g} (calibrated: {known})"
    )
