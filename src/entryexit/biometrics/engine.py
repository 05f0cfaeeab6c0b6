"""The face engine: bytes in, a template and its quality out.

decode -> detect -> choose the subject -> align -> quality -> embed. Each stage lives in
its own module; this one only composes them and owns the model instances.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.align import align_face
from entryexit.biometrics.batching import DEFAULT_BATCH_MAX_FACES, BatchStats, EmbedBatcher
from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.biometrics.decode import (
    ALLOWED_FORMATS,
    DEFAULT_DECODE_LIMITS,
    DEFAULT_DECODE_SLOTS,
    DEFAULT_KIND_LIMITS,
    DecodedImage,
    DecodeLimits,
    DecodeSlots,
    ImageKind,
    KindLimits,
    decode_image,
)
from entryexit.biometrics.detect import (
    Detection,
    DetectorSettings,
    SubjectChoice,
    YuNetDetector,
    choose_subject,
    subject_priority,
)
from entryexit.biometrics.fusion import (
    BurstAnalysis,
    FrameCheck,
    FusedProbe,
    best_frames,
    frame_weight,
    fuse_templates,
)
from entryexit.biometrics.models import YUNET_2023MAR, verified_model_path
from entryexit.biometrics.plugins import load_recognizer
from entryexit.biometrics.quality import (
    DEFAULT_QUALITY_THRESHOLDS,
    QualityReport,
    QualityThresholds,
    assess_quality,
    quality_reasons,
)
from entryexit.biometrics.recognizer import (
    FLIP_RECIPE,
    PLAIN_RECIPE,
    Calibration,
    OnnxEmbedder,
    RecognizerManifest,
)
from entryexit.errors import BiometricError, ImageDecodeError, NoFaceError


@dataclass(frozen=True, slots=True)
class EngineSettings:
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    quality: QualityThresholds = DEFAULT_QUALITY_THRESHOLDS
    # The operator's ceiling over every kind of image (bytes, pixels)...
    decode: DecodeLimits = DEFAULT_DECODE_LIMITS
    # ...and each kind's own limits below it (gate frame, reference photo, chip DG2).
    decode_kinds: KindLimits = DEFAULT_KIND_LIMITS
    # Images decoded and held at once, across all callers (memory ceiling:
    # decode.decode_ceiling_bytes).
    decode_slots: int = DEFAULT_DECODE_SLOTS
    workers: int = 1
    # Test-time augmentation: the template is the normalised sum of the embeddings of the
    # aligned face and its mirror image. Costs one more face in the same forward pass and
    # raises the 1:N match rate at equal false positives (benchmarks/RESULTS.md).
    flip_augmentation: bool = True
    # The recognizer: the built-in SFace or an installed plug-in's key.
    recognizer: str = "sface-2021dec"
    # Captures are first detected on a copy whose longer side is at most this many pixels
    # (0: never). That detection is kept when the subject is large there (its
    # ``subject_priority`` at least ``coarse_detection_min_face`` pixels of the copy: a face
    # too small for the copy to find could not have outranked it) and confident; otherwise
    # the frame is detected again at full detection resolution. Alignment always warps the
    # full-resolution frame. Reference photos are always detected at full resolution.
    coarse_detection_side: int = 0
    coarse_detection_min_face: float = 24.0
    coarse_detection_min_score: float = 0.8
    # ...and only when every other face in the copy ranks below this share of the subject's
    # priority: with two comparable faces, the copy's coarser boxes can flip the choice.
    coarse_detection_runner_up: float = 0.7
    # With flip augmentation, the capture's mirror crop comes from a second detection on the
    # mirrored image only when the first detection's landmarks are asymmetric (estimated yaw
    # at least this many degrees) or its score is below ``mirror_detection_below_score``;
    # otherwise it is the aligned crop flipped. 0: always the second detection.
    mirror_detection_min_yaw: float = 0.0
    mirror_detection_below_score: float = 0.0
    # Micro-batching (biometrics.batching): a capture reaching its embedding step while
    # another is still locating waits at most this many milliseconds for it, and one forward
    # pass embeds both (at most ``embed_batch_max_faces`` crops). 0: off, every capture
    # embeds on its own. A lone capture never waits either way.
    embed_batch_wait_ms: float = 0.0
    embed_batch_max_faces: int = DEFAULT_BATCH_MAX_FACES

    @property
    def capture_recipe_signature(self) -> str:
        """What, besides the model, makes a capture's template: cached evaluation embeddings
        are reused only under the same signature."""
        return (
            f"coarse={self.coarse_detection_side}/{self.coarse_detection_min_face}"
            f"/{self.coarse_detection_min_score}/{self.coarse_detection_runner_up}"
            f";mirror={self.mirror_detection_min_yaw}"
            f"/{self.mirror_detection_below_score};max_side={self.detector.max_side}"
        )


FLIP_RECIPE_SUFFIX = "+flip"

# Bumped whenever a recipe changes the templates it makes (same model, same space, but cached
# evaluation embeddings must not be reused across it).
RECIPE_REVISION = 3

# Reference photos are enrolled before boarding, so they can afford a richer template than a
# live capture: the subject's landmarks are estimated again with detection on 2x and 1.5x the
# detection resolution and on the mirrored image; the crop of each estimate and its mirror
# (8 crops) are embedded and averaged. Same model, same space: a capture's cheap template is
# compared with it directly (benchmarks/RESULTS.md, "reference recipe").
REFERENCE_DETECTION_SCALES = (2.0, 1.5)

# The capture recipe's second detection runs on the face's neighbourhood at this size at most.
MIRROR_DETECTION_SIDE = 320

# YuNet's landmark order mirrored: right eye <-> left eye, right <-> left mouth corner.
_MIRRORED_LANDMARK_ORDER = [1, 0, 2, 4, 3]


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    """The subject's template with the evidence a decision needs."""

    template: Template
    quality: QualityReport
    subject: Detection
    other_faces: tuple[Detection, ...]
    image_width: int
    image_height: int


@dataclass(frozen=True, slots=True)
class FrameQuality:
    """What the quality gate says of a preview frame, and how many people face the camera."""

    quality: QualityReport
    people: int


@dataclass(slots=True)
class _Worker:
    detector: YuNetDetector
    embedder: OnnxEmbedder


@dataclass(frozen=True, slots=True)
class _Located:
    decoded: DecodedImage
    subject: Detection
    others: tuple[Detection, ...]
    aligned: NDArray[np.uint8]
    quality: QualityReport
    # The crop the recognizer takes; the same array as ``aligned`` for ArcFace-template models.
    model_crop: NDArray[np.uint8]
    # With flip augmentation: the mirrored face, aligned from its own detection in the
    # mirrored image (an independent landmark estimate), else None.
    mirror_crop: NDArray[np.uint8] | None = None


class FaceEngine:
    """Thread-safe facade over a small pool of detector/recognizer pairs.

    OpenCV's detector and network objects keep per-call state, so each worker owns one of
    each; concurrent callers borrow a worker and wait if all are busy.
    """

    def __init__(self, workers: Sequence[_Worker], settings: EngineSettings) -> None:
        if not workers:
            raise BiometricError("the face engine needs at least one worker")
        self._settings = settings
        self._slots = DecodeSlots(settings.decode_slots)
        self._pool: queue.Queue[_Worker] = queue.Queue()
        for worker in workers:
            self._pool.put(worker)
        self.recognizer: RecognizerManifest = workers[0].embedder.manifest
        # The key templates record: the recognizer and the recipe, so that templates made
        # differently are never compared.
        self.model = self.recognizer.key + (
            FLIP_RECIPE_SUFFIX if settings.flip_augmentation else ""
        )
        self.recipe = FLIP_RECIPE if settings.flip_augmentation else PLAIN_RECIPE
        self.detector_model = YuNetDetector.spec.key
        self.dimension = self.recognizer.dimension
        self._batcher = (
            EmbedBatcher(settings.embed_batch_wait_ms / 1000.0, settings.embed_batch_max_faces)
            if settings.embed_batch_wait_ms > 0 and settings.embed_batch_max_faces >= 2
            else None
        )

    @classmethod
    def from_model_dir(cls, model_dir: Path, settings: EngineSettings | None = None) -> FaceEngine:
        """Verify the pinned model files, then load ``settings.workers`` copies of each."""
        resolved = settings or EngineSettings()
        detector_path = verified_model_path(model_dir, YUNET_2023MAR)
        recognizer_path, manifest = load_recognizer(model_dir, resolved.recognizer)
        workers = [
            _Worker(
                detector=YuNetDetector(detector_path, resolved.detector),
                embedder=OnnxEmbedder(recognizer_path, manifest),
            )
            for _ in range(max(1, resolved.workers))
        ]
        return cls(workers, resolved)

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @property
    def batch_stats(self) -> BatchStats | None:
        """The embedding batcher's counters (None when micro-batching is off)."""
        return self._batcher.stats if self._batcher is not None else None

    @property
    def calibration(self) -> Calibration:
        """The recognizer's thresholds for this recipe (ConfigurationError if it has none)."""
        return self.recognizer.calibration(self.recipe)

    def _model_crop(
        self, pixels: NDArray[np.uint8], landmarks: NDArray[np.float64]
    ) -> NDArray[np.uint8]:
        manifest = self.recognizer
        return align_face(
            pixels,
            landmarks,
            destination=manifest.landmarks,
            output_size=(manifest.input_width, manifest.input_height),
        )

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[_Worker]:
        worker = self._pool.get()
        try:
            yield worker
        finally:
            self._pool.put(worker)

    def decode(
        self,
        data: bytes,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> DecodedImage:
        """Decode under ``kind``'s limits (capped by the operator's). Callers that keep the
        pixels hold a decode slot (``with self._slots``) from here until they are done."""
        limits = self._settings.decode_kinds.for_kind(kind).capped(self._settings.decode)
        return decode_image(data, limits, formats)

    def _choose_capture_subject(self, worker: _Worker, decoded: DecodedImage) -> SubjectChoice:
        """The subject from the coarse copy when it is large and confident there, else from
        detection at full detection resolution (EngineSettings.coarse_detection_side)."""
        settings = self._settings
        long_side = max(decoded.width, decoded.height)
        coarse_side = settings.coarse_detection_side
        if 0 < coarse_side < min(settings.detector.max_side, long_side):
            found = worker.detector.detect(decoded.pixels, max_side=coarse_side)
            if found:
                choice = choose_subject(found, decoded.width, decoded.height)
                scale = coarse_side / long_side
                priority = subject_priority(choice.subject, decoded.width, decoded.height)
                runner_up = max(
                    (subject_priority(o, decoded.width, decoded.height) for o in choice.others),
                    default=0.0,
                )
                if (
                    priority * scale >= settings.coarse_detection_min_face
                    and choice.subject.score >= settings.coarse_detection_min_score
                    and runner_up < settings.coarse_detection_runner_up * priority
                ):
                    return choice
        return choose_subject(worker.detector.detect(decoded.pixels), decoded.width, decoded.height)

    def _needs_mirror_detection(self, subject: Detection, quality: QualityReport) -> bool:
        settings = self._settings
        return (
            abs(quality.yaw_degrees) >= settings.mirror_detection_min_yaw
            or subject.score < settings.mirror_detection_below_score
        )

    def _locate(self, worker: _Worker, decoded: DecodedImage, capture: bool = False) -> _Located:
        if capture:
            choice = self._choose_capture_subject(worker, decoded)
        else:
            choice = choose_subject(
                worker.detector.detect(decoded.pixels), decoded.width, decoded.height
            )
        aligned = align_face(decoded.pixels, choice.subject.landmarks)
        quality = assess_quality(choice.subject, aligned, self._settings.quality)
        model_crop = (
            aligned
            if self.recognizer.uses_standard_alignment
            else self._model_crop(decoded.pixels, choice.subject.landmarks)
        )
        mirror_crop = None
        if self._settings.flip_augmentation:
            if capture and not self._needs_mirror_detection(choice.subject, quality):
                mirror_crop = np.ascontiguousarray(model_crop[:, ::-1])
            else:
                mirror_crop = self._mirror_crop(worker, decoded.pixels, choice.subject, model_crop)
        return _Located(
            decoded, choice.subject, choice.others, aligned, quality, model_crop, mirror_crop
        )

    def _mirror_crop(
        self,
        worker: _Worker,
        pixels: NDArray[np.uint8],
        subject: Detection,
        model_crop: NDArray[np.uint8],
    ) -> NDArray[np.uint8]:
        """The subject in the mirrored image, aligned from YuNet's landmarks *there*.

        Mirroring the aligned crop would repeat the landmark estimate's error; detecting
        again on the mirrored image gives an independent estimate, which lowered FNIR at
        FPIR 1e-3 from 4.53% to 4.04% (benchmarks/RESULTS.md, "capture recipe"). To keep that
        second detection cheap on large frames it runs on the face's neighbourhood only
        (three face widths and heights), scaled to at most 320 pixels.
        """
        height, width = pixels.shape[:2]
        left = max(0, int(subject.x - subject.width))
        right = min(width, int(subject.x + 2 * subject.width) + 1)
        top = max(0, int(subject.y - subject.height))
        bottom = min(height, int(subject.y + 2 * subject.height) + 1)
        region = np.ascontiguousarray(pixels[top:bottom, left:right][:, ::-1])
        shifted = replace(
            subject,
            x=subject.x - left,
            y=subject.y - top,
            landmarks=subject.landmarks - np.array([left, top], dtype=np.float64),
        )
        found = worker.detector.detect(
            region, max_side=min(MIRROR_DETECTION_SIDE, max(region.shape[:2]))
        )
        match = _same_face(_mirror(shifted, region.shape[1]), found)
        if match is None:
            return np.ascontiguousarray(model_crop[:, ::-1])
        return self._model_crop(region, match.landmarks)

    def _reference_crops(self, worker: _Worker, located: _Located) -> list[NDArray[np.uint8]]:
        """The subject's crop from every landmark estimate, each also mirrored (8 crops).

        Estimates: ``located``'s own, detection at 2x and 1.5x the detection resolution, and
        detection on the mirrored image (the capture recipe's mirror crop, reused).
        """
        pixels = located.decoded.pixels
        height, width = pixels.shape[:2]
        base_side = min(self._settings.detector.max_side, max(height, width))
        crops = [located.model_crop]
        for scale in REFERENCE_DETECTION_SCALES:
            found = worker.detector.detect(pixels, max_side=round(base_side * scale))
            match = _same_face(located.subject, found)
            if match is not None:
                crops.append(self._model_crop(pixels, match.landmarks))
        mirror_crop = located.mirror_crop
        if mirror_crop is None:
            mirror_crop = self._mirror_crop(worker, pixels, located.subject, located.model_crop)
        crops.append(np.ascontiguousarray(mirror_crop[:, ::-1]))
        return [*crops, *(np.ascontiguousarray(crop[:, ::-1]) for crop in crops)]

    def _finish(self, located: _Located, vector: NDArray[np.float32]) -> FaceAnalysis:
        return FaceAnalysis(
            template=Template(vector=vector, model=self.model),
            quality=located.quality,
            subject=located.subject,
            other_faces=located.others,
            image_width=located.decoded.width,
            image_height=located.decoded.height,
        )

    def analyse(
        self,
        data: bytes,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> FaceAnalysis:
        """Decode, find the subject, assess quality and embed one image.

        Raises :class:`~entryexit.errors.ImageDecodeError` or
        :class:`~entryexit.errors.NoFaceError`; quality problems are reported, not raised.
        """
        # Slot, then worker: the one order every method takes them in.
        with self._slots:
            decoded = self.decode(data, formats, kind)
            if self._batcher is None:
                with self._borrow() as worker:
                    located = self._locate(worker, decoded, capture=True)
                    vector = self._capture_templates(worker, [located])[0]
            else:
                located, vector = self._analyse_batched(self._batcher, decoded)
            return self._finish(located, vector)

    def _analyse_batched(
        self, batcher: EmbedBatcher, decoded: DecodedImage
    ) -> tuple[_Located, NDArray[np.float32]]:
        """Locate on a borrowed worker, then embed through the batcher: a capture whose
        crops another capture's pass embeds gives its worker back before it waits."""
        worker = self._pool.get()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._pool.put(worker)

        try:
            with batcher.locating() as ticket:
                located = self._locate(worker, decoded, capture=True)
                crops = [located.model_crop]
                if located.mirror_crop is not None:
                    crops.append(located.mirror_crop)
                rows = batcher.embed(ticket, crops, worker.embedder.embed, release)
        finally:
            release()
        if len(rows) == 1:
            return located, rows[0]
        return located, l2_normalise(rows[:1] + rows[1:])[0]

    def analyse_many(self, images: Sequence[bytes]) -> list[FaceAnalysis | BiometricError]:
        """Analyse several images, embedding all found faces in one batch.

        Per-image failures are returned in place (so one bad photo does not sink a batch).
        """
        failures: dict[int, BiometricError] = {}
        located: list[tuple[int, _Located]] = []
        # One slot for the batch (its images are decoded one after another, but all kept
        # until the batch is embedded: batches are for evaluation, not for requests).
        with self._slots, self._borrow() as worker:
            for index, data in enumerate(images):
                try:
                    located.append((index, self._locate(worker, self.decode(data), capture=True)))
                except BiometricError as exc:
                    failures[index] = exc
            vectors = self._capture_templates(worker, [item for _, item in located])
        analyses = {
            index: self._finish(item, vector)
            for (index, item), vector in zip(located, vectors, strict=True)
        }
        return [analyses[i] if i in analyses else failures[i] for i in range(len(images))]

    def analyse_burst(
        self,
        frames: Sequence[bytes],
        limit: int,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> BurstAnalysis:
        """Gate every frame of a burst for quality, embed only the best ``limit`` that pass and
        fuse them (``biometrics.fusion``) into one probe.

        Each frame is decoded under ``kind``'s limits in its own decode slot, and only its
        crops outlive the slot, so a burst holds no more decoded pixels at once than a single
        capture. An unreadable frame, one without a face or one the gate refuses is reported in
        its :class:`FrameCheck`; if no frame could even be decoded, the first frame's decoding
        error is raised, as for a single capture.
        """
        checks: list[FrameCheck] = []
        crops: dict[int, tuple[NDArray[np.uint8], NDArray[np.uint8] | None]] = {}
        first_error: ImageDecodeError | None = None
        for index, data in enumerate(frames):
            try:
                with self._slots:
                    decoded = self.decode(data, formats, kind)
                    with self._borrow() as worker:
                        located = self._locate(worker, decoded, capture=True)
            except NoFaceError:
                checks.append(FrameCheck(("no_face",)))
                continue
            except ImageDecodeError as exc:
                first_error = first_error or exc
                checks.append(FrameCheck(("unreadable",), unreadable=True))
                continue
            quality = located.quality
            if quality.acceptable:
                checks.append(FrameCheck(weight=frame_weight(quality)))
                crops[index] = (located.model_crop, located.mirror_crop)
            else:
                checks.append(FrameCheck(tuple(r.value for r in quality.reasons)))
            del located, decoded
        if first_error is not None and all(check.unreadable for check in checks):
            raise first_error
        chosen = best_frames([check.weight for check in checks], limit)
        if not chosen:
            return BurstAnalysis(tuple(checks), None)
        with self._borrow() as worker:
            vectors = self._embed_crops(
                worker, [crops[i][0] for i in chosen], [crops[i][1] for i in chosen]
            )
        fused = fuse_templates(vectors, [checks[i].weight or 0.0 for i in chosen])
        return BurstAnalysis(tuple(checks), FusedProbe(fused, chosen))

    def analyse_reference(
        self,
        data: bytes,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.REFERENCE_PHOTO,
    ) -> FaceAnalysis:
        """Like :meth:`analyse`, with the richer reference recipe (about 8x the cost)."""
        with self._slots:
            return self._analyse_reference(self.decode(data, formats, kind))

    def _analyse_reference(self, decoded: DecodedImage) -> FaceAnalysis:
        with self._borrow() as worker:
            located = self._locate(worker, decoded)
            vectors = worker.embedder.embed(self._reference_crops(worker, located))
        return self._finish(located, l2_normalise(vectors.sum(axis=0)[np.newaxis, :])[0])

    def analyse_references(self, images: Sequence[bytes]) -> list[FaceAnalysis | BiometricError]:
        """:meth:`analyse_reference` for several images; failures are returned in place."""
        outcomes: list[FaceAnalysis | BiometricError] = []
        for data in images:
            try:
                with self._slots:
                    decoded = self.decode(data, kind=ImageKind.REFERENCE_PHOTO)
                    outcomes.append(self._analyse_reference(decoded))
            except BiometricError as exc:
                outcomes.append(exc)
        return outcomes

    def _capture_templates(
        self, worker: _Worker, located: Sequence[_Located]
    ) -> NDArray[np.float32]:
        return self._embed_crops(
            worker, [item.model_crop for item in located], [item.mirror_crop for item in located]
        )

    def _embed_crops(
        self,
        worker: _Worker,
        crops: Sequence[NDArray[np.uint8]],
        mirror_crops: Sequence[NDArray[np.uint8] | None],
    ) -> NDArray[np.float32]:
        mirrors = [crop for crop in mirror_crops if crop is not None]
        if not mirrors:
            return worker.embedder.embed(crops)
        vectors = worker.embedder.embed([*crops, *mirrors])
        return l2_normalise(vectors[: len(crops)] + vectors[len(crops) :])

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

    def check_frame(
        self, data: bytes, scale: float = 1.0, kind: ImageKind = ImageKind.PREVIEW
    ) -> FrameQuality:
        """The quality gate alone (no embedding) on a frame downscaled by the client from the
        capture it would send: distances in pixels are judged as ``scale`` times larger.
        Decoded under ``kind``'s limits (a preview's: small). Raises
        :class:`~entryexit.errors.NoFaceError` when there is no face."""
        with self._slots:
            decoded = self.decode(data, kind=kind)
            with self._borrow() as worker:
                detections = worker.detector.detect(decoded.pixels)
            choice = choose_subject(detections, decoded.width, decoded.height)
            aligned = align_face(decoded.pixels, choice.subject.landmarks)
        report = assess_quality(choice.subject, aligned, self._settings.quality)
        values = {
            "inter_eye_pixels": report.inter_eye_pixels * scale,
            "yaw_degrees": report.yaw_degrees,
            "roll_degrees": report.roll_degrees,
            "sharpness": report.sharpness,
            "brightness": report.brightness,
            "detector_score": report.detector_score,
        }
        scaled = QualityReport(**values, reasons=quality_reasons(values, self._settings.quality))
        # A face at least half the subject's size is someone standing at the camera too.
        close = [
            other
            for other in choice.others
            if other.inter_eye_distance >= 0.5 * choice.subject.inter_eye_distance
        ]
        return FrameQuality(scaled, 1 + len(close))

    def detect(self, pixels: NDArray[np.uint8]) -> list[Detection]:
        with self._borrow() as worker:
            return worker.detector.detect(pixels)


def _mirror(detection: Detection, image_width: int) -> Detection:
    """The same face described in the horizontally mirrored image."""
    landmarks = detection.landmarks[_MIRRORED_LANDMARK_ORDER].copy()
    # Pixel centres sit at whole coordinates: column x becomes column width - 1 - x.
    landmarks[:, 0] = image_width - 1 - landmarks[:, 0]
    return Detection(
        x=image_width - detection.x - detection.width,
        y=detection.y,
        width=detection.width,
        height=detection.height,
        landmarks=landmarks,
        score=detection.score,
    )


def _same_face(subject: Detection, candidates: Sequence[Detection]) -> Detection | None:
    """The candidate that overlaps ``subject`` most (intersection over union >= 0.5)."""
    best, best_overlap = None, 0.5
    for candidate in candidates:
        overlap = _intersection_over_union(subject, candidate)
        if overlap >= best_overlap:
            best, best_overlap = candidate, overlap
    return best


def _intersection_over_union(first: Detection, second: Detection) -> float:
    left = max(first.x, second.x)
    top = max(first.y, second.y)
    right = min(first.x + first.width, second.x + second.width)
    bottom = min(first.y + first.height, second.y + second.height)
    intersection = max(0.0, right - left) * max(0.0, bottom - top)
    union = first.area + second.area - intersection
    return intersection / union if union > 0 else 0.0
