"""The face engine: bytes in, a template and its quality out.

decode -> detect -> choose the subject -> align -> quality -> embed. Each stage lives in
its own module; this one only composes them and owns the model instances.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.align import align_face
from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.biometrics.decode import (
    ALLOWED_FORMATS,
    DEFAULT_DECODE_LIMITS,
    DecodedImage,
    DecodeLimits,
    decode_image,
)
from entryexit.biometrics.detect import (
    Detection,
    DetectorSettings,
    YuNetDetector,
    choose_subject,
)
from entryexit.biometrics.embed import SFaceEmbedder
from entryexit.biometrics.models import SFACE_2021DEC, YUNET_2023MAR, verified_model_path
from entryexit.biometrics.quality import (
    DEFAULT_QUALITY_THRESHOLDS,
    QualityReport,
    QualityThresholds,
    assess_quality,
)
from entryexit.errors import BiometricError


@dataclass(frozen=True, slots=True)
class EngineSettings:
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    quality: QualityThresholds = DEFAULT_QUALITY_THRESHOLDS
    decode: DecodeLimits = DEFAULT_DECODE_LIMITS
    workers: int = 1
    # Test-time augmentation: the template is the normalised sum of the embeddings of the
    # aligned face and its mirror image. Costs one more face in the same forward pass and
    # raises the 1:N match rate at equal false positives (benchmarks/RESULTS.md).
    flip_augmentation: bool = True


FLIP_RECIPE_SUFFIX = "+flip"


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    """The subject's template with the evidence a decision needs."""

    template: Template
    quality: QualityReport
    subject: Detection
    other_faces: tuple[Detection, ...]
    image_width: int
    image_height: int


@dataclass(slots=True)
class _Worker:
    detector: YuNetDetector
    embedder: SFaceEmbedder


@dataclass(frozen=True, slots=True)
class _Located:
    decoded: DecodedImage
    subject: Detection
    others: tuple[Detection, ...]
    aligned: NDArray[np.uint8]
    quality: QualityReport


class FaceEngine:
    """Thread-safe facade over a small pool of detector/recognizer pairs.

    OpenCV's detector and network objects keep per-call state, so each worker owns one of
    each; concurrent callers borrow a worker and wait if all are busy.
    """

    def __init__(self, workers: Sequence[_Worker], settings: EngineSettings) -> None:
        if not workers:
            raise BiometricError("the face engine needs at least one worker")
        self._settings = settings
        self._pool: queue.Queue[_Worker] = queue.Queue()
        for worker in workers:
            self._pool.put(worker)
        # The key templates record: the recognizer and the recipe, so that templates made
        # differently are never compared.
        self.model = SFaceEmbedder.spec.key + (
            FLIP_RECIPE_SUFFIX if settings.flip_augmentation else ""
        )
        self.detector_model = YuNetDetector.spec.key
        self.dimension = SFaceEmbedder.dimension

    @classmethod
    def from_model_dir(cls, model_dir: Path, settings: EngineSettings | None = None) -> FaceEngine:
        """Verify the pinned model files, then load ``settings.workers`` copies of each."""
        resolved = settings or EngineSettings()
        detector_path = verified_model_path(model_dir, YUNET_2023MAR)
        recognizer_path = verified_model_path(model_dir, SFACE_2021DEC)
        workers = [
            _Worker(
                detector=YuNetDetector(detector_path, resolved.detector),
                embedder=SFaceEmbedder(recognizer_path),
            )
            for _ in range(max(1, resolved.workers))
        ]
        return cls(workers, resolved)

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[_Worker]:
        worker = self._pool.get()
        try:
            yield worker
        finally:
            self._pool.put(worker)

    def decode(self, data: bytes, formats: frozenset[str] = ALLOWED_FORMATS) -> DecodedImage:
        return decode_image(data, self._settings.decode, formats)

    def _locate(self, worker: _Worker, decoded: DecodedImage) -> _Located:
        detections = worker.detector.detect(decoded.pixels)
        choice = choose_subject(detections, decoded.width, decoded.height)
        aligned = align_face(decoded.pixels, choice.subject.landmarks)
        quality = assess_quality(choice.subject, aligned, self._settings.quality)
        return _Located(decoded, choice.subject, choice.others, aligned, quality)

    def _finish(self, located: _Located, vector: NDArray[np.float32]) -> FaceAnalysis:
        return FaceAnalysis(
            template=Template(vector=vector, model=self.model),
            quality=located.quality,
            subject=located.subject,
            other_faces=located.others,
            image_width=located.decoded.width,
            image_height=located.decoded.height,
        )

    def analyse(self, data: bytes, formats: frozenset[str] = ALLOWED_FORMATS) -> FaceAnalysis:
        """Decode, find the subject, assess quality and embed one image.

        Raises :class:`~entryexit.errors.ImageDecodeError` or
        :class:`~entryexit.errors.NoFaceError`; quality problems are reported, not raised.
        """
        decoded = self.decode(data, formats)
        with self._borrow() as worker:
            located = self._locate(worker, decoded)
            vector = self._templates(worker, [located.aligned])[0]
        return self._finish(located, vector)

    def analyse_many(self, images: Sequence[bytes]) -> list[FaceAnalysis | BiometricError]:
        """Analyse several images, embedding all found faces in one batch.

        Per-image failures are returned in place (so one bad photo does not sink a batch).
        """
        failures: dict[int, BiometricError] = {}
        located: list[tuple[int, _Located]] = []
        with self._borrow() as worker:
            for index, data in enumerate(images):
                try:
                    located.append((index, self._locate(worker, self.decode(data))))
                except BiometricError as exc:
                    failures[index] = exc
            vectors = self._templates(worker, [item.aligned for _, item in located])
        analyses = {
            index: self._finish(item, vector)
            for (index, item), vector in zip(located, vectors, strict=True)
        }
        return [analyses[i] if i in analyses else failures[i] for i in range(len(images))]

    def _templates(
        self, worker: _Worker, aligned_faces: Sequence[NDArray[np.uint8]]
    ) -> NDArray[np.float32]:
        if not self._settings.flip_augmentation or not aligned_faces:
            return worker.embedder.embed(aligned_faces)
        mirrored = [np.ascontiguousarray(face[:, ::-1]) for face in aligned_faces]
        vectors = worker.embedder.embed([*aligned_faces, *mirrored])
        count = len(aligned_faces)
        return l2_normalise(vectors[:count] + vectors[count:])

    def embed_aligned(self, aligned_faces: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Templates of already aligned crops, with the engine's recipe."""
        with self._borrow() as worker:
            return self._templates(worker, aligned_faces)

    def detect(self, pixels: NDArray[np.uint8]) -> list[Detection]:
        with self._borrow() as worker:
            return worker.detector.detect(pixels)
