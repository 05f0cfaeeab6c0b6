"""Face recognizers as plug-ins: an ONNX embedding model plus a manifest that says how to feed
it and where its thresholds lie.

SFace is the built-in one; an agency's licensed model is installed with
``entryexit models install --onnx FILE --manifest FILE`` and selected with
``ENTRYEXIT_RECOGNIZER``. The manifest (TOML) names the model, its preprocessing (input size,
colour order, mean and standard deviation), the five-point alignment template it was trained
with, its output dimension and similarity, and its calibration: thresholds for target error
rates, measured by a command recorded beside them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.align import ALIGNED_SIZE, REFERENCE_LANDMARKS_112
from entryexit.biometrics.compare import l2_normalise
from entryexit.errors import (
    BiometricError,
    ConfigurationError,
    ModelInstallError,
    ModelUnavailableError,
)

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
RUNTIMES = ("opencv", "onnxruntime")
COLOUR_ORDERS = ("RGB", "BGR")
PLAIN_RECIPE = "plain"
FLIP_RECIPE = "flip"


@dataclass(frozen=True, slots=True)
class WatchlistBand:
    """The threshold for lists of up to ``max_entries`` entries."""

    max_entries: int
    threshold: float


def watchlist_band_threshold(bands: Sequence[WatchlistBand], entries: int) -> float:
    """The threshold of the smallest band that holds a list of ``entries`` entries. A list
    larger than every band is an error: the calibration says nothing about it, and a
    threshold for a smaller list would raise more false alerts than the target allows."""
    if not bands:
        raise ConfigurationError("the recognizer has no watchlist thresholds calibrated")
    ordered = sorted(bands, key=lambda band: band.max_entries)
    for band in ordered:
        if entries <= band.max_entries:
            return band.threshold
    raise ConfigurationError(
        f"a watchlist of {entries} entries is larger than the largest calibrated band"
        f" ({ordered[-1].max_entries}); set ENTRYEXIT_WATCHLIST_THRESHOLD from"
        " benchmarks/watchlist_bands.py at the list's size"
    )


@dataclass(frozen=True, slots=True)
class Calibration:
    """Thresholds for target error rates, with how they were measured.

    ``gallery`` maps a target FPIR on flight-sized galleries of ``gallery_size`` travelers to
    a 1:N threshold; ``verification`` maps a target FAR to a 1:1 threshold; ``watchlist``
    maps a target FPIR (false alerts per search) to thresholds by list size.
    ``gallery_by_frames`` maps a number of fused frames (2 or more) to its own 1:N table: a
    probe fused from several frames scores differently from a single frame's.
    ``gallery_by_references`` maps the number of reference photos a gallery entry fuses to
    its own single-frame 1:N table; ``gallery`` is then the threshold for every count without
    one (and for fused probes' reference counts alike), and :meth:`gallery_threshold` never
    lets it fall below a calibrated count's: an uncalibrated count gets the strictest.
    """

    gallery: Mapping[float, float]
    verification: Mapping[float, float]
    gallery_size: int
    source: str
    watchlist: Mapping[float, tuple[WatchlistBand, ...]] = field(default_factory=dict)
    gallery_by_frames: Mapping[int, Mapping[float, float]] = field(default_factory=dict)
    gallery_by_references: Mapping[int, Mapping[float, float]] = field(default_factory=dict)

    def gallery_threshold(
        self, target_fpir: float, frames: int = 1, references: int | None = None
    ) -> float:
        """The 1:N threshold for a probe fused from ``frames`` frames against an entry fused
        from ``references`` reference photos (None: any entry, so the strictest).

        One rule: the threshold calibrated for that (frames, references) cell; a cell not
        calibrated takes the strictest threshold calibrated for that many frames. Single
        frames are calibrated per reference count; fused probes only for one reference, on
        top of the strictest single-frame threshold, so a burst is held to its frame count's
        threshold whatever the entry. A frame count without its own calibration is an error
        (the single-frame threshold is never reused for it)."""
        if frames == 1:
            strictest = max(
                [
                    _lookup(self.gallery, target_fpir, "FPIR (1:N)"),
                    *(
                        threshold
                        for table in self.gallery_by_references.values()
                        for rate, threshold in table.items()
                        if _same_rate(rate, target_fpir)
                    ),
                ]
            )
            table = self.gallery_by_references.get(references) if references else None
            if table is None:
                return strictest
            for rate, threshold in table.items():
                if _same_rate(rate, target_fpir):
                    return threshold
            return strictest
        if frames not in self.gallery_by_frames:
            known = ", ".join(str(k) for k in sorted(self.gallery_by_frames)) or "none"
            raise ConfigurationError(
                f"the recognizer has no 1:N threshold calibrated for probes fused from {frames}"
                f" frames (calibrated frame counts: 1, {known}); calibrate with"
                " `entryexit evaluate gallery --frames K` or lower the policy's capture.max_frames"
            )
        return _lookup(
            self.gallery_by_frames[frames], target_fpir, f"FPIR (1:N, {frames} frames fused)"
        )

    def verification_threshold(self, target_far: float) -> float:
        return _lookup(self.verification, target_far, "FAR (1:1)")

    def watchlist_threshold(self, target_fpir: float, entries: int) -> float:
        """The alert threshold for a list of ``entries`` entries at ``target_fpir``."""
        for calibrated, bands in self.watchlist.items():
            if abs(calibrated - target_fpir) <= 1e-12 * max(1.0, abs(target_fpir)):
                return watchlist_band_threshold(bands, entries)
        known = ", ".join(f"{t:g}" for t in sorted(self.watchlist)) or "none"
        raise ConfigurationError(
            f"the recognizer has no watchlist thresholds for target FPIR {target_fpir:g}"
            f" (calibrated: {known})"
        )


def _same_rate(calibrated: float, target: float) -> bool:
    return abs(calibrated - target) <= 1e-12 * max(1.0, abs(target))


def _lookup(table: Mapping[float, float], target: float, what: str) -> float:
    for calibrated, threshold in table.items():
        if _same_rate(calibrated, target):
            return threshold
    known = ", ".join(f"{t:g}" for t in sorted(table)) or "none"
    raise ConfigurationError(
        f"the recognizer has no threshold calibrated for target {what} {target:g}"
        f" (calibrated: {known}); calibrate it with `entryexit evaluate gallery` or"
        " `entryexit evaluate lfw` (calibration.toml), or choose a calibrated target in the policy"
    )


@dataclass(frozen=True, slots=True)
class RecognizerManifest:
    key: str
    name: str
    version: str
    licence: str
    input_width: int
    input_height: int
    colour: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    landmarks: NDArray[np.float64]
    dimension: int
    runtime: str
    calibrations: Mapping[str, Calibration] = field(default_factory=dict)
    similarity: str = "cosine"

    def calibration(self, recipe: str) -> Calibration:
        try:
            return self.calibrations[recipe]
        except KeyError:
            known = ", ".join(sorted(self.calibrations)) or "none"
            raise ConfigurationError(
                f"recognizer {self.key} has no calibration for the {recipe!r} recipe"
                f" (calibrated: {known}); set the thresholds explicitly"
                " (ENTRYEXIT_MATCH_THRESHOLD, ENTRYEXIT_GALLERY_THRESHOLD) or calibrate"
            ) from None

    @property
    def uses_standard_alignment(self) -> bool:
        """True when the model's crop is the engine's own 112x112 ArcFace-template crop."""
        return (
            self.input_width == ALIGNED_SIZE
            and self.input_height == ALIGNED_SIZE
            and bool(np.allclose(self.landmarks, REFERENCE_LANDMARKS_112, atol=1e-3))
        )


def _field(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ModelInstallError(f"model manifest: '{where}{key}' is missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ModelInstallError(f"model manifest: '{where}{key}' has the wrong type")
    return value


def _triple(value: Any, where: str) -> tuple[float, float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ModelInstallError(f"model manifest: '{where}' must be three numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def _rate_table(table: Any, where: str) -> dict[float, float]:
    if not isinstance(table, dict):
        raise ModelInstallError(f"model manifest: '{where}' must be a table of rate = threshold")
    parsed = {}
    for rate_text, threshold in table.items():
        try:
            rate = float(rate_text)
        except ValueError:
            raise ModelInstallError(
                f"model manifest: '{where}' key {rate_text!r} is not a rate"
            ) from None
        if not 0 < rate < 1 or not isinstance(threshold, int | float) or not -1 <= threshold <= 1:
            raise ModelInstallError(
                f"model manifest: '{where}.\"{rate_text}\"' needs a rate in (0, 1) and a"
                " threshold in [-1, 1]"
            )
        parsed[rate] = float(threshold)
    return parsed


def _frame_tables(table: Any, where: str) -> dict[int, dict[float, float]]:
    """``"<frames>" = { "<rate>" = threshold, ... }`` tables, for 2 to 10 fused frames."""
    return _count_tables(table, where, "frame count", 2)


def _reference_tables(table: Any, where: str) -> dict[int, dict[float, float]]:
    """``"<references>" = { "<rate>" = threshold, ... }`` tables, for 1 to 10 references."""
    return _count_tables(table, where, "reference count", 1)


def _count_tables(table: Any, where: str, what: str, lowest: int) -> dict[int, dict[float, float]]:
    if not isinstance(table, dict):
        raise ModelInstallError(f"model manifest: '{where}' must be a table of {what} = rates")
    parsed = {}
    for count_text, rates in table.items():
        if not count_text.isdigit() or not lowest <= int(count_text) <= 10:
            raise ModelInstallError(
                f"model manifest: '{where}' key {count_text!r} is not a {what} ({lowest} to 10)"
            )
        parsed[int(count_text)] = _rate_table(rates, f'{where}."{count_text}"')
    return parsed


def _watchlist_tables(table: Any, where: str) -> dict[float, tuple[WatchlistBand, ...]]:
    """``"<rate>" = { "<max entries>" = threshold, ... }`` tables."""
    if not isinstance(table, dict):
        raise ModelInstallError(f"model manifest: '{where}' must be a table of rate = bands")
    parsed = {}
    for rate_text, bands in table.items():
        sizes = _rate_table_keys(bands, f'{where}."{rate_text}"')
        try:
            rate = float(rate_text)
        except ValueError:
            raise ModelInstallError(
                f"model manifest: '{where}' key {rate_text!r} is not a rate"
            ) from None
        if not 0 < rate < 1:
            raise ModelInstallError(f"model manifest: '{where}' rates lie in (0, 1)")
        parsed[rate] = tuple(WatchlistBand(size, threshold) for size, threshold in sizes)
    return parsed


def _rate_table_keys(table: Any, where: str) -> list[tuple[int, float]]:
    if not isinstance(table, dict) or not table:
        raise ModelInstallError(f"model manifest: '{where}' must be a table of entries = threshold")
    bands = []
    for size_text, threshold in table.items():
        if not size_text.isdigit() or int(size_text) < 1:
            raise ModelInstallError(
                f"model manifest: '{where}' key {size_text!r} is not a number of entries"
            )
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            raise ModelInstallError(f"model manifest: '{where}.\"{size_text}\"' is not a number")
        if not -1 <= threshold <= 1:
            raise ModelInstallError(
                f"model manifest: '{where}.\"{size_text}\"' lies outside [-1, 1]"
            )
        bands.append((int(size_text), float(threshold)))
    return sorted(bands)


def parse_recognizer_manifest(text: str) -> RecognizerManifest:
    """Parse and check a recognizer manifest; every problem names the field."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelInstallError(f"model manifest: not valid TOML ({exc})") from None
    key = _field(document, "key", str, "")
    if not KEY_PATTERN.match(key):
        raise ModelInstallError(
            "model manifest: 'key' must be 2-64 characters of a-z, 0-9, '.', '_' or '-'"
        )
    model = _field(document, "input", dict, "")
    width, height = (_field(model, name, int, "input.") for name in ("width", "height"))
    if not (16 <= width <= 1024 and 16 <= height <= 1024):
        raise ModelInstallError("model manifest: input width and height must be 16 to 1024")
    colour = _field(model, "colour", str, "input.")
    if colour not in COLOUR_ORDERS:
        raise ModelInstallError("model manifest: 'input.colour' is RGB or BGR")
    std = _triple(_field(model, "std", list, "input."), "input.std")
    if any(s == 0 for s in std):
        raise ModelInstallError("model manifest: 'input.std' values must not be 0")
    alignment = _field(document, "alignment", dict, "")
    points = _field(alignment, "landmarks", list, "alignment.")
    try:
        landmarks = np.array(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelInstallError("model manifest: 'alignment.landmarks' must be numbers") from None
    if landmarks.shape != (5, 2) or not np.all(np.isfinite(landmarks)):
        raise ModelInstallError(
            "model manifest: 'alignment.landmarks' is five [x, y] points in input pixels"
            " (right eye, left eye, nose tip, right and left mouth corner as seen in the image)"
        )
    output = _field(document, "output", dict, "")
    dimension = _field(output, "dimension", int, "output.")
    if not 2 <= dimension <= 4096:
        raise ModelInstallError("model manifest: 'output.dimension' must be 2 to 4096")
    similarity = output.get("similarity", "cosine")
    if similarity != "cosine":
        raise ModelInstallError("model manifest: only 'cosine' similarity is supported")
    runtime = document.get("runtime", "onnxruntime")
    if runtime not in RUNTIMES:
        raise ModelInstallError(f"model manifest: 'runtime' is one of {', '.join(RUNTIMES)}")
    calibrations = {}
    for recipe, table in dict(document.get("calibration", {})).items():
        if recipe not in (PLAIN_RECIPE, FLIP_RECIPE) or not isinstance(table, dict):
            raise ModelInstallError(
                f"model manifest: calibration tables are [calibration.{PLAIN_RECIPE}] or"
                f" [calibration.{FLIP_RECIPE}], not {recipe!r}"
            )
        calibrations[recipe] = Calibration(
            gallery=_rate_table(
                table.get("gallery_fpir", {}), f"calibration.{recipe}.gallery_fpir"
            ),
            verification=_rate_table(
                table.get("verification_far", {}), f"calibration.{recipe}.verification_far"
            ),
            gallery_size=int(table.get("gallery_size", 300)),
            source=str(table.get("source", "")),
            watchlist=_watchlist_tables(
                table.get("watchlist_fpir", {}), f"calibration.{recipe}.watchlist_fpir"
            ),
            gallery_by_frames=_frame_tables(
                table.get("gallery_fpir_by_frames", {}),
                f"calibration.{recipe}.gallery_fpir_by_frames",
            ),
            gallery_by_references=_reference_tables(
                table.get("gallery_fpir_by_references", {}),
                f"calibration.{recipe}.gallery_fpir_by_references",
            ),
        )
    return RecognizerManifest(
        key=key,
        name=str(document.get("name", key)),
        version=str(document.get("version", "")),
        licence=str(document.get("licence", document.get("license", "unstated"))),
        input_width=width,
        input_height=height,
        colour=colour,
        mean=_triple(_field(model, "mean", list, "input."), "input.mean"),
        std=std,
        landmarks=landmarks,
        dimension=dimension,
        runtime=runtime,
        calibrations=calibrations,
    )


class _Network(Protocol):
    def __call__(self, blob: NDArray[np.float32]) -> NDArray[np.float32]: ...


def _opencv_network(model_path: Path) -> _Network:
    try:
        net = cv2.dnn.readNetFromONNX(str(model_path))
    except cv2.error as exc:
        raise ModelUnavailableError(f"OpenCV could not load the model at {model_path}") from exc

    def run(blob: NDArray[np.float32]) -> NDArray[np.float32]:
        net.setInput(blob)
        return np.asarray(net.forward(), dtype=np.float32)

    return run


def _onnxruntime_network(model_path: Path) -> _Network:
    try:
        import onnxruntime  # only plug-in models need it
    except ImportError as exc:
        raise ModelUnavailableError(
            "this model needs onnxruntime: pip install onnxruntime"
        ) from exc
    options = onnxruntime.SessionOptions()
    # The engine runs one worker per core; each session keeps to its own core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailableError(
            f"onnxruntime could not load the model at {model_path}"
        ) from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelUnavailableError(
            f"the model at {model_path} has {len(inputs)} inputs; a face embedding model has one"
        )
    input_name = inputs[0].name

    def run(blob: NDArray[np.float32]) -> NDArray[np.float32]:
        try:
            return np.asarray(session.run(None, {input_name: blob})[0], dtype=np.float32)
        except Exception as exc:  # onnxruntime's errors have no common public base
            raise RuntimeError(str(exc)) from exc

    return run


class OnnxEmbedder:
    """Any ONNX face embedding model described by a :class:`RecognizerManifest`.

    Takes aligned crops in BGR (OpenCV's order) at the manifest's input size, applies its
    colour order, mean and standard deviation, runs one batch (N x 3 x H x W) and returns
    L2-normalised N x dimension rows. Not thread-safe; the engine gives each worker its own.
    """

    def __init__(self, model_path: Path, manifest: RecognizerManifest) -> None:
        self.manifest = manifest
        self.dimension = manifest.dimension
        loader = _opencv_network if manifest.runtime == "opencv" else _onnxruntime_network
        self._network = loader(model_path)
        self._mean = np.array(manifest.mean, dtype=np.float32)
        self._scale = 1.0 / np.array(manifest.std, dtype=np.float32)

    def embed(self, aligned_faces: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        if not aligned_faces:
            return np.empty((0, self.dimension), dtype=np.float32)
        expected = (self.manifest.input_height, self.manifest.input_width, 3)
        for face in aligned_faces:
            if face.shape != expected:
                raise BiometricError(
                    f"{self.manifest.key} needs {expected[1]}x{expected[0]}x3 crops,"
                    f" got {face.shape}"
                )
        batch = np.stack(aligned_faces).astype(np.float32)
        if self.manifest.colour == "RGB":
            batch = batch[..., ::-1]
        batch = (batch - self._mean) * self._scale
        blob = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        try:
            output = self._network(blob)
        except (cv2.error, RuntimeError, ValueError) as exc:
            raise BiometricError(f"the {self.manifest.key} model failed on a batch") from exc
        if output.size != len(aligned_faces) * self.dimension:
            raise BiometricError(
                f"the {self.manifest.key} model returned {output.size // len(aligned_faces)}"
                f" values per face; its manifest says {self.dimension}"
            )
        return l2_normalise(output.reshape(len(aligned_faces), self.dimension))
