"""The file key provider holds what it read, and still follows every change of the files:
another process's rotation, a replaced key, a key file opened to others."""

from __future__ import annotations

from pathlib import Path

import pytest

from entryexit.adapters.crypto.keys import AUDIT_KEY_FILE, FileKeyProvider
from entryexit.errors import ConfigurationError


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    FileKeyProvider(tmp_path / "keys").initialise()
    return tmp_path / "keys"


def test_a_kek_rotated_by_another_process_is_used_by_the_next_seal(directory: Path) -> None:
    serving = FileKeyProvider(directory)
    before_id, before = serving.current_kek()
    assert serving.current_kek() == (before_id, before)  # held, and the same
    rotated_id = FileKeyProvider(directory).new_kek()  # `entryexit keys rotate`, elsewhere
    after_id, after = serving.current_kek()
    assert (after_id, after) != (before_id, before)
    assert after_id == rotated_id
    assert serving.kek(before_id) == before  # the old one still unwraps


def test_a_replaced_audit_key_is_read_again(directory: Path) -> None:
    serving = FileKeyProvider(directory)
    first = serving.audit_key()
    other = FileKeyProvider(directory)
    other._write(AUDIT_KEY_FILE, "A" * 43 + "=")
    assert serving.audit_key() != first
    assert serving.audit_key() == bytes(32)


def test_a_held_key_file_opened_to_others_is_refused(directory: Path) -> None:
    serving = FileKeyProvider(directory)
    serving.audit_key()
    (directory / AUDIT_KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        serving.audit_key()


def test_a_held_key_file_removed_is_missing(directory: Path) -> None:
    serving = FileKeyProvider(directory)
    serving.audit_key()
    (directory / AUDIT_KEY_FILE).unlink()
    with pytest.raises(ConfigurationError, match="missing"):
        serving.audit_key()
