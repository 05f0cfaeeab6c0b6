from __future__ import annotations

import numpy as np
import pytest

from entryexit.errors import DatasetError
from entryexit.evaluation.metrics import (
    best_accuracy_threshold,
    equal_error_rate,
    kfold_accuracy,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)


def test_threshold_at_far_admits_at_most_the_target_share_of_impostors() -> None:
    impostor = np.linspace(0.0, 0.999, 1000)
    for far in (0.0, 0.001, 0.01, 0.1):
        threshold = threshold_at_far(impostor, far)
        assert np.mean(impostor >= threshold) <= far
    # ... and is the lowest such threshold: one notch lower admits too many.
    threshold = threshold_at_far(impostor, 0.01)
    assert np.mean(impostor >= np.nextafter(threshold, -np.inf) - 1e-4) > 0.01


def test_tar_at_far_on_separated_and_overlapping_scores() -> None:
    impostor = np.linspace(0.0, 0.5, 1000)
    assert tar_at_far(np.linspace(0.6, 1.0, 100), impostor, 0.001) == 1.0
    genuine = np.array([0.1, 0.2, 0.49, 0.6])
    # Threshold for FAR 1e-2 sits just above the 11th highest impostor (~0.4945).
    assert tar_at_far(genuine, impostor, 0.01) == pytest.approx(0.25)


def test_roc_curve_ends_at_full_acceptance() -> None:
    curve = roc_curve(np.array([0.8, 0.9]), np.array([0.1, 0.85]))
    assert curve.far[-1] == 1.0
    assert curve.frr[-1] == 0.0
    assert np.all(np.diff(curve.far) >= 0)


def test_equal_error_rate() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.normal(1.0, 0.5, 20000)
    impostor = rng.normal(-1.0, 0.5, 20000)
    # Two unit-separated Gaussians with sigma 0.5: EER = Phi(-2) = 2.275%.
    assert equal_error_rate(genuine, impostor) == pytest.approx(0.02275, abs=0.003)
    assert equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 0.0


def test_best_accuracy_threshold_separates_perfectly_separable_pairs() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([False, False, False, True, True])
    threshold = best_accuracy_threshold(scores, same)
    assert 0.3 < threshold < 0.7


def test_kfold_accuracy_tests_each_fold_on_a_threshold_from_the_others() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.85, 0.15, 0.3, 0.25])
    same = np.array([True, False, True, False, True, False, True, False])
    folds = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    result = kfold_accuracy(scores, same, folds)
    assert len(result.per_fold) == 4
    # Fold 4's genuine score (0.3) lies below the threshold learned on folds 1-3.
    assert result.per_fold[3] == 0.5
    assert result.mean == pytest.approx((1 + 1 + 1 + 0.5) / 4)


def test_metrics_refuse_empty_or_bad_input() -> None:
    with pytest.raises(DatasetError):
        threshold_at_far(np.array([]), 0.01)
    with pytest.raises(DatasetError):
        threshold_at_far(np.array([0.1]), 1.5)
    with pytest.raises(DatasetError):
        tar_at_far(np.array([np.nan]), np.array([0.1]), 0.1)
    with pytest.raises(DatasetError, match="two folds"):
        kfold_accuracy(np.array([0.1, 0.9]), np.array([False, True]), np.array([1, 1]))
