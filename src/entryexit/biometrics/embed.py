"""Face embedding with SFace (OpenCV Zoo, 2021dec)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.align import ALIGNED_SIZE
from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.models import SFACE_2021DEC, ModelSpec
from entryexit.errors import BiometricError, ModelUnavailableError


class SFaceEmbedder:
    """SFace through OpenCV's DNN module.

    Preprocessing as the model was trained: a 112x112 aligned crop, RGB channel order,
    raw 0..255 values (the network normalises internally). Output: 128 floats, which we
    L2-normalise so that a dot product is the cosine similarity.

    OpenCV's DNN (one thread: about 14 ms a face here) beat onnxruntime on this model
    (about 24 ms; the file lists its weights as graph inputs, which defeats constant
    folding), so OpenCV it is. Not thread-safe; the engine gives each worker its own.
    """

    spec: ModelSpec = SFACE_2021DEC
    dimension = 128
    input_size = ALIGNED_SIZE
    swap_rb = True
    scale = 1.0
    mean = (0.0, 0.0, 0.0)

    def __init__(self, model_path: Path) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(str(model_path))
        except cv2.error as exc:
            raise ModelUnavailableError(
                f"OpenCV could not load the SFace model at {model_path}"
            ) from exc

    def embed(self, aligned_faces: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Embed a batch of aligned BGR crops in one forward pass; returns N x 128."""
        if not aligned_faces:
            return np.empty((0, self.dimension), dtype=np.float32)
        for face in aligned_faces:
            if face.shape != (self.input_size, self.input_size, 3):
                raise BiometricError(
                    f"SFace needs {self.input_size}x{self.input_size}x3 aligned crops,"
                    f" got {face.shape}"
                )
        blob = cv2.dnn.blobFromImages(
            list(aligned_faces),
            self.scale,
            (self.input_size, self.input_size),
            self.mean,
            swapRB=self.swap_rb,
        )
        self._net.setInput(blob)
        features = np.asarray(self._net.forward(), dtype=np.float32).reshape(
            len(aligned_faces), self.dimension
        )
        return l2_normalise(features)
