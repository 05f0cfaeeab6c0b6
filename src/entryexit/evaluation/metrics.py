"""Verification metrics on similarity scores (higher = more alike). Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from entryexit.errors import DatasetError

FloatArray = NDArray[np.float64]


def _as_scores(values: NDArray[np.floating] | list[float], what: str) -> FloatArray:
    scores = np.asarray(values, dtype=np.float64).ravel()
    if scores.size == 0:
        raise DatasetError(f"no {what} scores to evaluate")
    if not np.all(np.isfinite(scores)):
        raise DatasetError(f"{what} scores contain non-finite values")
    return scores


def threshold_at_far(impostor: NDArray[np.floating], far: float) -> float:
    """The lowest threshold (decide "match" when score >= threshold) whose false accept
    rate on ``impostor`` does not exceed ``far``."""
    if not 0.0 <= far <= 1.0:
        raise DatasetError(f"a false accept rate must lie in [0, 1], got {far}")
    scores = np.sort(_as_scores(impostor, "impostor"))[::-1]
    allowed = int(np.floor(far * scores.size + 1e-9))
    if allowed >= scores.size:
        return float(scores[-1])
    # Strictly above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(scores[allowed], np.inf))


def rate_at_or_above(scores: NDArray[np.floating], threshold: float) -> float:
    values = np.asarray(scores, dtype=np.float64)
    return float(np.count_nonzero(values >= threshold) / values.size)


def tar_at_far(genuine: NDArray[np.floating], impostor: NDArray[np.floating], far: float) -> float:
    """True accept rate at the threshold set for ``far`` on the impostor scores."""
    return rate_at_or_above(_as_scores(genuine, "genuine"), threshold_at_far(impostor, far))


@dataclass(frozen=True, slots=True)
class RocCurve:
    thresholds: FloatArray
    far: FloatArray
    frr: FloatArray


def roc_curve(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> RocCurve:
    """FAR and FRR at every distinct score used as a threshold (descending thresholds)."""
    gen = np.sort(_as_scores(genuine, "genuine"))
    imp = np.sort(_as_scores(impostor, "impostor"))
    thresholds = np.unique(np.concatenate([gen, imp]))[::-1]
    accepted_impostors = imp.size - np.searchsorted(imp, thresholds, side="left")
    accepted_genuine = gen.size - np.searchsorted(gen, thresholds, side="left")
    return RocCurve(
        thresholds=thresholds,
        far=accepted_impostors / imp.size,
        frr=1.0 - accepted_genuine / gen.size,
    )


def equal_error_rate(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> float:
    """The rate where FAR equals FRR, linearly interpolated between neighbouring thresholds."""
    curve = roc_curve(genuine, impostor)
    difference = curve.far - curve.frr  # rises from negative to positive as thresholds fall
    crossing = int(np.argmax(difference >= 0))
    if crossing == 0:
        return float((curve.far[0] + curve.frr[0]) / 2.0)
    d0, d1 = difference[crossing - 1], difference[crossing]
    weight = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    far = curve.far[crossing - 1] + weight * (curve.far[crossing] - curve.far[crossing - 1])
    frr = curve.frr[crossing - 1] + weight * (curve.frr[crossing] - curve.frr[crossing - 1])
    return float((far + frr) / 2.0)


def best_accuracy_threshold(scores: NDArray[np.floating], same: NDArray[np.bool_]) -> float:
    """The threshold maximising accuracy on labelled pairs (midpoints of sorted scores)."""
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(same, dtype=bool)
    order = np.argsort(values)
    sorted_scores = values[order]
    sorted_labels = labels[order]
    # Threshold just above index i rejects 0..i. Accuracy = rejected negatives + accepted positives.
    negatives_below = np.concatenate([[0], np.cumsum(~sorted_labels)])
    positives_above = sorted_labels.sum() - np.concatenate([[0], np.cumsum(sorted_labels)])
    correct = negatives_below + positives_above
    best = int(np.argmax(correct))
    if best == 0:
        return float(sorted_scores[0] - 1e-6)
    if best == sorted_scores.size:
        return float(sorted_scores[-1] + 1e-6)
    return float((sorted_scores[best - 1] + sorted_scores[best]) / 2.0)


@dataclass(frozen=True, slots=True)
class FoldAccuracy:
    mean: float
    std: float
    per_fold: tuple[float, ...]
    thresholds: tuple[float, ...]


def kfold_accuracy(
    scores: NDArray[np.floating], same: NDArray[np.bool_], folds: NDArray[np.integer]
) -> FoldAccuracy:
    """LFW-protocol accuracy: each fold is tested at the threshold best on the others."""
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(same, dtype=bool)
    fold_ids = np.asarray(folds)
    unique_folds = np.unique(fold_ids)
    if unique_folds.size < 2:
        raise DatasetError("k-fold accuracy needs pairs from at least two folds")
    accuracies, thresholds = [], []
    for fold in unique_folds:
        test = fold_ids == fold
        threshold = best_accuracy_threshold(values[~test], labels[~test])
        predicted = values[test] >= threshold
        accuracies.append(float(np.mean(predicted == labels[test])))
        thresholds.append(threshold)
    return FoldAccuracy(
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        per_fold=tuple(accuracies),
        thresholds=tuple(thresholds),
    )
