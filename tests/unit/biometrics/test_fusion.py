"""Fusing a burst's frames into one probe: which frames count, how much, and what comes out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entryexit.biometrics.fusion import (
    best_frames,
    frame_weight,
    fuse_burst,
    fuse_templates,
)
from entryexit.biometrics.quality import QualityReport
from entryexit.errors import BiometricError
from tests.fakes import unit_vector


def report(
    *, score: float = 0.9, yaw: float = 0.0, roll: float = 0.0, sharpness: float = 300.0
) -> QualityReport:
    return QualityReport(40.0, yaw, roll, sharpness, 120.0, score)


def test_one_frame_is_its_own_probe() -> None:
    vector = unit_vector(1)
    assert np.allclose(fuse_templates([vector], [0.4]), vector, atol=1e-6)


def test_the_probe_is_the_normalised_quality_weighted_mean_of_normalised_templates() -> None:
    first, second = unit_vector(1), unit_vector(2)
    # Templates are normalised before they are weighed: a longer vector counts no more.
    fused = fuse_templates([first * 5.0, second], [3.0, 1.0])
    expected = 3.0 * first + 1.0 * second
    assert np.allclose(fused, expected / np.linalg.norm(expected), atol=1e-6)
    assert math.isclose(float(np.linalg.norm(fused)), 1.0, rel_tol=1e-5)
    # The heavier frame pulls the probe towards itself.
    assert float(fused @ first) > float(fused @ second)


@pytest.mark.parametrize("weights", [[1.0, 0.0], [1.0, -1.0], [1.0, math.nan], [1.0]])
def test_bad_weights_are_an_error_never_a_silent_probe(weights: list[float]) -> None:
    with pytest.raises(BiometricError):
        fuse_templates([unit_vector(1), unit_vector(2)], weights)


def test_no_templates_is_an_error() -> None:
    with pytest.raises(BiometricError):
        fuse_templates(np.zeros((0, 8), dtype=np.float32), [])


def test_the_best_frames_are_the_heaviest_that_passed_earliest_first_on_a_tie() -> None:
    assert best_frames([0.5, None, 0.9, 0.5], 2) == (2, 0)
    assert best_frames([0.5, None, 0.9, 0.5], 10) == (2, 0, 3)
    assert best_frames([None, None], 3) == ()
    with pytest.raises(BiometricError):
        best_frames([0.5], 0)


def test_a_frame_weighs_more_when_confident_frontal_and_sharp() -> None:
    good = frame_weight(report())
    assert 0 < good <= 1
    assert frame_weight(report(score=0.65)) < good
    assert frame_weight(report(yaw=35.0)) < good
    assert frame_weight(report(roll=25.0)) < good
    assert frame_weight(report(sharpness=30.0)) < good
    # Past "sharp enough" more sharpness buys nothing (noise also raises the Laplacian).
    assert frame_weight(report(sharpness=5000.0)) == good
    assert frame_weight(report(score=0.0, sharpness=0.0, yaw=90.0)) > 0


def test_a_burst_fuses_only_the_best_frames_that_passed() -> None:
    vectors = [unit_vector(1), None, unit_vector(3), unit_vector(4)]
    weights = [0.9, None, 0.2, 0.8]
    probe = fuse_burst(vectors, weights, limit=2)
    assert probe.frames == (0, 3)
    assert probe.count == 2
    expected = fuse_templates([unit_vector(1), unit_vector(4)], [0.9, 0.8])
    assert np.allclose(probe.vector, expected)


def test_a_burst_without_a_passing_frame_has_no_probe() -> None:
    with pytest.raises(BiometricError, match="no frame"):
        fuse_burst([None, None], [None, None], limit=3)


def test_a_refused_frame_has_no_weight_even_if_a_vector_came_with_it() -> None:
    probe = fuse_burst([unit_vector(1), unit_vector(2)], [None, 0.5], limit=3)
    assert probe.frames == (1,)
