from __future__ import annotations

import numpy as np
import pytest

from entryexit.domain.normalisation import (
    MIN_COHORT,
    CohortStatistics,
    TravelerFacts,
    are_related,
    cohort_is_usable,
    cohort_statistics,
    related_ambiguity,
    s_norm,
    top_k_statistics,
    z_norm,
)


def test_top_k_statistics_use_only_the_highest_cohort_scores_and_skip_excluded_ones() -> None:
    scores = np.array([[0.9, 0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.0, 0.0, 0.0]])
    excluded = np.array([[True, False, False, False, False], [False] * 5])
    stats = top_k_statistics(scores, top_k=2, excluded=excluded)
    # Row 0: its own 0.9 is left out, so the top two are 0.4 and 0.3.
    assert stats.mean == pytest.approx([0.35, 0.5])
    assert stats.std[0] == pytest.approx(0.05)
    assert stats.std[1] > 0  # floored, never 0
    assert stats.cohort_size == 5
    assert len(stats) == 2


def test_too_few_cohort_scores_or_non_finite_ones_are_errors_not_zeros() -> None:
    with pytest.raises(ValueError, match="fewer than"):
        top_k_statistics(np.zeros((1, 3)), top_k=3, excluded=np.array([[True, False, False]]))
    with pytest.raises(ValueError, match="non-finite"):
        top_k_statistics(np.array([[np.nan, 0.1, 0.2]]), top_k=2)
    with pytest.raises(ValueError, match="at least 2"):
        top_k_statistics(np.zeros((1, 3)), top_k=1)


def test_an_attractor_entry_loses_its_advantage_under_z_norm() -> None:
    # Entry 0 scores 0.5 with everyone (an attractor); entry 1 scores 0.2 with strangers.
    entries = CohortStatistics(np.array([0.5, 0.2]), np.array([0.05, 0.05]), 300, 100)
    raw = np.array([[0.55, 0.45]])  # the raw top is the attractor
    normalised = z_norm(raw, entries)
    assert normalised[0] == pytest.approx([1.0, 5.0])
    assert int(normalised.argmax()) == 1


def test_s_norm_averages_the_entry_and_probe_z_scores() -> None:
    entries = CohortStatistics(np.array([0.2]), np.array([0.1]), 300, 100)
    probes = CohortStatistics(np.array([0.3, 0.1]), np.array([0.1, 0.05]), 300, 100)
    raw = np.array([[0.5], [0.5]])
    assert s_norm(raw, entries, probes)[:, 0] == pytest.approx([0.5 * (3 + 2), 0.5 * (3 + 8)])
    with pytest.raises(ValueError, match="per probe and per entry"):
        s_norm(raw.T, entries, probes)


def test_cohort_statistics_of_templates_and_the_raw_fallback_below_the_minimum() -> None:
    rng = np.random.default_rng(0)
    cohort = rng.normal(size=(300, 8))
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    templates = cohort[:2]
    excluded = np.zeros((2, 300), dtype=bool)
    excluded[0, 0] = excluded[1, 1] = True
    stats = cohort_statistics(templates, cohort, top_k=10, excluded=excluded)
    assert np.all(stats.mean < 1.0)  # a template's own copy never enters its statistics
    assert cohort_is_usable(MIN_COHORT)
    assert not cohort_is_usable(MIN_COHORT - 1)
    with pytest.raises(ValueError, match="cannot compare"):
        cohort_statistics(templates, cohort[:, :4])


def test_related_by_booking_or_by_the_twin_pattern_and_never_by_missing_facts() -> None:
    anna = TravelerFacts("ABC123", "Eriksson", "1974-08-12")
    assert are_related(anna, TravelerFacts(" abc123 ", "Other", "1990-01-01"))
    assert are_related(anna, TravelerFacts(None, "ERIKSSON", "1974-08-12"))  # twins
    assert not are_related(anna, TravelerFacts(None, "ERIKSSON", "1976-08-12"))  # siblings
    assert not are_related(TravelerFacts(), TravelerFacts())
    # Unknown day and month (as some documents print them) is not a shared birth date.
    assert not are_related(
        TravelerFacts(None, "Doe", "1980-00-00"), TravelerFacts(None, "Doe", "1980-00-00")
    )


def test_related_ambiguity_needs_a_match_and_related_top_two() -> None:
    facts = [
        TravelerFacts("B1", "A", "2000-01-01"),
        TravelerFacts("B1", "B", "2001-01-01"),
        TravelerFacts("B2", "C", "2002-01-01"),
    ]
    assert related_ambiguity(np.array([0.60, 0.30, 0.1]), facts, threshold=0.5)
    assert not related_ambiguity(np.array([0.45, 0.44, 0.1]), facts, threshold=0.5)
    assert not related_ambiguity(np.array([0.60, 0.10, 0.3]), facts, threshold=0.5)
    # With a floor, a related runner-up far below does not make the capture ambiguous.
    assert not related_ambiguity(
        np.array([0.60, 0.30, 0.1]), facts, threshold=0.5, runner_up_floor=0.5
    )
    assert not related_ambiguity(np.array([0.9]), facts[:1], threshold=0.5)
    with pytest.raises(ValueError, match="one set of traveler facts"):
        related_ambiguity(np.array([0.9, 0.1]), facts, threshold=0.5)
