"""Settings repeat the engine's defaults (so reading them imports no model code): they must
stay equal."""

from __future__ import annotations

import subprocess
import sys

from entryexit.biometrics.decode import DecodeLimits
from entryexit.biometrics.detect import DetectorSettings
from entryexit.biometrics.quality import QualityThresholds
from entryexit.bootstrap import engine_settings
from entryexit.config import QualitySettings, Settings


def test_settings_defaults_are_the_engines_defaults() -> None:
    assert QualityThresholds(**QualitySettings().model_dump()) == QualityThresholds()
    configured = engine_settings(Settings())
    assert configured.decode == DecodeLimits()
    assert configured.detector == DetectorSettings()


def test_reading_settings_imports_no_model_or_web_code() -> None:
    probe = (
        "import sys, entryexit.config; "
        "print(sorted({'cv2', 'onnxruntime', 'fastapi', 'sqlalchemy'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
