"""The accessibility scan's axe-core is pinned and cannot silently change or be skipped in CI
(tests/e2e/axe_core.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.axe_core import AXE_VERSION, LOCK_DIR, _sha256, axe_source


def cached(tmp_path: Path, content: bytes) -> Path:
    script = tmp_path / "node_modules" / "axe-core" / "axe.min.js"
    script.parent.mkdir(parents=True)
    script.write_bytes(content)
    return tmp_path


def test_the_lock_file_pins_one_exact_version_by_its_integrity_hash() -> None:
    manifest = json.loads((LOCK_DIR / "package.json").read_text(encoding="utf-8"))
    assert manifest["dependencies"] == {"axe-core": AXE_VERSION}  # no range
    lock = json.loads((LOCK_DIR / "package-lock.json").read_text(encoding="utf-8"))
    entry = lock["packages"]["node_modules/axe-core"]
    assert entry["version"] == AXE_VERSION
    assert entry["resolved"].endswith(f"/axe-core-{AXE_VERSION}.tgz")
    assert entry["integrity"].startswith("sha512-")


def test_a_script_that_is_not_the_pinned_one_fails_the_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    genuine = b"/* axe */ window.axe = {};"
    # The control: the pinned script is used.
    assert axe_source(cached(tmp_path / "a", genuine), None, _sha256(genuine)) == genuine.decode()
    altered = cached(tmp_path / "b", genuine + b" axe.run = () => ({violations: []});")
    with pytest.raises(pytest.fail.Exception, match="not the pinned axe-core"):
        axe_source(altered, None, _sha256(genuine))
    # npm cannot be told to fetch another version either: it checks the lock's hash.
    npm = tmp_path / "npm"
    npm.write_text("#!/bin/sh\necho 'npm error code EINTEGRITY' >&2\nexit 1\n")
    npm.chmod(0o755)
    with pytest.raises(pytest.fail.Exception, match="EINTEGRITY"):
        axe_source(tmp_path / "c", str(npm), _sha256(genuine))


def test_a_missing_axe_core_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm = tmp_path / "npm"
    npm.write_text("#!/bin/sh\necho 'npm error network ENOTFOUND' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="unavailable in CI"):
        axe_source(tmp_path / "empty", str(npm))
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        axe_source(tmp_path / "empty", str(npm))
