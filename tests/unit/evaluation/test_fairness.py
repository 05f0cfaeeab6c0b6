from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from entryexit.errors import DatasetError
from entryexit.evaluation.fairness import (
    GroupReport,
    PairScores,
    Rate,
    open_set_by_group,
    person_rate,
    read_labels,
    with_ratios,
    within_group_pairs,
)


def test_pair_weighted_and_person_averaged_rates_differ_as_they_should() -> None:
    # One person with 100 pairs and no error; nine with 10 pairs and 1 error each.
    errors = np.array([0] + [1] * 9)
    trials = np.array([100] + [10] * 9)
    rng = np.random.default_rng(0)
    pairs = person_rate(errors, trials, rng, minimum_trials=30)
    persons = person_rate(errors, trials, rng, minimum_trials=30, person_averaged=True)
    assert pairs.value == pytest.approx(9 / 190)
    assert persons.value == pytest.approx(0.09)
    assert pairs.low is not None
    assert pairs.high is not None
    assert pairs.value is not None
    assert pairs.low <= pairs.value <= pairs.high


def test_too_few_persons_or_trials_is_too_few_to_say() -> None:
    rng = np.random.default_rng(0)
    few_persons = person_rate(np.array([1, 0]), np.array([50, 50]), rng, minimum_trials=30)
    assert few_persons.value is None
    assert few_persons.as_dict()["note"] == "too few to say"
    few_trials = person_rate(np.zeros(20, int), np.ones(20, int), rng, minimum_trials=30)
    assert few_trials.value is None


def test_interval_narrows_with_more_persons() -> None:
    rng = np.random.default_rng(1)
    small = person_rate(np.array([1, 0] * 10), np.array([10] * 20), rng, 30)
    large = person_rate(np.array([1, 0] * 500), np.array([10] * 1000), rng, 30)
    assert small.value == pytest.approx(large.value)
    assert (large.high - large.low) < (small.high - small.low)  # type: ignore[operator]


def test_pair_scores_charge_errors_to_persons() -> None:
    pairs = PairScores(np.array([0.9, 0.1, 0.5, 0.2]), np.array([0, 0, 1, 2]))
    errors, trials = pairs.per_person(0.4, 3, genuine=True)
    assert errors.tolist() == [1, 0, 1]
    assert trials.tolist() == [2, 1, 1]
    errors, _ = pairs.per_person(0.4, 3, genuine=False)
    assert errors.tolist() == [1, 1, 0]


def test_within_group_pairs_are_all_genuine_pairs_and_only_different_people() -> None:
    vectors = np.eye(6, dtype=np.float32)
    persons = np.array([0, 0, 0, 1, 1, 2])
    genuine, impostor = within_group_pairs(
        vectors, persons, np.arange(6), np.random.default_rng(0), 1000
    )
    assert genuine.scores.size == 3 + 1  # C(3,2) + C(2,2)
    assert impostor.scores.size == 15 - 4  # every cross-person pair when few
    assert set(impostor.person.tolist()) <= {0, 1, 2}


def test_ratios_are_to_the_lowest_group_fmr() -> None:
    def report(name: str, fmr: float) -> GroupReport:
        rate = Rate(1, 1000, 20, fmr, fmr, fmr)
        return GroupReport(name, 20, 40, rate, rate, rate)

    ratios = {
        g.group: g.fmr_ratio_to_lowest
        for g in with_ratios([report("A", 0.002), report("B", 0.001)])
    }
    assert ratios == {"A": pytest.approx(2.0), "B": pytest.approx(1.0)}


def test_open_set_counts_misses_and_false_positives_by_group() -> None:
    # Persons 0 and 1 have two images each; person 2 one image. Person 1's second image looks
    # nothing like its first (a miss); person 2 resembles person 0 (a false positive).
    vectors = np.array(
        [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.99, 0.14, 0]], dtype=np.float32
    )
    persons = np.array([0, 0, 1, 1, 2])
    groups = {0: "F", 1: "M", 2: "M"}
    result = open_set_by_group(vectors, persons, groups, 0.5, 2, 1, np.random.default_rng(0))
    assert result["F"] == {
        "mated": 1,
        "missed": 0,
        "non_mated": 0,
        "false_positive": 0,
        "fnir": 0.0,
        "fpir": None,
    }
    assert result["M"]["mated"] == 1
    assert result["M"]["missed"] == 1
    assert result["M"]["false_positive"] == 1


def test_label_files(tmp_path: Path) -> None:
    path = tmp_path / "sex.tsv"
    path.write_text("image\tsex\nA/A_0001.jpg\tF\nB/B_0001.jpg\tM\n")
    assert read_labels(path) == {"A/A_0001.jpg": "F", "B/B_0001.jpg": "M"}
    path.write_text("A/A_0001.jpg F\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_labels(path)
