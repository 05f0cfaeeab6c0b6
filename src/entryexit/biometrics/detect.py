"""Face detection with YuNet and the choice of the subject among several faces."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.models import YUNET_2023MAR, ModelSpec
from entryexit.errors import ModelUnavailableError, NoFaceError


@dataclass(frozen=True, slots=True)
class Detection:
    """One face in image coordinates.

    ``landmarks`` is 5 x 2: right eye, left eye, nose tip, right and left mouth corners
    (the subject's right eye appears on the image's left).
    """

    x: float
    y: float
    width: float
    height: float
    landmarks: NDArray[np.float64]
    score: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.width / 2.0, self.y + self.height / 2.0)

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def inter_eye_distance(self) -> float:
        right_eye, left_eye = self.landmarks[0], self.landmarks[1]
        return float(np.hypot(*(left_eye - right_eye)))

    def box(self) -> tuple[int, int, int, int]:
        return (round(self.x), round(self.y), round(self.width), round(self.height))


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """YuNet operating parameters; frames are scaled so the longer side is at most
    ``max_side`` pixels before detection (bounded cost whatever the camera sends)."""

    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    top_k: int = 50
    max_side: int = 640


class YuNetDetector:
    """YuNet (OpenCV Zoo, 2023mar) through ``cv2.FaceDetectorYN``.

    Not thread-safe: the underlying detector keeps per-call state (its input size). The face
    engine gives each worker its own instance.
    """

    spec: ModelSpec = YUNET_2023MAR

    def __init__(self, model_path: Path, settings: DetectorSettings = DetectorSettings()) -> None:
        self._settings = settings
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(model_path),
                "",
                (320, 320),
                settings.score_threshold,
                settings.nms_threshold,
                settings.top_k,
            )
        except cv2.error as exc:
            raise ModelUnavailableError(
                f"OpenCV could not load the YuNet model at {model_path}"
            ) from exc
        self._input_size = (320, 320)

    def detect(self, image: NDArray[np.uint8], max_side: int | None = None) -> list[Detection]:
        """All faces above the score threshold, in ``image`` coordinates, best first.

        The image is scaled so that its longer side is at most ``max_side`` (the settings'
        value by default) before detection; with ``max_side`` above the image's size it is
        upscaled, which gives a second, independent estimate of small faces' landmarks.
        """
        height, width = image.shape[:2]
        limit = max_side if max_side is not None else self._settings.max_side
        scale = limit / max(height, width)
        if max_side is None:
            scale = min(1.0, scale)
        if scale > 1.0:
            frame = cv2.resize(
                image,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_CUBIC,
            )
            scale = frame.shape[1] / width
        elif scale < 1.0:
            resized_width = max(1, round(width * scale))
            resized_height = max(1, round(height * scale))
            frame = cv2.resize(image, (resized_width, resized_height), interpolation=cv2.INTER_AREA)
        else:
            frame = image
        frame_size = (int(frame.shape[1]), int(frame.shape[0]))
        if frame_size != self._input_size:
            self._detector.setInputSize(frame_size)
            self._input_size = frame_size
        # OpenCV returns None, not an empty array, when it finds no face.
        faces: object = self._detector.detect(frame)[1]
        if faces is None:
            return []
        detections = []
        for row in np.asarray(faces, dtype=np.float64):
            landmarks = row[4:14].reshape(5, 2) / scale
            detections.append(
                Detection(
                    x=row[0] / scale,
                    y=row[1] / scale,
                    width=row[2] / scale,
                    height=row[3] / scale,
                    landmarks=landmarks,
                    score=float(row[14]),
                )
            )
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


def subject_priority(detection: Detection, image_width: int, image_height: int) -> float:
    """How likely a face is the one being photographed: large and near the centre.

    The face's side length is weighted down linearly with its centre's distance from the
    image centre (0 at the centre, 1 at a corner), so a big face at the edge of a gate
    camera's view loses to a traveler standing in front of it.
    """
    center_x, center_y = detection.center
    half_diagonal = math.hypot(image_width / 2.0, image_height / 2.0)
    distance = math.hypot(center_x - image_width / 2.0, center_y - image_height / 2.0)
    centrality = max(0.0, 1.0 - distance / half_diagonal)
    return math.sqrt(detection.area) * centrality


@dataclass(frozen=True, slots=True)
class SubjectChoice:
    """The chosen face and every other face that was found (reported, never dropped)."""

    subject: Detection
    others: tuple[Detection, ...]


def choose_subject(
    detections: list[Detection], image_width: int, image_height: int
) -> SubjectChoice:
    if not detections:
        raise NoFaceError("no face was found in the image")
    ranked = sorted(
        detections,
        key=lambda d: subject_priority(d, image_width, image_height),
        reverse=True,
    )
    return SubjectChoice(subject=ranked[0], others=tuple(ranked[1:]))
