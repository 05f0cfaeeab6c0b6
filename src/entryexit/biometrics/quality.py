"""Capture quality: the measures a gate needs to ask a traveler for a recapture.

Each measure has a named threshold and a reason code. Pose is estimated from the five
landmarks with a simple head model (see :func:`estimate_pose`); blur and exposure are measured
on the aligned 112x112 crop so they do not depend on the camera's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.detect import Detection


class QualityReason(StrEnum):
    """Why a capture should be retaken. Values are stable API strings."""

    TOO_FAR = "too_far"
    POSE = "pose"
    BLUR = "blur"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Limits below/above which a capture is refused with a reason.

    Defaults are set from the lfw-dev distribution (``benchmarks/quality_distribution.py``):
    each refuses well under 1% of those press photos, while catching the failures a gate sees
    (a traveler far away, turned aside, moving, in back-light).
    """

    min_inter_eye_pixels: float = 16.0
    max_yaw_degrees: float = 45.0
    max_roll_degrees: float = 30.0
    min_sharpness: float = 15.0
    min_brightness: float = 35.0
    max_brightness: float = 225.0
    min_detector_score: float = 0.6


DEFAULT_QUALITY_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True, slots=True)
class QualityReport:
    inter_eye_pixels: float
    yaw_degrees: float
    roll_degrees: float
    sharpness: float
    brightness: float
    detector_score: float
    reasons: tuple[QualityReason, ...] = field(default=())

    @property
    def acceptable(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, object]:
        return {
            "acceptable": self.acceptable,
            "reasons": [r.value for r in self.reasons],
            "inter_eye_pixels": round(self.inter_eye_pixels, 1),
            "yaw_degrees": round(self.yaw_degrees, 1),
            "roll_degrees": round(self.roll_degrees, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "detector_score": round(self.detector_score, 3),
        }


def estimate_pose(landmarks: NDArray[np.floating]) -> tuple[float, float]:
    """Return (yaw, roll) in degrees from five landmarks.

    Roll is the angle of the line between the eyes. For yaw, after undoing the roll, the
    nose tip's horizontal offset from the eyes' midpoint relative to the inter-eye distance
    is ``(d / e) * tan(yaw)`` for a head whose nose tip stands ``d`` in front of eyes ``e``
    apart; anthropometric averages give ``d / e`` of about 0.5, hence
    ``yaw = atan(2 * offset / e)``. Positive yaw: nose towards the image's right.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose = points[0], points[1], points[2]
    eye_vector = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vector))
    if eye_distance < 1e-6:
        return (90.0, 0.0)
    roll = math.degrees(math.atan2(eye_vector[1], eye_vector[0]))
    cos_r, sin_r = eye_vector / eye_distance
    eye_mid = (right_eye + left_eye) / 2.0
    relative = nose - eye_mid
    # Rotate into the eye-line frame so roll does not read as yaw.
    offset_along_eyes = relative[0] * cos_r + relative[1] * sin_r
    yaw = math.degrees(math.atan(2.0 * offset_along_eyes / eye_distance))
    return (yaw, roll)


def sharpness_of(aligned_gray: NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of the aligned face: low means blurred."""
    laplacian = cv2.Laplacian(aligned_gray, cv2.CV_64F)
    return float(laplacian.var())


def brightness_of(aligned_gray: NDArray[np.uint8]) -> float:
    """Mean grey level of the central face region (excludes the warp's black borders)."""
    size = aligned_gray.shape[0]
    margin = size // 5
    central = aligned_gray[margin : size - margin, margin : size - margin]
    return float(central.mean())


def assess_quality(
    detection: Detection,
    aligned_bgr: NDArray[np.uint8],
    thresholds: QualityThresholds = DEFAULT_QUALITY_THRESHOLDS,
) -> QualityReport:
    gray = np.asarray(cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    yaw, roll = estimate_pose(detection.landmarks)
    report_values = {
        "inter_eye_pixels": detection.inter_eye_distance,
        "yaw_degrees": yaw,
        "roll_degrees": roll,
        "sharpness": sharpness_of(gray),
        "brightness": brightness_of(gray),
        "detector_score": detection.score,
    }
    return QualityReport(**report_values, reasons=quality_reasons(report_values, thresholds))


def quality_reasons(
    values: dict[str, float], thresholds: QualityThresholds
) -> tuple[QualityReason, ...]:
    """The reasons, in the order a gate should tell the traveler about them."""
    reasons: list[QualityReason] = []
    if values["inter_eye_pixels"] < thresholds.min_inter_eye_pixels:
        reasons.append(QualityReason.TOO_FAR)
    if (
        abs(values["yaw_degrees"]) > thresholds.max_yaw_degrees
        or abs(values["roll_degrees"]) > thresholds.max_roll_degrees
    ):
        reasons.append(QualityReason.POSE)
    if values["sharpness"] < thresholds.min_sharpness:
        reasons.append(QualityReason.BLUR)
    if values["brightness"] < thresholds.min_brightness:
        reasons.append(QualityReason.TOO_DARK)
    elif values["brightness"] > thresholds.max_brightness:
        reasons.append(QualityReason.TOO_BRIGHT)
    if values["detector_score"] < thresholds.min_detector_score:
        reasons.append(QualityReason.LOW_CONFIDENCE)
    return tuple(reasons)
