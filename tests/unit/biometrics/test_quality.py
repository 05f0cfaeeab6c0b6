from __future__ import annotations

import math

import numpy as np
import pytest

from entryexit.biometrics.detect import Detection
from entryexit.biometrics.quality import (
    QualityReason,
    QualityThresholds,
    assess_quality,
    estimate_pose,
)

FRONTAL = np.array([[40.0, 50.0], [72.0, 50.0], [56.0, 70.0], [44.0, 90.0], [68.0, 90.0]])


def detection(landmarks: np.ndarray = FRONTAL, score: float = 0.95) -> Detection:
    return Detection(x=20, y=20, width=70, height=90, landmarks=landmarks, score=score)


def textured_face(brightness: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(-60, 60, (112, 112, 3))
    return np.clip(brightness + noise, 0, 255).astype(np.uint8)


def rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    center = points.mean(axis=0)
    rotated: np.ndarray = (points - center) @ rotation.T + center
    return rotated


def test_frontal_face_has_no_yaw_or_roll() -> None:
    yaw, roll = estimate_pose(FRONTAL)
    assert abs(yaw) < 1e-9
    assert abs(roll) < 1e-9


def test_roll_is_the_eye_line_angle_and_does_not_read_as_yaw() -> None:
    yaw, roll = estimate_pose(rotate(FRONTAL, 20.0))
    assert roll == pytest.approx(20.0)
    assert yaw == pytest.approx(0.0, abs=1e-9)


def test_nose_offset_gives_yaw_with_its_sign() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] += 16.0  # half the inter-eye distance -> atan(1) = 45 degrees
    yaw, _ = estimate_pose(turned)
    assert yaw == pytest.approx(45.0)
    turned[2, 0] = FRONTAL[2, 0] - 8.0
    assert estimate_pose(turned)[0] < 0


def test_a_good_capture_has_no_reasons() -> None:
    report = assess_quality(detection(), textured_face())
    assert report.acceptable
    assert report.reasons == ()


@pytest.mark.parametrize(
    ("landmarks", "face", "score", "reason"),
    [
        (FRONTAL * 0.3, textured_face(), 0.95, QualityReason.TOO_FAR),
        (rotate(FRONTAL, 40.0), textured_face(), 0.95, QualityReason.POSE),
        (FRONTAL, np.full((112, 112, 3), 128, np.uint8), 0.95, QualityReason.BLUR),
        (FRONTAL, textured_face(brightness=10), 0.95, QualityReason.TOO_DARK),
        (FRONTAL, textured_face(brightness=250), 0.95, QualityReason.TOO_BRIGHT),
        (FRONTAL, textured_face(), 0.3, QualityReason.LOW_CONFIDENCE),
    ],
)
def test_each_problem_gives_its_reason(
    landmarks: np.ndarray, face: np.ndarray, score: float, reason: QualityReason
) -> None:
    report = assess_quality(detection(landmarks, score), face)
    assert reason in report.reasons
    assert not report.acceptable


def test_thresholds_are_settings_not_constants() -> None:
    strict = QualityThresholds(min_inter_eye_pixels=100.0)
    assert QualityReason.TOO_FAR in assess_quality(detection(), textured_face(), strict).reasons


def test_report_serialises_reasons_as_strings() -> None:
    report = assess_quality(detection(FRONTAL * 0.3), textured_face())
    as_dict = report.as_dict()
    assert as_dict["acceptable"] is False
    assert as_dict["reasons"] == ["too_far"]
