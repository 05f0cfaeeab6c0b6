"""The score normalisation and the two-finger fusion rule are pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entryexit.biometrics.fingerprints import (
    FingerFusionRule,
    fuse_fingers,
    fuse_matchers,
    normalise_bozorth,
    normalise_mcc,
)


def test_normalisations_are_monotone_and_bounded() -> None:
    assert normalise_mcc(0.0) == 0.0
    assert normalise_mcc(1.0) == 1.0
    assert normalise_mcc(0.01) < normalise_mcc(0.02)
    assert normalise_bozorth(0) == 0.0
    assert normalise_bozorth(80) == pytest.approx(0.5)
    assert normalise_bozorth(10_000) < 1.0
    with pytest.raises(ValueError, match="never negative"):
        normalise_mcc(-0.1)
    with pytest.raises(ValueError, match="never negative"):
        normalise_bozorth(-1)


@given(st.floats(0, 1), st.floats(0, 1), st.integers(0, 5000), st.integers(0, 5000))
def test_matcher_fusion_rises_with_either_matcher(m1: float, m2: float, b1: int, b2: int) -> None:
    low, high = sorted((m1, m2))
    assert fuse_matchers(low, b1) <= fuse_matchers(high, b1)
    low_b, high_b = sorted((b1, b2))
    assert fuse_matchers(m1, low_b) <= fuse_matchers(m1, high_b)
    assert 0.0 <= fuse_matchers(m1, b1) <= 1.0


def test_finger_fusion_rules() -> None:
    assert fuse_fingers([0.2, 0.6]) == pytest.approx(0.4)
    assert fuse_fingers([0.2, 0.6], FingerFusionRule.MAX) == 0.6
    assert fuse_fingers([0.7]) == 0.7
    with pytest.raises(ValueError, match="at least one"):
        fuse_fingers([])
    with pytest.raises(ValueError, match="normalised"):
        fuse_fingers([0.5, 1.5])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_fused_score_lies_between_the_worst_and_best_finger(scores: list[float]) -> None:
    for rule in FingerFusionRule:
        fused = fuse_fingers(scores, rule)
        assert min(scores) - 1e-12 <= fused <= max(scores) + 1e-12
