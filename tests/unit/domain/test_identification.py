from __future__ import annotations

import numpy as np

from entryexit.domain.identification import IdentificationRule, NoMatchReason, identify

RULE = IdentificationRule(threshold=0.4, ambiguity_margin=0.05)


def test_a_clear_top_score_matches_that_entry() -> None:
    result = identify(np.array([0.1, 0.75, 0.2, 0.3]), RULE)
    assert result.matched
    assert result.index == 1
    assert result.score == 0.75
    assert result.runner_up_score == 0.3


def test_below_threshold_is_no_match_with_its_reason() -> None:
    result = identify(np.array([0.1, 0.39, 0.2]), RULE)
    assert not result.matched
    assert result.reason is NoMatchReason.BELOW_THRESHOLD


def test_two_close_entries_at_the_top_are_ambiguous_never_a_coin_toss() -> None:
    result = identify(np.array([0.62, 0.1, 0.60]), RULE)
    assert not result.matched
    assert result.reason is NoMatchReason.AMBIGUOUS
    assert result.score == 0.62


def test_a_runner_up_at_least_the_margin_below_is_no_rival() -> None:
    assert identify(np.array([0.60, 0.549]), RULE).matched
    assert not identify(np.array([0.60, 0.5501]), RULE).matched


def test_single_entry_and_empty_galleries() -> None:
    assert identify(np.array([0.9]), RULE).index == 0
    empty = identify(np.array([]), RULE)
    assert empty.reason is NoMatchReason.EMPTY_GALLERY
