"""MCC cylinders and LSA-R: invariant to moving and turning the finger, low for strangers."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from entryexit.biometrics.fingerprints import _mcc


def random_minutiae(seed: int, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(40, 260, size=(n, 2))
    theta = rng.uniform(-math.pi, math.pi, size=n)
    return np.column_stack([xy, theta])


def moved(m: np.ndarray, angle: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    centre = m[:, :2].mean(axis=0)
    xy = (m[:, :2] - centre) @ np.array([[c, s], [-s, c]]) + centre + np.array(shift)
    return np.column_stack([xy, m[:, 2] + angle])


def test_the_same_minutiae_moved_and_turned_score_as_themselves() -> None:
    a = random_minutiae(1)
    same = _mcc.lsar_score(_mcc.build_cylinders(a), _mcc.build_cylinders(a))
    turned = _mcc.lsar_score(
        _mcc.build_cylinders(a), _mcc.build_cylinders(moved(a, 0.5, (15.0, -10.0)))
    )
    assert turned > 0.8 * same
    stranger = _mcc.lsar_score(_mcc.build_cylinders(a), _mcc.build_cylinders(random_minutiae(2)))
    assert stranger < 0.3 * turned
    assert _mcc.lssr_score(_mcc.build_cylinders(a), _mcc.build_cylinders(a)) >= stranger


def test_empty_and_tiny_templates_score_zero_not_an_error() -> None:
    empty = _mcc.build_cylinders(np.zeros((0, 3)))
    assert empty.count == 0
    full = _mcc.build_cylinders(random_minutiae(3))
    assert _mcc.lsar_score(empty, full) == 0.0
    two = _mcc.build_cylinders(random_minutiae(4, n=2))
    assert two.count == 0  # a cylinder needs neighbours and a hull around it
    assert _mcc.lssr_score(two, full) == 0.0


def test_angle_difference_wraps() -> None:
    assert _mcc.angle_diff(math.pi - 0.1, -math.pi + 0.1) == np.float64(-0.2) or math.isclose(
        float(_mcc.angle_diff(math.pi - 0.1, -math.pi + 0.1)), -0.2, abs_tol=1e-9
    )


def test_the_pairs_behind_the_score_are_the_same_minutiae_moved() -> None:
    a = random_minutiae(5)
    order = np.random.default_rng(6).permutation(a.shape[0])
    b = moved(a, 0.3, (12.0, 7.0))[order]  # row k of b is minutia order[k] of a
    pairs = _mcc.lsar_pairs(_mcc.build_cylinders(a), _mcc.build_cylinders(b))
    assert len(pairs) == _mcc.MAX_NP  # 40 minutiae: the score's n_P is 12
    assert all(order[j] == i for i, j, _ in pairs)
    assert min(strength for _, _, strength in pairs) > 0.5
    # The score is the one the pairs stand for (computed apart, never with them).
    same = _mcc.lsar_score(_mcc.build_cylinders(a), _mcc.build_cylinders(b))
    assert same > 0.5
    stranger = _mcc.lsar_pairs(_mcc.build_cylinders(a), _mcc.build_cylinders(random_minutiae(7)))
    assert sum(1 for i, j, _ in stranger if order[j] == i) <= 1
    # A stranger's pairs are as many, and weak.
    assert max(strength for _, _, strength in stranger) < 0.2


def _random_minutiae(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.uniform(0, 300, n),
            rng.uniform(0, 300, n),
            rng.uniform(0, 2 * math.pi, n),
            np.ones(n),
            rng.uniform(0, 1, n),
        ]
    )


def test_a_template_of_255_minutiae_costs_bounded_memory_and_keeps_its_most_reliable() -> None:
    # An ISO record may carry 255 minutiae a finger; built whole, its cylinders took ~640 MiB
    # and seconds of CPU per finger of a hostile request.
    m = _random_minutiae(255, seed=3)
    tracemalloc.start()
    try:
        cylinders = _mcc.build_cylinders(m)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 128 * 1024 * 1024
    most_reliable = set(np.argsort(-m[:, 4], kind="stable")[: _mcc.MAX_CYLINDER_MINUTIAE])
    assert set(cylinders.index.tolist()) <= most_reliable
    np.testing.assert_allclose(cylinders.xy, m[cylinders.index, :2])


def test_building_in_chunks_gives_the_cylinders_built_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = _random_minutiae(40, seed=4)
    chunked = _mcc.build_cylinders(m)
    monkeypatch.setattr(_mcc, "_CHUNK", 1000)
    whole = _mcc.build_cylinders(m)
    np.testing.assert_array_equal(chunked.index, whole.index)
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-6, atol=1e-7)
