"""Key providers: where the key-encryption keys (KEKs), the audit MAC key and the audit
checkpoint signing key come from.

* :class:`FileKeyProvider` (default): files in a key directory, readable by the owner only;
  refused if group or others can read them.
* :class:`EnvironmentKeyProvider` (containers): base64 keys in environment variables.
* :class:`EphemeralKeyProvider` (explicit development mode only): random keys that die with
  the process, so nothing encrypted with them survives a restart.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
from pathlib import Path

from entryexit.adapters.crypto.checkpoints import new_checkpoint_seed
from entryexit.errors import ConfigurationError

logger = logging.getLogger(__name__)
KEY_BYTES = 32
CURRENT_POINTER = "current-kek"
AUDIT_KEY_FILE = "audit-hmac.key"
INDEX_KEY_FILE = "index-hmac.key"
# The Ed25519 seed that signs audit checkpoints (not the MAC key: its thief cannot sign them).
CHECKPOINT_KEY_FILE = "audit-checkpoint.key"


def _decode(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{what} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(f"{what} must be {KEY_BYTES} bytes, base64-encoded")
    return key


def _encode(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


class FileKeyProvider:
    """``<dir>/kek-<id>.key`` files, a ``current-kek`` pointer and ``audit-hmac.key``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, bytes] = {}
        # name -> (the file's identity when read, its text). A key file is only ever replaced
        # by a rename (``_write``), which gives it a new inode and mtime: one ``stat`` a call
        # tells whether the text held is still the file's, so a rotation made by another
        # process (``entryexit keys rotate``) is used by this one's next seal.
        self._texts: dict[str, tuple[tuple[int, int, int, int], str]] = {}

    def exists(self) -> bool:
        return (self.directory / CURRENT_POINTER).is_file()

    def _read(self, name: str) -> str:
        path = self.directory / name
        try:
            status = path.stat()
        except FileNotFoundError:
            raise ConfigurationError(
                f"key file {path} is missing; create the keys with `entryexit keys init`"
            ) from None
        mode = status.st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"key file {path} is readable by others; run `chmod 600 {path}`"
            )
        identity = (status.st_ino, status.st_dev, status.st_mtime_ns, status.st_size)
        held = self._texts.get(name)
        if held is not None and held[0] == identity:
            return held[1]
        text = path.read_text(encoding="ascii").strip()
        self._texts[name] = (identity, text)
        return text

    def current_kek(self) -> tuple[str, bytes]:
        kek_id = self._read(CURRENT_POINTER)
        return kek_id, self.kek(kek_id)

    def kek(self, kek_id: str) -> bytes:
        if kek_id not in self._cache:
            self._cache[kek_id] = _decode(self._read(f"kek-{kek_id}.key"), f"KEK {kek_id}")
        return self._cache[kek_id]

    def audit_key(self) -> bytes:
        return _decode(self._read(AUDIT_KEY_FILE), "the audit signing key")

    def index_key(self) -> bytes:
        return _decode(self._read(INDEX_KEY_FILE), "the document index key")

    def checkpoint_key(self) -> bytes:
        """The checkpoint signing key; a key directory made before checkpoints existed gets
        one on first use (like every key file here: 0600, written atomically)."""
        if self.exists() and not (self.directory / CHECKPOINT_KEY_FILE).exists():
            self._write(CHECKPOINT_KEY_FILE, _encode(new_checkpoint_seed()))
            logger.warning(
                "created the audit checkpoint signing key %s", self.directory / CHECKPOINT_KEY_FILE
            )
        return _decode(self._read(CHECKPOINT_KEY_FILE), "the audit checkpoint key")

    def _write(self, name: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory.chmod(0o700)  # an existing directory too: its listing names the keys
        path = self.directory / name
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text + "\n")
        temporary.replace(path)

    def initialise(self) -> str:
        """Create the first KEK and the audit key; refuses to overwrite existing keys."""
        if self.exists() or (self.directory / AUDIT_KEY_FILE).exists():
            raise ConfigurationError(f"keys already exist in {self.directory}")
        kek_id = self.new_kek()
        self._write(AUDIT_KEY_FILE, _encode(secrets.token_bytes(KEY_BYTES)))
        self._write(INDEX_KEY_FILE, _encode(secrets.token_bytes(KEY_BYTES)))
        self._write(CHECKPOINT_KEY_FILE, _encode(new_checkpoint_seed()))
        return kek_id

    def new_kek(self) -> str:
        """Create a KEK and make it current (the old ones stay for unwrapping)."""
        kek_id = secrets.token_hex(4)
        self._write(f"kek-{kek_id}.key", _encode(secrets.token_bytes(KEY_BYTES)))
        self._write(CURRENT_POINTER, kek_id)
        return kek_id

    def retire_kek(self, kek_id: str) -> None:
        current, _ = self.current_kek()
        if kek_id == current:
            raise ConfigurationError("the current KEK cannot be retired")
        (self.directory / f"kek-{kek_id}.key").unlink(missing_ok=True)
        self._cache.pop(kek_id, None)


class EnvironmentKeyProvider:
    """``ENTRYEXIT_KEK`` (``id:base64``; older ones in ``ENTRYEXIT_KEK_PREVIOUS``, comma-
    separated, during a rotation), ``ENTRYEXIT_AUDIT_KEY``, ``ENTRYEXIT_INDEX_KEY`` and
    ``ENTRYEXIT_AUDIT_CHECKPOINT_KEY`` (base64; the last is read when first needed)."""

    def __init__(self, environ: dict[str, str]) -> None:
        self._keks: dict[str, bytes] = {}
        current = environ.get("ENTRYEXIT_KEK", "")
        if ":" not in current:
            raise ConfigurationError("ENTRYEXIT_KEK must be 'id:base64key'")
        self._current_id = self._add(current, "ENTRYEXIT_KEK")
        for item in filter(None, environ.get("ENTRYEXIT_KEK_PREVIOUS", "").split(",")):
            self._add(item, "ENTRYEXIT_KEK_PREVIOUS")
        self._audit = _decode(environ.get("ENTRYEXIT_AUDIT_KEY", ""), "ENTRYEXIT_AUDIT_KEY")
        self._index = _decode(environ.get("ENTRYEXIT_INDEX_KEY", ""), "ENTRYEXIT_INDEX_KEY")
        self._checkpoint = environ.get("ENTRYEXIT_AUDIT_CHECKPOINT_KEY", "")

    def _add(self, item: str, what: str) -> str:
        kek_id, _, encoded = item.partition(":")
        if not kek_id:
            raise ConfigurationError(f"{what} must be 'id:base64key'")
        self._keks[kek_id] = _decode(encoded, what)
        return kek_id

    def current_kek(self) -> tuple[str, bytes]:
        return self._current_id, self._keks[self._current_id]

    def kek(self, kek_id: str) -> bytes:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise ConfigurationError(
                f"KEK {kek_id} is not available; add it to ENTRYEXIT_KEK_PREVIOUS"
            ) from None

    def audit_key(self) -> bytes:
        return self._audit

    def index_key(self) -> bytes:
        return self._index

    def checkpoint_key(self) -> bytes:
        return _decode(self._checkpoint, "ENTRYEXIT_AUDIT_CHECKPOINT_KEY")


class EphemeralKeyProvider:
    def __init__(self) -> None:
        logger.warning(
            "DEVELOPMENT MODE: random keys for this process only; nothing encrypted now can be"
            " read after a restart. Never use this in production."
        )
        self._kek_id = "ephemeral"
        self._kek = secrets.token_bytes(KEY_BYTES)
        self._audit = secrets.token_bytes(KEY_BYTES)
        self._index = secrets.token_bytes(KEY_BYTES)
        self._checkpoint = new_checkpoint_seed()

    def current_kek(self) -> tuple[str, bytes]:
        return self._kek_id, self._kek

    def kek(self, kek_id: str) -> bytes:
        if kek_id != self._kek_id:
            raise ConfigurationError(f"KEK {kek_id} is not available in development mode")
        return self._kek

    def audit_key(self) -> bytes:
        return self._audit

    def index_key(self) -> bytes:
        return self._index

    def checkpoint_key(self) -> bytes:
        return self._checkpoint
