"""Settings repeat the engine's defaults (so reading them imports no model code): they must
stay equal."""

from __future__ import annotations

import subprocess
import sys

import pytest

from entryexit.biometrics.decode import DecodeLimits
from entryexit.biometrics.detect import DetectorSettings
from entryexit.biometrics.engine import EngineSettings
from entryexit.biometrics.quality import QualityThresholds
from entryexit.bootstrap import engine_settings
from entryexit.cli._common import load_settings
from entryexit.config import QualitySettings, Settings
from entryexit.errors import ConfigurationError


def test_settings_defaults_are_the_engines_defaults() -> None:
    assert QualityThresholds(**QualitySettings().model_dump()) == QualityThresholds()
    configured = engine_settings(Settings())
    assert configured.decode == DecodeLimits()
    assert configured.detector == DetectorSettings()
    engine_defaults = EngineSettings()
    assert configured.embed_batch_wait_ms == engine_defaults.embed_batch_wait_ms
    assert configured.embed_batch_max_faces == engine_defaults.embed_batch_max_faces


def test_micro_batching_is_wired_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRYEXIT_EMBED_BATCH_WAIT_MS", "4")
    monkeypatch.setenv("ENTRYEXIT_EMBED_BATCH_MAX_FACES", "6")
    configured = engine_settings(Settings())
    assert (configured.embed_batch_wait_ms, configured.embed_batch_max_faces) == (4.0, 6)


def test_reading_settings_imports_no_model_or_web_code() -> None:
    probe = (
        "import sys, entryexit.config; "
        "print(sorted({'cv2', 'onnxruntime', 'fastapi', 'sqlalchemy'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_trusted_proxies_and_log_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().trusted_proxies == ()  # default: X-Forwarded-For is never believed
    monkeypatch.setenv("ENTRYEXIT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    monkeypatch.setenv("ENTRYEXIT_LOG_FORMAT", "json")
    monkeypatch.setenv("ENTRYEXIT_LOG_LEVEL", "debug")
    settings = Settings()
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENTRYEXIT_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example"),
        ("ENTRYEXIT_LOG_FORMAT", "xml"),
        ("ENTRYEXIT_LOG_LEVEL", "loud"),
        ("ENTRYEXIT_EMBED_BATCH_WAIT_MS", "-1"),
        ("ENTRYEXIT_EMBED_BATCH_MAX_FACES", "1"),
        # Below one request's limit: every larger body would be "retry shortly" for ever.
        ("ENTRYEXIT_MAX_BUFFERED_BODY_BYTES", str(8 * 1024 * 1024)),
    ],
)
def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings()


def test_the_default_key_directory_is_outside_the_data_directory() -> None:
    settings = Settings()
    assert not settings.resolved_key_dir.is_relative_to(settings.data_dir)
    assert settings.key_dir_problem() is None
