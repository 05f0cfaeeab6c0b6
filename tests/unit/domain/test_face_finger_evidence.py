"""The face-and-finger rule: each score as its rarity among impostors (-log10 of the false
match rate its threshold would have), interpolated between calibrated points, capped at the
last one, summed across the two modalities; shown to the officer, never a decision."""

from __future__ import annotations

import pytest

from entryexit.domain.fingerprints import combine_face_and_finger, impostor_evidence

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


def test_two_weak_scores_together_can_reach_what_neither_reaches_alone() -> None:
    # Each modality just past its 1e-2 threshold (2 decades): alone, short of 1e-3 (3);
    # together (independent modalities: the rates multiply) 4 decades.
    combined = combine_face_and_finger(0.2972, FACE, 0.302, FINGER, 1e-3)
    assert (combined.face, combined.finger) == (pytest.approx(2.0), pytest.approx(2.0))
    assert combined.total == pytest.approx(4.0)
    assert combined.target == pytest.approx(3.0)
    assert combined.reaches_target
    weak = combine_face_and_finger(0.10, FACE, 0.20, FINGER, 1e-3)
    assert not weak.reaches_target
