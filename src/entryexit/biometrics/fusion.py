"""One probe template from a short burst of frames of one traveler.

The fusion: every frame that passes the quality gate gets a weight from its quality
(:func:`frame_weight`); the frames are ranked by weight, the best ``limit`` are kept, and the
probe is the weighted mean of their L2-normalised templates, normalised again. With one frame
the probe is that frame's template, exactly. Frames the gate refuses never contribute.

A fused probe lies nearer the centre of its person's templates than any one frame, so its
scores are distributed differently: it is compared with a threshold calibrated for the number
of frames fused (``Calibration.gallery_by_frames``), never with the single-frame one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.quality import QualityReport
from entryexit.errors import BiometricError

# Sharpness (variance of the Laplacian of the aligned crop) above which a frame counts as fully
# sharp; the gate refuses below 15 (``QualityThresholds.min_sharpness``).
SHARP_ENOUGH = 250.0


def frame_weight(quality: QualityReport) -> float:
    """How much a frame that passed the gate counts in the fused probe, in (0, 1].

    The detector's confidence, times how frontal the face is (cosine of yaw and of roll), times
    the sharpness up to :data:`SHARP_ENOUGH`: a blurred or turned frame still counts, less.
    """
    frontal = math.cos(math.radians(min(abs(quality.yaw_degrees), 89.0))) * math.cos(
        math.radians(min(abs(quality.roll_degrees), 89.0))
    )
    sharp = min(1.0, max(quality.sharpness, 1.0) / SHARP_ENOUGH)
    return max(1e-3, min(1.0, quality.detector_score) * frontal * sharp)


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """What the gate made of one frame of a burst: ``reasons`` is empty when it passed (and
    then ``weight`` is its :func:`frame_weight`); ``unreadable`` when it could not be decoded."""

    reasons: tuple[str, ...] = ()
    weight: float | None = None
    unreadable: bool = False

    @property
    def passed(self) -> bool:
        return self.weight is not None


@dataclass(frozen=True, slots=True)
class FusedProbe:
    """The fused template and which frames (indices into the burst) made it, best first."""

    vector: NDArray[np.float32]
    frames: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.frames)


def best_frames(weights: Sequence[float | None], limit: int) -> tuple[int, ...]:
    """Indices of the ``limit`` best frames (highest weight; the earlier frame on a tie);
    ``None`` marks a frame that did not pass the gate."""
    if limit < 1:
        raise BiometricError("a fused probe needs at least one frame")
    usable = [(index, w) for index, w in enumerate(weights) if w is not None]
    usable.sort(key=lambda item: (-item[1], item[0]))
    return tuple(index for index, _ in usable[:limit])


def fuse_templates(
    vectors: NDArray[np.floating] | Sequence[NDArray[np.floating]],
    weights: Sequence[float],
) -> NDArray[np.float32]:
    """The quality-weighted mean of L2-normalised templates, normalised again."""
    matrix = l2_normalise(np.asarray(vectors, dtype=np.float32))
    if len(weights) != matrix.shape[0] or matrix.shape[0] == 0:
        raise BiometricError("fusion needs one weight per template and at least one template")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise BiometricError("fusion weights must be positive and finite")
    fused: NDArray[np.float32] = l2_normalise((w[:, np.newaxis] * matrix).sum(axis=0))[0]
    return fused


def fuse_burst(
    vectors: Sequence[NDArray[np.floating] | None],
    weights: Sequence[float | None],
    limit: int,
) -> FusedProbe:
    """Fuse the best ``limit`` frames of a burst; ``vectors[i]`` and ``weights[i]`` are None
    for a frame the gate refused. Raises if no frame passed."""
    if len(vectors) != len(weights):
        raise BiometricError("a burst needs one weight per frame")
    chosen = best_frames(
        [w if v is not None else None for v, w in zip(vectors, weights, strict=True)], limit
    )
    if not chosen:
        raise BiometricError("no frame of the burst passed the quality gate")
    picked = [vectors[i] for i in chosen]
    fused = fuse_templates(
        np.stack([np.asarray(v, dtype=np.float32) for v in picked if v is not None]),
        [float(weights[i] or 0.0) for i in chosen],
    )
    return FusedProbe(fused, chosen)


@dataclass(frozen=True, slots=True)
class BurstAnalysis:
    """A burst's frames as the gate judged them, and the probe fused from the best that
    passed (None when none did)."""

    frames: tuple[FrameCheck, ...]
    probe: FusedProbe | None

    @property
    def best_frame(self) -> int | None:
        """The index of the best frame fused (the one whose image may be kept)."""
        return self.probe.frames[0] if self.probe is not None else None
