"""The minutiae engine, in two measured profiles (benchmarks/RESULTS.md, "Fingerprints").

``nbis-mcc-v1`` (default; meets the speed targets): NBIS mindtct minutiae, MCC (LSA-R) and
bozorth3 scores fused. ``leader-mcc-v1`` (several times more accurate, ~0.5 s of CPU per
extraction): LEADER network minutiae, MCC (LSA-R) alone (bozorth3 only hurts there).
``leader-mcc-v2``: the same network with its graph's activations and norms fused, on the
print's ridge area only (``_leader``): the same minutiae for a little over half the CPU.
Templates and scores record the profile's key; never compare across keys.

Pipeline of ``nbis-mcc-v1`` for an image (already 500 ppi greyscale, see ``_decode``):

1. mindtct (NBIS LFS V2, compiled C) finds minutiae: position, one of 32 directions,
   reliability, ending or bifurcation; those outside the eroded foreground (``_segment``)
   are dropped.
2. For each minutia an MCC cylinder (16 x 16 x 6 float cells, radius 70 px) describes its
   neighbourhood, invariant to translation and rotation (``_mcc``).
3. Two templates are compared by MCC's LSS-R (local similarities, then relaxation for
   geometric consistency) and by bozorth3; the two are normalised and averaged
   (``_fusion.fuse_matchers``). The result is a similarity in [0, 1].

ISO/IEC 19794-2 records skip step 1: their minutiae are converted to the same template.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints import _mcc, _native, _segment
from entryexit.biometrics.fingerprints._decode import FingerprintImage
from entryexit.biometrics.fingerprints._fusion import fuse_matchers
from entryexit.biometrics.fingerprints._leader import LeaderNetwork
from entryexit.biometrics.fingerprints._quality import (
    DEFAULT_QUALITY_THRESHOLDS,
    FingerprintQuality,
    FingerprintQualityThresholds,
    assess_quality,
)
from entryexit.biometrics.fingerprints._template import (
    QUALITY_UNKNOWN,
    FingerPosition,
    FingerprintTemplate,
    TemplateSource,
)
from entryexit.errors import BiometricError, InvalidInputError


class FingerprintExtractor(StrEnum):
    MINDTCT = "mindtct"
    LEADER = "leader"
    LEADER_FAST = "leader-fast"


ENGINE_KEYS = {
    FingerprintExtractor.MINDTCT: "nbis-mcc-v1",
    FingerprintExtractor.LEADER: "leader-mcc-v1",
    FingerprintExtractor.LEADER_FAST: "leader-mcc-v2",
}
ENGINE_KEY = ENGINE_KEYS[FingerprintExtractor.MINDTCT]
# Fewer minutiae than this is a failure to enrol: neither matcher can tell prints apart.
MIN_TEMPLATE_MINUTIAE = 8
# Minutiae kept of a view read from an ISO/IEC 19794-2 record (the most reliable first, as
# an image's template keeps the most reliable 255). A real plain print has 30-80; a record
# may list 255, and two such views cost ~0.45 s of CPU a comparison, over 4x two capped
# ones (probe s9 FP1; benchmarks/RESULTS.md, "Session 9, H5").
MAX_VIEW_MINUTIAE = 120
_LFS_STEP = math.pi / 16.0  # 32 directions
_RIDGE_ENDING, _BIFURCATION = 1, 2  # minutia kinds, as ISO/IEC 19794-2 numbers them


class NoFingerprintError(BiometricError):
    """Too few minutiae in the image to make a template (a failure to enrol)."""

    code = "no-fingerprint"


@dataclass(frozen=True, slots=True)
class MatcherScores:
    mcc: float
    bozorth: int | None  # None where the profile does not use bozorth3
    fused: float


@dataclass(frozen=True, slots=True)
class _Prepared:
    cylinders: _mcc.Cylinders
    native: object  # the ctypes template bozorth3 reads


class MinutiaeFingerprintEngine:
    """:class:`~entryexit.biometrics.fingerprints.FingerprintEngine` over NBIS + MCC."""

    def __init__(
        self,
        library: _native.NbisLibrary,
        thresholds: FingerprintQualityThresholds = DEFAULT_QUALITY_THRESHOLDS,
        cache_size: int = 4096,
        leader: LeaderNetwork | None = None,
    ) -> None:
        """``leader`` selects a LEADER profile (v2 when the network runs fast); without it,
        ``nbis-mcc-v1``."""
        self._lib = library
        self._leader = leader
        self.extractor = FingerprintExtractor.MINDTCT
        if leader is not None:
            self.extractor = (
                FingerprintExtractor.LEADER_FAST if leader.fast else FingerprintExtractor.LEADER
            )
        self._thresholds = thresholds
        self._cache: OrderedDict[int, tuple[FingerprintTemplate, _Prepared]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @classmethod
    def from_paths(
        cls,
        library: Path,
        leader_model: Path | None = None,
        threads: int = 1,
        fast_leader: bool = False,
    ) -> MinutiaeFingerprintEngine:
        """The engine over files whose hashes the caller has checked (``_install``)."""
        network = (
            LeaderNetwork(leader_model, threads, fast=fast_leader)
            if leader_model is not None
            else None
        )
        return cls(_native.load_library(library), leader=network)

    @property
    def key(self) -> str:
        return ENGINE_KEYS[self.extractor]

    # -- extraction ------------------------------------------------------------------------
    def minutiae(self, image: FingerprintImage) -> npt.NDArray[np.float64]:
        """Template rows: x, y, angle (radians, y down), kind, reliability. mindtct's are
        kept only inside the print's foreground (``_segment``); LEADER's as it finds them."""
        if self._leader is not None:
            return self._leader.minutiae(image.pixels)
        raw = self._lib.mindtct(image.pixels, 500.0)
        raw = raw[_segment.inside(_segment.foreground_mask(image.pixels), raw[:, :2])]
        angle = raw[:, 2] * _LFS_STEP - math.pi / 2.0
        kind = np.where(raw[:, 4] == 1, _RIDGE_ENDING, _BIFURCATION)
        return np.stack([raw[:, 0], raw[:, 1], angle, kind, raw[:, 3]], axis=1).reshape(-1, 5)

    def assess(self, image: FingerprintImage) -> FingerprintQuality:
        rows = self.minutiae(image)
        return assess_quality(image.pixels, rows[:, :2], self._thresholds)

    def extract(
        self, image: FingerprintImage, finger: FingerPosition, quality: int = QUALITY_UNKNOWN
    ) -> FingerprintTemplate:
        return self._template(self.minutiae(image), image, finger, quality)

    def read(
        self, image: FingerprintImage, finger: FingerPosition
    ) -> tuple[FingerprintQuality, FingerprintTemplate | None]:
        """:meth:`assess` then (for a usable print) :meth:`extract` with its score, from one
        run of the extractor: the same quality and template bytes as the two calls, for half
        the CPU (mindtct and the foreground mask were run twice, probe M5)."""
        rows = self.minutiae(image)
        quality = assess_quality(image.pixels, rows[:, :2], self._thresholds)
        if not quality.acceptable:
            return quality, None
        return quality, self._template(rows, image, finger, quality.score)

    def _template(
        self,
        rows: npt.NDArray[np.float64],
        image: FingerprintImage,
        finger: FingerPosition,
        quality: int,
    ) -> FingerprintTemplate:
        if rows.shape[0] < MIN_TEMPLATE_MINUTIAE:
            raise NoFingerprintError(
                f"{rows.shape[0]} minutiae found; at least {MIN_TEMPLATE_MINUTIAE} are needed"
            )
        if rows.shape[0] > 255:
            rows = rows[np.argsort(-rows[:, 4], kind="stable")[:255]]
        source = TemplateSource.LEADER if self._leader else TemplateSource.MINDTCT
        return FingerprintTemplate(source, finger, image.width, image.height, rows, quality)

    def from_iso_minutiae(
        self,
        minutiae: npt.NDArray[np.float64],
        frame: tuple[int, int, float, float],
        finger: FingerPosition,
        quality: int = QUALITY_UNKNOWN,
    ) -> FingerprintTemplate:
        """A 500 ppi template from ISO/IEC 19794-2 minutiae.

        ``minutiae`` is (n, 5): x, y, angle in 1/256 turns counter-clockwise as seen (ISO),
        kind (0 other, 1 ending, 2 bifurcation), quality 0..100 (0: not reported);
        ``frame`` is the record's width, height and x/y resolution in ppi. Coordinates are
        scaled by the record's own stated resolution and nothing else. Of more than
        :data:`MAX_VIEW_MINUTIAE`, the most reliable are kept (in the record's order).
        """
        width_px, height_px, x_ppi, y_ppi = frame
        m = np.asarray(minutiae, dtype=np.float64).reshape(-1, 5)
        if m.shape[0] < MIN_TEMPLATE_MINUTIAE:
            raise NoFingerprintError(
                f"the record has {m.shape[0]} minutiae; at least {MIN_TEMPLATE_MINUTIAE} are needed"
            )
        if m.shape[0] > 255:
            raise InvalidInputError("a finger view has at most 255 minutiae")
        if m.shape[0] > MAX_VIEW_MINUTIAE:
            # Unreported quality (0) ranks as the middle (0.5), as in the rows below.
            reliability = np.where(m[:, 4] > 0, m[:, 4] / 100.0, 0.5)
            m = m[np.sort(np.argsort(-reliability, kind="stable")[:MAX_VIEW_MINUTIAE])]
        sx, sy = 500.0 / x_ppi, 500.0 / y_ppi
        width = max(1, round(width_px * sx))
        height = max(1, round(height_px * sy))
        rows = np.stack(
            [
                np.minimum(m[:, 0] * sx, width - 1),
                np.minimum(m[:, 1] * sy, height - 1),
                # ISO angles turn counter-clockwise as seen (y up); ours turn towards +y.
                (-m[:, 2] * 2.0 * math.pi / 256.0) % (2.0 * math.pi),
                m[:, 3],
                np.where(m[:, 4] > 0, m[:, 4] / 100.0, 0.5),
            ],
            axis=1,
        )
        return FingerprintTemplate(TemplateSource.ISO19794_2, finger, width, height, rows, quality)

    # -- comparison ------------------------------------------------------------------------
    def prepare(self, template: FingerprintTemplate) -> _Prepared:
        """Cylinders and the bozorth3 structure of ``template`` (cached by identity)."""
        key = id(template)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is template:
                self._cache.move_to_end(key)
                return hit[1]
        m = template.minutiae
        cylinders = _mcc.build_cylinders(m[:, :3])
        lfs = np.rint((m[:, 2] + math.pi / 2.0) / _LFS_STEP).astype(np.int64) % 32
        native = _native.pack(
            m[:, 0],
            m[:, 1],
            lfs,
            m[:, 4],
            m[:, 3] == _RIDGE_ENDING,
            template.width,
            template.height,
        )
        prepared = _Prepared(cylinders, native)
        with self._cache_lock:
            self._cache[key] = (template, prepared)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return prepared

    def scores(self, probe: FingerprintTemplate, reference: FingerprintTemplate) -> MatcherScores:
        a, b = self.prepare(probe), self.prepare(reference)
        mcc = _mcc.lsar_score(a.cylinders, b.cylinders)
        if self._leader is not None:
            # MCC alone, unscaled: LEADER's clean minutiae push mated scores far above the
            # fused profile's clipping point, and clipped scores would tie.
            return MatcherScores(mcc, None, mcc)
        bozorth = self._lib.bozorth3(a.native, b.native)  # type: ignore[arg-type]
        return MatcherScores(mcc, bozorth, fuse_matchers(mcc, float(bozorth)))

    def compare(
        self, probe: FingerprintTemplate, references: Sequence[FingerprintTemplate]
    ) -> npt.NDArray[np.float64]:
        return np.array([self.scores(probe, r).fused for r in references], dtype=np.float64)

    def paired_minutiae(
        self, probe: FingerprintTemplate, reference: FingerprintTemplate
    ) -> tuple[tuple[int, int, float], ...]:
        """The minutiae MCC paired to score ``probe`` against ``reference`` (rows of each
        template's minutiae, and the pair's relaxed similarity 0..1, most consistent first):
        the assignment behind the MCC half of the score, computed again on request for an
        officer's display, never on the comparison path."""
        a, b = self.prepare(probe), self.prepare(reference)
        return _mcc.lsar_pairs(a.cylinders, b.cylinders)
