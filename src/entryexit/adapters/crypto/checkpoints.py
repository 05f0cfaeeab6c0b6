"""Ed25519 signatures for audit checkpoints, and the append-only checkpoint file.

The signing key is a 32-byte Ed25519 seed from the key provider (``audit-checkpoint.key`` in
the key directory); verifying needs only the public key (PEM), so an auditor or a third party
can check checkpoints without any secret. The file holds one JSON object per line; the same
line is written to the service log, and :func:`parse_checkpoints` reads either (a plain or a
JSON-formatted log).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from entryexit.domain.audit_checkpoints import Checkpoint, CheckpointLine
from entryexit.errors import ConfigurationError, InvalidInputError

LOG_MARKER = "audit checkpoint: "


def _verify(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class Ed25519CheckpointSigner:
    """Signs with the checkpoint key, loaded on first use (commands that never sign never
    need it)."""

    def __init__(self, seed: Callable[[], bytes]) -> None:
        self._seed = seed
        self._key: Ed25519PrivateKey | None = None

    def _private(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = Ed25519PrivateKey.from_private_bytes(self._seed())
        return self._key

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private().sign(message)).decode("ascii")

    def verify(self, message: bytes, signature: str) -> bool:
        return _verify(self._private().public_key(), message, signature)

    def public_key_pem(self) -> str:
        return public_key_pem(self._private().public_key())


class Ed25519CheckpointVerifier:
    """Checks signatures with a public key alone."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519CheckpointVerifier:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            raise InvalidInputError("the public key is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInputError("the public key is not an Ed25519 key")
        return cls(key)

    def verify(self, message: bytes, signature: str) -> bool:
        return _verify(self._public, message, signature)

    def public_key_pem(self) -> str:
        return public_key_pem(self._public)


def public_key_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def new_checkpoint_seed() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def format_checkpoint(checkpoint: Checkpoint) -> str:
    return json.dumps(
        {
            "audit_checkpoint": 1,
            "sequence": checkpoint.sequence,
            "event_hash": checkpoint.event_hash,
            "written_at": checkpoint.written_at.isoformat(),
            "restores": list(checkpoint.restores),
            "signature": checkpoint.signature,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _checkpoint_from(fields: dict[str, object]) -> Checkpoint:
    restores = fields.get("restores", [])
    if not isinstance(restores, list):
        raise ValueError("restores is not a list")
    return Checkpoint(
        sequence=int(str(fields["sequence"])),
        event_hash=str(fields["event_hash"]),
        written_at=datetime.fromisoformat(str(fields["written_at"])),
        restores=tuple(int(str(r)) for r in restores),
        signature=str(fields["signature"]),
    )


def _candidate(text: str) -> str | None:
    """The checkpoint JSON in a file line, a plain log line or a JSON log record."""
    stripped = text.strip()
    if not stripped:
        return None
    if LOG_MARKER in stripped and not stripped.startswith("{"):
        return stripped.split(LOG_MARKER, 1)[1]
    if '"audit_checkpoint"' in stripped:
        return stripped
    if stripped.startswith("{") and LOG_MARKER in stripped:
        try:  # a JSON log record whose message carries the checkpoint
            message = json.loads(stripped).get("message", "")
        except (ValueError, AttributeError):
            return stripped
        return str(message).split(LOG_MARKER, 1)[1] if LOG_MARKER in str(message) else None
    return None


def parse_checkpoints(text: str) -> list[CheckpointLine]:
    lines: list[CheckpointLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        candidate = _candidate(raw)
        if candidate is None:
            continue
        try:
            fields = json.loads(candidate)
            if not isinstance(fields, dict) or "audit_checkpoint" not in fields:
                raise ValueError("not a checkpoint")
            lines.append(CheckpointLine(number, _checkpoint_from(fields)))
        except (ValueError, KeyError, TypeError):
            lines.append(CheckpointLine(number, None, "not a readable checkpoint"))
    return lines


class CheckpointFile:
    """Append-only: every checkpoint is one line added with ``O_APPEND`` and synced before
    the service goes on; nothing here rewrites or truncates it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> str:
        line = format_checkpoint(checkpoint)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the audit checkpoint file {self.path}: {exc.strerror}"
            ) from None
        try:
            os.write(descriptor, (line + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return line

    def read(self) -> list[CheckpointLine]:
        return read_checkpoints(self.path)


def read_checkpoints(path: Path) -> list[CheckpointLine]:
    """A file that cannot be read is one unreadable line (verification reports it), not an
    error that hides the rest of the report."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [CheckpointLine(0, None, f"cannot read {path}: {exc.strerror}")]
    return parse_checkpoints(text)
