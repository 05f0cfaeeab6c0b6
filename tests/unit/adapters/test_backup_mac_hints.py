"""A backup's .mac file carries hints (who signed, which key-encryption keys) that are not
authenticated: whoever changed the backup may have written them (review L3). They word a
refusal only when well formed, never reach the terminal as raw control bytes, never name a
key file to open that is not a key id, and the words leave tampering open."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from entryexit.adapters.storage import backups
from entryexit.errors import ConfigurationError, InvalidInputError

KEY = b"k" * 32
WRONG_MAC = "entryexit-backup-mac-v1 " + "0" * 64


def _staged(tmp_path: Path) -> tuple[Path, backups.StagedRestore]:
    backup = tmp_path / "nightly.db"
    backup.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    return backup, backups.StagedRestore(backup, hashlib.sha256(backup.read_bytes()).digest())


def _refusal(tmp_path: Path, hints: str, looked_up: list[str]) -> Exception:
    backup, staged = _staged(tmp_path)
    backups.mac_file(backup).write_text(f"{WRONG_MAC}\n{hints}")

    def holds(kek: str) -> bool:
        looked_up.append(kek)
        return False

    with pytest.raises((ConfigurationError, InvalidInputError)) as refused:
        backups.check_backup_mac(backup, staged, KEY, False, holds)
    return refused.value


@pytest.mark.parametrize(
    "hints",
    [
        "signer 00\nkeks \x1b]0;pwned\x07,\x1b[2J\n",
        "signer deadbeefdeadbeef\nkeks \x1b[2J\n",
        f"signer deadbeefdeadbeef\nkeks {'a' * 300},x/../../etc/passwd\n",
    ],
)
def test_malformed_hints_are_ignored_and_never_looked_up(tmp_path: Path, hints: str) -> None:
    looked_up: list[str] = []
    refusal = _refusal(tmp_path, hints, looked_up)
    assert looked_up == []
    assert "\x1b" not in str(refusal)
    assert "\x07" not in str(refusal)
    assert "passwd" not in str(refusal)


def test_a_claimed_signer_is_reported_as_a_claim_that_tampering_may_have_written(
    tmp_path: Path,
) -> None:
    looked_up: list[str] = []
    refusal = _refusal(tmp_path, "signer deadbeefdeadbeef\nkeks 0a1b2c3d\n", looked_up)
    assert looked_up == ["0a1b2c3d"]
    assert "fails its MAC check" in str(refusal)
    assert "claims another key directory signed it" in str(refusal)
    assert "changed after `backup create` wrote it" in str(refusal)
