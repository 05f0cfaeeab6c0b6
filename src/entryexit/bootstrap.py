"""The composition root: the only place that builds and wires EntryExit's parts."""

from __future__ import annotations

import cv2

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings


def build_face_engine(settings: Settings) -> FaceEngine:
    """Verify the installed models and load the engine (fails fast with the fix named)."""
    # OpenCV 5 warns on every network load that its new graph engine ignores targets.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(settings.opencv_threads)
    return FaceEngine.from_model_dir(settings.resolved_model_dir, settings.engine_settings())
