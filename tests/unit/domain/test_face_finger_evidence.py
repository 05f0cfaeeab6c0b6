"""The face-and-finger rule: each score as its rarity among impostors (-log10 of the false
match rate its threshold would have), interpolated between calibrated points, capped at the
last one, summed across the two modalities; shown to the officer, never a decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entryexit.domain.fingerprints import (
    combine_face_and_finger,
    combined_target,
    impostor_evidence,
)

FINGER = {1e-2: 0.302, 1e-3: 0.358, 1e-4: 0.502}
FACE = {1e-2: 0.2972, 1e-3: 0.3696, 1e-4: 0.4121}


def test_a_calibrated_threshold_is_worth_its_rate() -> None:
    assert impostor_evidence(0.302, FINGER) == pytest.approx(2.0)
    assert impostor_evidence(0.358, FINGER) == pytest.approx(3.0)
    assert impostor_evidence(0.502, FINGER) == pytest.approx(4.0)
    # Half way between two thresholds: half way in decades.
    assert impostor_evidence(0.330, FINGER) == pytest.approx(2.5)


def test_no_claim_beyond_what_was_measured() -> None:
    # Above the rarest calibrated point: capped there, however high the score.
    assert impostor_evidence(0.99, FINGER) == pytest.approx(4.0)
    # Below the lowest: the first segment extended down, never below zero.
    below = impostor_evidence(0.274, FINGER)
    assert below == pytest.approx(1.5)
    assert impostor_evidence(0.0, FINGER) == 0.0


def test_evidence_rises_with_the_score() -> None:
    scores = [i / 100 for i in range(101)]
    values = [impostor_evidence(s, FACE) for s in scores]
    assert values == sorted(values)


def test_a_calibration_must_rise() -> None:
    with pytest.raises(ValueError, match="rising"):
        impostor_evidence(0.5, {1e-2: 0.4, 1e-3: 0.3})
    with pytest.raises(ValueError, match="two or more"):
        impostor_evidence(0.5, {1e-2: 0.4})


def test_the_sum_is_held_to_what_impostors_reach_together() -> None:
    """Two independent impostor rates multiply, but their product falls below t more often
    than t: the sum is held to the level whose impostor rate is the target."""
    level = combined_target(1e-3)
    t = 10**-level
    assert t * (1 - math.log(t)) == pytest.approx(1e-3, rel=1e-6)
    assert 4.0 < level < 4.02
    # Impostors of two calibrated modalities: uniform, independent rates.
    rng = np.random.default_rng(0)
    rates = rng.uniform(size=(2, 2_000_000))
    summed = -np.log10(rates).sum(axis=0)
    assert (summed >= level).mean() == pytest.approx(1e-3, rel=0.1)
    # Read naively (3 decades for 1e-3), the sum would let about eight times as many through.
    assert (summed >= 3.0).mean() > 7e-3


def test_two_middling_scores_are_not_one_strong_one() -> None:
    # Each modality just at its 1e-2 threshold (2 decades each): 4 decades summed is short
    # of the 1e-3 level (4.01); each at its 1e-3 threshold, 6 decades, reaches it.
    weak = combine_face_and_finger(0.2972, FACE, 0.302, FINGER, 1e-3)
    assert (weak.face, weak.finger) == pytest.approx((2.0, 2.0))
    assert weak.total == pytest.approx(4.0)
    assert not weak.reaches_target
    strong = combine_face_and_finger(0.3696, FACE, 0.358, FINGER, 1e-3)
    assert strong.total == pytest.approx(6.0)
    assert strong.target == pytest.approx(combined_target(1e-3))
    assert strong.reaches_target
    with pytest.raises(ValueError, match="between 0 and 1"):
        combined_target(0.0)
