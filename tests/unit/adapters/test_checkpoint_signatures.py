"""Ed25519 checkpoint signatures, the append-only checkpoint file, and the key file."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from entryexit.adapters.crypto.checkpoints import (
    LOG_MARKER,
    CheckpointFile,
    Ed25519CheckpointSigner,
    Ed25519CheckpointVerifier,
    format_checkpoint,
    new_checkpoint_seed,
    parse_checkpoints,
)
from entryexit.adapters.crypto.keys import CHECKPOINT_KEY_FILE, FileKeyProvider
from entryexit.domain.audit_checkpoints import Checkpoint
from entryexit.errors import InvalidInputError
from entryexit.services.audit import CHECKPOINT_LOG_MARKER

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def signed(signer: Ed25519CheckpointSigner, sequence: int = 7) -> Checkpoint:
    unsigned = Checkpoint(sequence, "ab" * 32, AT, (3,))
    return replace(unsigned, signature=signer.sign(unsigned.message()))


def test_the_public_key_alone_verifies_and_nothing_else_signs() -> None:
    signer = Ed25519CheckpointSigner(new_checkpoint_seed)
    checkpoint = signed(signer)
    verifier = Ed25519CheckpointVerifier.from_pem(signer.public_key_pem().encode())
    assert verifier.verify(checkpoint.message(), checkpoint.signature)
    # Another key (an attacker's), an altered checkpoint, junk: all refused.
    other = signed(Ed25519CheckpointSigner(new_checkpoint_seed))
    assert not verifier.verify(other.message(), other.signature)
    altered = replace(checkpoint, sequence=8)
    assert not verifier.verify(altered.message(), altered.signature)
    assert not verifier.verify(checkpoint.message(), "not base64!")
    assert not verifier.verify(checkpoint.message(), "")


def test_a_public_key_that_is_not_ed25519_pem_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="not a PEM public key"):
        Ed25519CheckpointVerifier.from_pem(b"hello")


def test_the_file_is_appended_to_and_read_back(tmp_path: Path) -> None:
    signer = Ed25519CheckpointSigner(new_checkpoint_seed)
    store = CheckpointFile(tmp_path / "out" / "checkpoints.jsonl")
    first, second = signed(signer, 1), signed(signer, 2)
    store.append(first)
    store.append(second)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [line.checkpoint for line in store.read()] == [first, second]
    assert CheckpointFile(tmp_path / "missing.jsonl").read() == []


def test_checkpoints_are_read_from_plain_and_json_service_logs() -> None:
    signer = Ed25519CheckpointSigner(new_checkpoint_seed)
    checkpoint = signed(signer)
    line = format_checkpoint(checkpoint)
    assert LOG_MARKER == CHECKPOINT_LOG_MARKER  # what the service writes is what is read
    text = "\n".join(
        [
            "INFO uvicorn: started",
            f"INFO entryexit.audit.checkpoints: {LOG_MARKER}{line}",
            json.dumps({"level": "INFO", "message": f"{LOG_MARKER}{line}"}),
            line,
            '{"audit_checkpoint": 1, "sequence": "x"}',
        ]
    )
    read = parse_checkpoints(text)
    assert [r.checkpoint for r in read[:3]] == [checkpoint] * 3
    assert (read[3].line, read[3].checkpoint, read[3].problem) == (
        5,
        None,
        "not a readable checkpoint",
    )


def test_the_checkpoint_key_file_is_created_with_the_keys_and_for_older_key_dirs(
    tmp_path: Path,
) -> None:
    provider = FileKeyProvider(tmp_path / "keys")
    provider.initialise()
    path = provider.directory / CHECKPOINT_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    seed = provider.checkpoint_key()
    assert len(seed) == 32
    path.unlink()  # a key directory from before checkpoints
    created = FileKeyProvider(provider.directory).checkpoint_key()
    assert created != seed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
