"""The real pipeline (YuNet + SFace) on real lfw-dev photos."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from entryexit.biometrics import FaceAnalysis, FaceEngine, compare_templates
from entryexit.biometrics.fusion import frame_weight, fuse_templates
from entryexit.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    ModelUnavailableError,
    NoFaceError,
)
from tests.conftest import lfw_image

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def test_same_person_scores_far_above_different_people(engine: FaceEngine, lfw_dir: Path) -> None:
    a1 = engine.analyse(lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes())
    a2 = engine.analyse(lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes())
    b = engine.analyse(lfw_image(lfw_dir, "Ariel_Sharon", 1).read_bytes())
    scores = compare_templates([a1.template], [a2.template, b.template])[0]
    assert scores[0] > 0.5
    assert scores[1] < 0.3
    assert np.linalg.norm(a1.template.vector) == pytest.approx(1.0, abs=1e-5)
    assert a1.template.model == "sface-2021dec+flip"
    assert a1.quality.acceptable


def test_batch_embedding_gives_the_same_templates_as_single(
    engine: FaceEngine, lfw_dir: Path
) -> None:
    paths = [lfw_image(lfw_dir, "Colin_Powell", n) for n in range(1, 6)]
    batch = engine.analyse_many([p.read_bytes() for p in paths])
    for path, batched in zip(paths, batch, strict=True):
        assert isinstance(batched, FaceAnalysis)
        single = engine.analyse(path.read_bytes())
        np.testing.assert_allclose(batched.template.vector, single.template.vector, atol=1e-5)


def test_batch_reports_failures_in_place(engine: FaceEngine, lfw_dir: Path) -> None:
    good = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    blank = _blank_png()
    outcomes = engine.analyse_many([good, b"not an image", blank, good])
    assert isinstance(outcomes[0], FaceAnalysis)
    assert isinstance(outcomes[3], FaceAnalysis)
    assert isinstance(outcomes[1], ImageDecodeError)
    assert isinstance(outcomes[2], NoFaceError)


def test_no_face_in_a_blank_image(engine: FaceEngine) -> None:
    with pytest.raises(NoFaceError):
        engine.analyse(_blank_png())


def test_large_frames_are_detected_on_a_bounded_copy(engine: FaceEngine, lfw_dir: Path) -> None:
    import cv2

    face = cv2.imread(str(lfw_image(lfw_dir, "Colin_Powell", 1)))
    assert face is not None
    frame = np.full((1440, 2560, 3), 90, np.uint8)
    big = cv2.resize(face, (600, 600))
    frame[400:1000, 980:1580] = big
    ok, encoded = cv2.imencode(".jpg", frame)
    assert ok
    analysis = engine.analyse(encoded.tobytes())
    x, y, w, h = analysis.subject.box()
    assert 980 <= x + w / 2 <= 1580
    assert 400 <= y + h / 2 <= 1000
    reference = engine.analyse(lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes())
    assert compare_templates([analysis.template], [reference.template])[0, 0] > 0.8


def test_a_tampered_model_is_refused_at_load(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    target = copy / "face_recognition_sface_2021dec.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError, match="tampered or corrupt"):
        FaceEngine.from_model_dir(copy)


def _blank_png() -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", np.full((200, 200, 3), 200, np.uint8))
    assert ok
    return encoded.tobytes()


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_burst_gates_each_frame_and_fuses_the_best_within_the_gate_frame_limits(
    engine: FaceEngine, lfw_dir: Path
) -> None:
    photos = [lfw_image(lfw_dir, "Colin_Powell", n).read_bytes() for n in (1, 2)]
    # A frame beyond the gate frame's pixel limit (4096 x 3072) is never decoded: it is
    # named, and the burst goes on without it.
    oversized = _png(5000, 3100)
    burst = engine.analyse_burst([photos[0], oversized, _png(320, 240), photos[1]], limit=3)
    assert [check.reasons for check in burst.frames] == [(), ("unreadable",), ("no_face",), ()]
    assert burst.frames[1].unreadable
    assert burst.probe is not None
    assert sorted(burst.probe.frames) == [0, 3]
    singles = [engine.analyse(photo) for photo in photos]
    weights = [frame_weight(single.quality) for single in singles]
    expected = fuse_templates([s.template.vector for s in singles], weights)
    np.testing.assert_allclose(burst.probe.vector, expected, atol=1e-5)
    assert burst.best_frame == (0 if weights[0] >= weights[1] else 3)
    # One frame fused is exactly the single capture's template.
    one = engine.analyse_burst([photos[0]], limit=3)
    assert one.probe is not None
    np.testing.assert_allclose(one.probe.vector, singles[0].template.vector, atol=1e-5)
    # The limit bounds the frames embedded, whatever passes.
    capped = engine.analyse_burst(photos, limit=1)
    assert capped.probe is not None
    assert capped.probe.count == 1
    with pytest.raises(ImageTooLargeError):
        engine.analyse_burst([oversized, oversized], limit=3)
    with pytest.raises(ImageDecodeError):
        engine.analyse_burst([b"junk", b"more junk"], limit=3)
