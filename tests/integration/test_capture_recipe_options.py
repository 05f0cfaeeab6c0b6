"""The capture recipe's cheaper detection options (issue 17), on the real models: a coarse
copy first, and the mirror detection only for asymmetric or uncertain faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from entryexit.biometrics import EngineSettings, FaceEngine, compare_templates
from entryexit.biometrics.detect import Detection, YuNetDetector
from entryexit.biometrics.engine import _Worker
from entryexit.biometrics.models import YUNET_2023MAR, verified_model_path
from entryexit.biometrics.plugins import load_recognizer
from entryexit.biometrics.recognizer import OnnxEmbedder
from entryexit.evaluation.embedding import CAPTURE_RECIPE, REFERENCE_RECIPE, cache_key
from tests.conftest import lfw_image

pytestmark = [pytest.mark.models, pytest.mark.lfw]


class RecordingDetector(YuNetDetector):
    """YuNet that records the resolution each call asked for (None: the settings' own)."""

    def __init__(self, model_path: Path) -> None:
        super().__init__(model_path)
        self.calls: list[int | None] = []

    def detect(self, image: NDArray[np.uint8], max_side: int | None = None) -> list[Detection]:
        self.calls.append(max_side)
        return super().detect(image, max_side)


def recording_engine(
    model_dir: Path, settings: EngineSettings
) -> tuple[FaceEngine, RecordingDetector]:
    detector = RecordingDetector(verified_model_path(model_dir, YUNET_2023MAR))
    recognizer_path, manifest = load_recognizer(model_dir, settings.recognizer)
    worker = _Worker(detector=detector, embedder=OnnxEmbedder(recognizer_path, manifest))
    return FaceEngine([worker], settings), detector


def gate_frame(lfw_dir: Path, face_side: int, x: int, y: int) -> bytes:
    face = cv2.imread(str(lfw_image(lfw_dir, "Colin_Powell", 1)))
    assert face is not None
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[y : y + face_side, x : x + face_side] = cv2.resize(face, (face_side, face_side))
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def cosine(first: NDArray[np.float32], second: NDArray[np.float32]) -> float:
    return float(np.dot(first, second))


def test_a_large_face_is_taken_from_the_coarse_copy_and_aligned_at_full_resolution(
    model_dir: Path, engine: FaceEngine, lfw_dir: Path
) -> None:
    coarse, detector = recording_engine(model_dir, EngineSettings(coarse_detection_side=320))
    frame = gate_frame(lfw_dir, 260, 190, 110)
    analysis = coarse.analyse(frame)
    # The coarse copy, then the mirror detection on the face's neighbourhood: never the
    # full-resolution pass.
    assert detector.calls[0] == 320
    assert None not in detector.calls
    x, y, width, height = analysis.subject.box()
    assert 190 <= x + width / 2 <= 450
    assert 110 <= y + height / 2 <= 370
    assert analysis.image_width == 640
    full = engine.analyse(frame)
    assert cosine(analysis.template.vector, full.template.vector) > 0.97
    reference = engine.analyse(lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes())
    assert compare_templates([analysis.template], [reference.template])[0, 0] > 0.5


def test_a_face_small_in_the_coarse_copy_is_detected_again_at_full_resolution(
    model_dir: Path, lfw_dir: Path
) -> None:
    coarse, detector = recording_engine(model_dir, EngineSettings(coarse_detection_side=320))
    # A 90-pixel photo holds a face about 40 pixels wide: about 20 in the coarse copy,
    # below the 24 pixels a kept coarse subject needs.
    analysis = coarse.analyse(gate_frame(lfw_dir, 90, 500, 20))
    assert detector.calls[:2] == [320, None]
    assert 500 <= analysis.subject.center[0] <= 590


def test_two_comparable_faces_are_told_apart_at_full_resolution(
    model_dir: Path, lfw_dir: Path
) -> None:
    coarse, detector = recording_engine(model_dir, EngineSettings(coarse_detection_side=320))
    face = cv2.imread(str(lfw_image(lfw_dir, "Colin_Powell", 1)))
    assert face is not None
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[110:350, 60:300] = cv2.resize(face, (240, 240))
    frame[110:350, 340:580] = cv2.resize(face, (240, 240))
    ok, encoded = cv2.imencode(".jpg", frame)
    assert ok
    coarse.analyse(encoded.tobytes())
    # The copy's coarser boxes could flip which of two near-equal faces is the subject.
    assert detector.calls[:2] == [320, None]


def test_coarse_detection_is_never_an_upscale(model_dir: Path, lfw_dir: Path) -> None:
    coarse, detector = recording_engine(model_dir, EngineSettings(coarse_detection_side=320))
    coarse.analyse(lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes())  # 250x250
    assert detector.calls[0] is None


def test_the_mirror_detection_runs_only_for_asymmetric_or_uncertain_faces(
    model_dir: Path, lfw_dir: Path
) -> None:
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    always, always_calls = recording_engine(model_dir, EngineSettings())
    always.analyse(photo)
    assert len(always_calls.calls) == 2

    frontal_only, frontal_calls = recording_engine(
        model_dir, EngineSettings(mirror_detection_min_yaw=60.0)
    )
    skipped = frontal_only.analyse(photo)
    assert len(frontal_calls.calls) == 1
    assert abs(skipped.quality.yaw_degrees) < 60.0

    uncertain, uncertain_calls = recording_engine(
        model_dir, EngineSettings(mirror_detection_min_yaw=60.0, mirror_detection_below_score=1.01)
    )
    uncertain.analyse(photo)
    assert len(uncertain_calls.calls) == 2


def test_reference_photos_ignore_the_capture_options(model_dir: Path, lfw_dir: Path) -> None:
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    plain, _ = recording_engine(model_dir, EngineSettings())
    cheap, _ = recording_engine(
        model_dir, EngineSettings(coarse_detection_side=160, mirror_detection_min_yaw=60.0)
    )
    np.testing.assert_array_equal(
        plain.analyse_reference(photo).template.vector,
        cheap.analyse_reference(photo).template.vector,
    )


def test_the_evaluation_cache_key_changes_with_the_capture_detection(
    model_dir: Path, lfw_dir: Path
) -> None:
    paths = [lfw_image(lfw_dir, "Colin_Powell", 1)]
    plain, _ = recording_engine(model_dir, EngineSettings())
    coarse, _ = recording_engine(model_dir, EngineSettings(coarse_detection_side=320))
    mirror, _ = recording_engine(model_dir, EngineSettings(mirror_detection_min_yaw=10.0))
    keys = {cache_key(e, paths, CAPTURE_RECIPE) for e in (plain, coarse, mirror)}
    assert len(keys) == 3
    # References are detected the same way whatever the capture options: their cache stays.
    assert cache_key(plain, paths, REFERENCE_RECIPE) == cache_key(coarse, paths, REFERENCE_RECIPE)
