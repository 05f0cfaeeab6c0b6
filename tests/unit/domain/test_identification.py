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


RULE_RELATED = IdentificationRule(threshold=0.5, ambiguity_margin=0.03)


def test_a_related_runner_up_who_would_match_alone_makes_the_capture_ambiguous() -> None:
    scores = np.array([0.2, 0.8, 0.6])  # the runner-up is 0.2 below: no rival by margin
    related_pairs = {(1, 2), (2, 1)}
    result = identify(scores, RULE_RELATED, lambda a, b: (a, b) in related_pairs)
    assert (result.index, result.reason) == (None, NoMatchReason.AMBIGUOUS)
    assert (result.score, result.runner_up_score) == (0.8, 0.6)
    # The same scores without the relation: a match to the top entry.
    assert identify(scores, RULE_RELATED, lambda a, b: False).index == 1
    assert identify(scores, RULE_RELATED).index == 1


def test_a_related_runner_up_below_the_threshold_changes_nothing() -> None:
    scores = np.array([0.49, 0.8, 0.1])
    assert identify(scores, RULE_RELATED, lambda a, b: True).index == 1


RULE_BY_REFERENCES = IdentificationRule(
    threshold=0.52, ambiguity_margin=0.03, thresholds_by_references=(0.49, 0.51)
)


def test_the_top_candidate_is_held_to_its_own_reference_count_threshold() -> None:
    scores = np.array([0.50, 0.1, 0.2])
    # One reference photo: 0.50 reaches 0.49.
    one = identify(scores, RULE_BY_REFERENCES, reference_counts=[1, 2, 2])
    assert (one.index, one.threshold) == (0, 0.49)
    # The same score on an entry fusing two photos falls short of 0.51.
    two = identify(scores, RULE_BY_REFERENCES, reference_counts=[2, 1, 1])
    assert (two.index, two.reason, two.threshold) == (None, NoMatchReason.BELOW_THRESHOLD, 0.51)
    # Three or more, or no counts at all: the strictest threshold.
    assert identify(scores, RULE_BY_REFERENCES, reference_counts=[3, 1, 1]).threshold == 0.52
    assert not identify(scores, RULE_BY_REFERENCES).matched


def test_a_threshold_never_reorders_the_candidates() -> None:
    # The top score's entry (two references) misses its threshold; the runner-up (one
    # reference) would reach its own, but the decision is on the top candidate alone.
    scores = np.array([0.505, 0.495])
    result = identify(scores, RULE_BY_REFERENCES, reference_counts=[2, 1])
    assert (result.index, result.reason) == (None, NoMatchReason.BELOW_THRESHOLD)


def test_a_related_runner_up_counts_when_it_reaches_its_own_threshold() -> None:
    rule = IdentificationRule(0.52, 0.03, (0.49, 0.51))
    scores = np.array([0.7, 0.5])
    related = lambda a, b: True  # noqa: E731
    assert identify(scores, rule, related, [1, 1]).reason is NoMatchReason.AMBIGUOUS
    assert identify(scores, rule, related, [1, 2]).index == 0
