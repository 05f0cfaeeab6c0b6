"""The multi-frame evaluation's parts: synthetic frames, fusion as the service does it, and a
flight's FNIR at its own FPIR threshold."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from entryexit.biometrics.compare import l2_normalise
from entryexit.errors import DatasetError
from entryexit.evaluation.bursts import Probes, burst_frames, fused_probe, score_flight
from tests.fakes import unit_vector


def jpeg() -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((120, 100, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_a_synthetic_burst_starts_with_the_photo_and_is_the_same_every_run() -> None:
    photo = jpeg()
    frames = burst_frames(photo, 3, seed=0, index=7)
    assert frames[0] == photo
    assert frames == burst_frames(photo, 3, seed=0, index=7)
    assert frames[1] != frames[2]
    assert burst_frames(photo, 3, seed=1, index=7)[1] != frames[1]
    for frame in frames[1:]:
        decoded = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        assert decoded.shape == (120, 100, 3)  # same size: shifted, not cropped


def test_an_unreadable_photo_cannot_make_a_burst() -> None:
    with pytest.raises(DatasetError):
        burst_frames(b"not a photo", 2, seed=0, index=0)


def test_a_burst_is_fused_from_the_frames_that_passed_only() -> None:
    vectors = np.stack([unit_vector(1), unit_vector(2), unit_vector(3)])
    weights = np.array([0.5, math.nan, 0.5])
    fused = fused_probe(vectors, weights)
    assert fused is not None
    expected = l2_normalise(unit_vector(1) + unit_vector(3))[0]
    assert np.allclose(fused, expected, atol=1e-6)
    assert fused_probe(vectors, np.full(3, math.nan)) is None


def test_fnir_counts_a_burst_that_failed_to_acquire_as_a_miss() -> None:
    gallery = np.stack([unit_vector(10), unit_vector(11)])
    mated = Probes(np.stack([unit_vector(10)]), np.array([0]))
    strangers = Probes(np.stack([unit_vector(s) for s in range(20, 40)]), np.arange(20, 40))
    # Two mated bursts, one of which no frame of passed: FNIR 1/2 however high the score.
    flight = score_flight(gallery, [0, 1], mated, 2, strangers)
    assert flight.fnir == pytest.approx(0.5)
    assert flight.fta == pytest.approx(0.5)
    # The threshold sits above every non-mated top score (20 searches, FPIR 1e-3).
    assert flight.threshold > flight.non_mated_top.max()
    with pytest.raises(DatasetError):
        score_flight(gallery, [0, 1], mated, 0, strangers)
