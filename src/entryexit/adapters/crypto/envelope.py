"""Envelope encryption: AES-256-GCM data keys (one per traveler) wrapped by a KEK.

Sealed values are ``nonce (12 bytes) || ciphertext || tag``, bound by associated data to
what they belong to (a template cannot be moved to another row or traveler and still open).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from entryexit.errors import EntryExitError

NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class DecryptionError(EntryExitError):
    """Sealed data could not be opened: wrong key, altered bytes, or wrong context."""

    code = "decryption-failed"


def new_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_BYTES)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + 16:
        raise DecryptionError("sealed data is too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise DecryptionError("sealed data failed authentication") from None


def wrap_data_key(kek: bytes, data_key: bytes, owner: str) -> bytes:
    return seal(kek, data_key, b"data-key:" + owner.encode())


def unwrap_data_key(kek: bytes, wrapped: bytes, owner: str) -> bytes:
    return open_sealed(kek, wrapped, b"data-key:" + owner.encode())
