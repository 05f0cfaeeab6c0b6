from __future__ import annotations

import math

import numpy as np
import pytest

from entryexit.biometrics.align import REFERENCE_LANDMARKS_112, align_face, estimate_similarity
from entryexit.errors import BiometricError


def similarity(scale: float, angle_degrees: float, tx: float, ty: float) -> np.ndarray:
    angle = math.radians(angle_degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.hstack([scale * rotation, [[tx], [ty]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    moved: np.ndarray = points @ matrix[:, :2].T + matrix[:, 2]
    return moved


@pytest.mark.parametrize(
    ("scale", "angle", "tx", "ty"),
    [(1.0, 0.0, 0.0, 0.0), (2.5, 17.0, 40.0, -12.0), (0.3, -80.0, 5.0, 300.0)],
)
def test_estimate_recovers_an_exact_similarity(
    scale: float, angle: float, tx: float, ty: float
) -> None:
    truth = similarity(scale, angle, tx, ty)
    source = REFERENCE_LANDMARKS_112 * 1.7 + 13.0
    destination = apply(truth, source)
    estimated = estimate_similarity(source, destination)
    np.testing.assert_allclose(estimated, truth, atol=1e-9)


def test_estimate_is_least_squares_for_noisy_points() -> None:
    rng = np.random.default_rng(1)
    source = REFERENCE_LANDMARKS_112 * 2.0
    noisy = apply(similarity(0.5, 5.0, 3.0, 4.0), source) + rng.normal(0, 0.5, source.shape)
    estimated = estimate_similarity(source, noisy)
    residual = np.linalg.norm(apply(estimated, source) - noisy)
    # Any other similarity (here: the truth) fits no better.
    assert residual <= np.linalg.norm(apply(similarity(0.5, 5.0, 3.0, 4.0), source) - noisy) + 1e-9


def test_reflections_are_never_produced() -> None:
    mirrored = REFERENCE_LANDMARKS_112.copy()
    mirrored[:, 0] = 112 - mirrored[:, 0]
    matrix = estimate_similarity(mirrored, REFERENCE_LANDMARKS_112)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize(
    "points",
    [np.zeros((5, 2)), np.full((5, 2), np.nan), np.zeros((1, 2))],
)
def test_degenerate_landmarks_raise(points: np.ndarray) -> None:
    with pytest.raises(BiometricError):
        estimate_similarity(points, REFERENCE_LANDMARKS_112[: len(points)])


def test_align_face_moves_landmarks_onto_the_template() -> None:
    image = np.zeros((400, 300, 3), dtype=np.uint8)
    truth = similarity(2.2, 12.0, 60.0, 90.0)
    landmarks = apply(truth, REFERENCE_LANDMARKS_112)
    for x, y in landmarks:
        image[round(y) - 5 : round(y) + 6, round(x) - 5 : round(x) + 6] = 255
    aligned = align_face(image, landmarks)
    assert aligned.shape == (112, 112, 3)
    for x, y in REFERENCE_LANDMARKS_112:
        assert aligned[round(y), round(x)].min() > 200
    # Away from the landmarks the crop stays dark.
    assert aligned[5, 5].max() == 0
    assert aligned[56, 20].max() == 0


def test_align_face_needs_five_landmarks() -> None:
    with pytest.raises(BiometricError, match="five"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))
