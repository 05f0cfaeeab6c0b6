"""In-memory fakes of the services' ports, for fast unit tests without models or databases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from entryexit.biometrics import FaceAnalysis, Template
from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.decode import ImageKind, current_slot_owner
from entryexit.biometrics.detect import Detection
from entryexit.biometrics.embed import SFACE_MANIFEST
from entryexit.biometrics.engine import FrameQuality
from entryexit.biometrics.fusion import (
    BurstAnalysis,
    FrameCheck,
    FusedProbe,
    best_frames,
    frame_weight,
    fuse_templates,
)
from entryexit.biometrics.quality import QualityReason, QualityReport
from entryexit.errors import ImageDecodeError, NoFaceError


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def unit_vector(seed: int, dimension: int = 8) -> np.ndarray:
    vector: np.ndarray = l2_normalise(np.random.default_rng(seed).normal(size=dimension))[0]
    return vector


class FakeAnalyser:
    """Maps photo bytes to prepared analyses: ``b"face:<seed>"`` is a good face whose
    template is ``unit_vector(seed)``; ``b"dim:<seed>"`` the same face, accepted with a lower
    detector confidence (a lower fusion weight); ``b"blurred:<seed>"`` the same face, too
    blurred; ``b"empty"`` has no face; anything else is undecodable. ``b"near:<seed>:<k>"``
    is face ``seed`` nudged towards face ``k`` (another frame of the same traveler)."""

    def __init__(self) -> None:
        self.bursts: list[tuple[int, int]] = []  # (frames sent, limit) per analyse_burst
        # Whom each capture's decode slot was taken for (decode.slot_owner).
        self.slot_owners: list[str | None] = []
        self.kinds: list[ImageKind] = []  # the kind each analysed image was decoded as

    model = "fake-model"
    dimension = 8
    recipe = "flip"
    recognizer = replace(SFACE_MANIFEST, key="fake-model", dimension=8)

    def analyse_reference(
        self,
        data: bytes,
        formats: frozenset[str] = frozenset(),
        kind: ImageKind = ImageKind.REFERENCE_PHOTO,
    ) -> FaceAnalysis:
        return self.analyse(data)

    def check_frame(self, data: bytes, scale: float = 1.0) -> FrameQuality:
        """The kiosk's preview check: ``b"far:<seed>"`` is a face 10 pixels between the eyes
        (before ``scale``), ``b"two:<seed>"`` two people; else as :meth:`analyse`."""
        text = data.decode("ascii", errors="replace")
        kind, _, seed = text.partition(":")
        if kind in ("far", "two"):
            data = f"face:{seed}".encode()
        quality = self.analyse(data).quality
        eyes = 10.0 * scale if kind == "far" else quality.inter_eye_pixels
        reasons = quality.reasons + ((QualityReason.TOO_FAR,) if eyes < 16.0 else ())
        return FrameQuality(
            replace(quality, inter_eye_pixels=eyes, reasons=reasons), 2 if kind == "two" else 1
        )

    def analyse(
        self,
        data: bytes,
        formats: frozenset[str] = frozenset(),
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> FaceAnalysis:
        self.slot_owners.append(current_slot_owner())
        self.kinds.append(kind)
        text = data.decode("ascii", errors="replace")
        if text == "empty":
            raise NoFaceError("no face was found in the image")
        label, _, seed = text.partition(":")
        seed, _, towards = seed.partition(":")
        if label not in ("face", "blurred", "dim", "near") or not seed.isdigit():
            raise ImageDecodeError("the data is not a readable JPEG or PNG image")
        reasons = (QualityReason.BLUR,) if label == "blurred" else ()
        vector = unit_vector(int(seed))
        if label == "near" and towards.isdigit():
            vector = l2_normalise(vector + 0.5 * unit_vector(int(towards)))[0]
        landmarks = np.array([[40, 50], [72, 50], [56, 70], [44, 90], [68, 90]], dtype=float)
        return FaceAnalysis(
            template=Template(vector, self.model),
            quality=QualityReport(
                30.0, 0.0, 0.0, 100.0, 120.0, 0.65 if label == "dim" else 0.9, reasons
            ),
            subject=Detection(20, 20, 70, 90, landmarks, 0.9),
            other_faces=(),
            image_width=200,
            image_height=200,
        )

    def analyse_burst(
        self,
        frames: Sequence[bytes],
        limit: int,
        formats: frozenset[str] = frozenset(),
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> BurstAnalysis:
        """As the engine: gate each frame, fuse the best ``limit`` that pass."""
        self.bursts.append((len(frames), limit))
        checks: list[FrameCheck] = []
        vectors: dict[int, np.ndarray] = {}
        first_error: ImageDecodeError | None = None
        for index, data in enumerate(frames):
            try:
                analysis = self.analyse(data, formats, kind)
            except NoFaceError:
                checks.append(FrameCheck(("no_face",)))
                continue
            except ImageDecodeError as exc:
                first_error = first_error or exc
                checks.append(FrameCheck(("unreadable",), unreadable=True))
                continue
            if analysis.quality.acceptable:
                checks.append(FrameCheck(weight=frame_weight(analysis.quality)))
                vectors[index] = analysis.template.vector
            else:
                checks.append(FrameCheck(tuple(r.value for r in analysis.quality.reasons)))
        if first_error is not None and all(check.unreadable for check in checks):
            raise first_error
        chosen = best_frames([check.weight for check in checks], limit)
        if not chosen:
            return BurstAnalysis(tuple(checks), None)
        fused = fuse_templates(
            np.stack([vectors[i] for i in chosen]), [checks[i].weight or 0.0 for i in chosen]
        )
        return BurstAnalysis(tuple(checks), FusedProbe(fused, chosen))


class StaticKeyProvider:
    """Fixed, known keys (tests only); ``add_kek`` makes a new current KEK for rotations."""

    def __init__(self) -> None:
        self._keks = {"k1": b"\x01" * 32}
        self._current = "k1"

    def current_kek(self) -> tuple[str, bytes]:
        return self._current, self._keks[self._current]

    def kek(self, kek_id: str) -> bytes:
        return self._keks[kek_id]

    def audit_key(self) -> bytes:
        return b"\x02" * 32

    def index_key(self) -> bytes:
        return b"\x03" * 32

    def checkpoint_key(self) -> bytes:
        return b"\x04" * 32

    def add_kek(self, kek_id: str) -> None:
        self._keks[kek_id] = bytes([len(self._keks) + 1]) * 32
        self._current = kek_id

    def forget_kek(self, kek_id: str) -> None:
        del self._keks[kek_id]


class FakeFingerprintEngine:
    """Prints as plain greyscale images: an image filled with grey level ``g`` (1-249) is a
    good print whose minutiae are seeded by ``g``; a white one is blank. Two templates score
    1.0 when their minutiae agree and 0.0 otherwise. It answers to the real engine's key, so
    the real calibration table gives its threshold."""

    key = "nbis-mcc-v1"

    def assess(self, image: Any) -> Any:
        from entryexit.biometrics.fingerprints import (
            FingerprintQuality,
            FingerprintRecaptureReason,
        )

        grey = int(image.pixels[0, 0])
        reasons = (FingerprintRecaptureReason.BLANK,) if grey >= 250 else ()
        return FingerprintQuality(score=60, minutiae=30, reasons=reasons)

    def extract(self, image: Any, finger: Any, quality: int = 0) -> Any:
        from entryexit.biometrics.fingerprints import FingerprintTemplate, TemplateSource

        rng = np.random.default_rng(int(image.pixels[0, 0]))
        minutiae = np.column_stack(
            [
                rng.integers(10, 90, size=(20, 2)),
                rng.uniform(0, 6.2, size=20),
                np.ones(20),
                np.full(20, 0.9),
            ]
        ).astype(np.float64)
        return FingerprintTemplate(TemplateSource.MINDTCT, finger, 100, 100, minutiae, quality)

    def read(self, image: Any, finger: Any) -> Any:
        quality = self.assess(image)
        return quality, self.extract(image, finger, quality.score) if quality.acceptable else None

    def from_iso_minutiae(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the fake reads images only")

    def __init__(self) -> None:
        self.prepared: list[Any] = []  # templates prepared, in order (tests read it)

    def prepare(self, template: Any) -> object:
        self.prepared.append(template)
        return template

    def compare(self, probe: Any, references: Any) -> np.ndarray:
        return np.array(
            [
                1.0 if np.allclose(probe.minutiae[:, :2], r.minutiae[:, :2], atol=1) else 0.0
                for r in references
            ]
        )

    def paired_minutiae(self, probe: Any, reference: Any) -> tuple[tuple[int, int, float], ...]:
        """The same row of two templates pairs where its minutia is at the same place."""
        rows = min(probe.count, reference.count)
        return tuple(
            (i, i, 1.0)
            for i in range(rows)
            if np.allclose(probe.minutiae[i, :2], reference.minutiae[i, :2], atol=1)
        )


def fake_print(grey: int, side: int = 120) -> bytes:
    """A PNG the fake engine reads as the print seeded by ``grey``."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("L", (side, side), grey).save(buffer, format="PNG")
    return buffer.getvalue()
