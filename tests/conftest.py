"""Shared fixtures: a clean environment, the lfw-dev data set and the installed models."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from entryexit.biometrics.models import ModelStatus, list_models
from entryexit.config import Settings
from tests.logging_state import CONFIGURED_LOGGERS, handlers_on_closed_streams

if TYPE_CHECKING:
    from entryexit.biometrics import FaceEngine

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_DEV = Path(
    os.environ.get("ENTRYEXIT_TEST_LFW_DIR", REPO_ROOT.parent / "shared" / "data" / "lfw-dev")
)
_ORIGINAL_MODEL_DIR = Settings().resolved_model_dir


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's ENTRYEXIT_* settings; each gets its own data and key
    directories."""
    for name in list(os.environ):
        if name.startswith("ENTRYEXIT_") and not name.startswith("ENTRYEXIT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    # The default key directory (the user's config directory) is per test too, and outside
    # the data directory, as in production.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ENTRYEXIT_MODEL_DIR", str(installed_model_dir_path()))
    # Manifests are read in the serving process unless a test asks for worker processes: a
    # worker process per test app would spend seconds importing for each of hundreds of
    # tests. The worker path has tests of its own (tests/integration/test_manifest_workers.py,
    # .../api/test_manifest_workers_api.py), which set manifest_workers explicitly.
    monkeypatch.setenv("ENTRYEXIT_MANIFEST_WORKERS", "0")
    return


@pytest.fixture(autouse=True)
def no_logging_left_on_closed_streams() -> Iterator[None]:
    """A test whose code configured logging onto its captured output and left it there fails
    here, by name, instead of a later test printing "--- Logging error ---" for it."""
    yield
    left = handlers_on_closed_streams()
    for handler in left:  # so that the tests after this one are not blamed too
        for name in CONFIGURED_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
    assert not left, f"logging handlers left writing to closed streams: {left}"


def installed_model_dir_path() -> Path:
    return Path(os.environ.get("ENTRYEXIT_TEST_MODEL_DIR", _ORIGINAL_MODEL_DIR))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = installed_model_dir_path()
    states = {m.key: m.status for m in list_models(path)}
    if any(status is not ModelStatus.OK for status in states.values()):
        # Not a skip: the install script always installs them, so their absence is a fault.
        pytest.fail(
            f"face models not installed or altered in {path} ({states}); run ./scripts/install"
        )
    return path


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    if not (LFW_DEV / "images").is_dir():
        pytest.skip(
            f"lfw-dev data set not found at {LFW_DEV} (it lives beside the project in shared/)"
        )
    return LFW_DEV


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> FaceEngine:
    from entryexit.biometrics import EngineSettings, FaceEngine

    return FaceEngine.from_model_dir(model_dir, EngineSettings(workers=2))


def lfw_image(lfw: Path, person: str, number: int) -> Path:
    return lfw / "images" / person / f"{person}_{number:04d}.jpg"
