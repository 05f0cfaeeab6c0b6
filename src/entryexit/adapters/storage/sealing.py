"""Sealing and unsealing, in one place, for every repository.

Two kinds of protection, both AES-GCM envelopes (``adapters.crypto.envelope``):

- A traveler's personal details, reference templates and reference photos are sealed with the
  traveler's *data key*, stored wrapped by the current key-encryption key (KEK). Deleting that
  one row (crypto-shredding) makes every sealed copy, backups included, unreadable.
- Items of a known traveler kept outside their file (a capture's review image, an admission's
  entry template, an outbox template) are sealed with the traveler's data key too, so that
  destroying that one key erases them wherever a copy survives (a replica, a backup, a
  database's own log); they store no key of their own (``wrapped_key`` and ``kek_id`` NULL).
- Items that belong to no traveler (a capture that matched no one, a watchlist template) get
  a key of their own, wrapped by the KEK under the item's *owner* name and stored beside it:
  deleting the item deletes its key.

Every seal binds a context (what the item is and whose) as associated data, so a sealed value
copied to another row or owner does not open.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from entryexit.adapters.crypto.envelope import (
    new_data_key,
    open_sealed,
    seal,
    unwrap_data_key,
    wrap_data_key,
)
from entryexit.adapters.storage.tables import DataKeyRow, DocumentRow
from entryexit.domain.model import DocumentKey
from entryexit.services.ports import KeyProvider


@dataclass(frozen=True, slots=True)
class SealedItem:
    """A value sealed under a key of its own: the ciphertext, the wrapped key, and the KEK."""

    sealed: bytes
    wrapped_key: bytes
    kek_id: str


@dataclass(frozen=True, slots=True)
class SealedFor:
    """A value sealed for whoever it belongs to: under the traveler's data key (no key of its
    own: ``wrapped_key`` and ``kek_id`` None), or, for no known traveler, a key of its own."""

    sealed: bytes
    wrapped_key: bytes | None
    kek_id: str | None


def template_context(template_id: str, traveler_id: str, model: str) -> bytes:
    return f"template:{template_id}:{traveler_id}:{model}".encode()


def reference_photo_context(template_id: str, traveler_id: str) -> bytes:
    return f"reference-photo:{template_id}:{traveler_id}".encode()


def fingerprint_context(template_id: str, traveler_id: str, engine: str) -> bytes:
    return f"fingerprint:{template_id}:{traveler_id}:{engine}".encode()


def personal_context(traveler_id: str) -> bytes:
    return f"personal:{traveler_id}".encode()


@functools.lru_cache(maxsize=4)
def _row_mac_key(audit_key: bytes) -> bytes:
    """The row-MAC key derived from the audit key (derived once per key, not per request)."""
    return hmac.new(audit_key, b"entryexit row mac v1", hashlib.sha256).digest()


def _canonical(value: object) -> object:
    """One spelling per value whatever the database hands back (time zones, microseconds)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"no canonical form for {type(value).__name__}")


class Sealer:
    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys

    # --- rows that grant access: MACed so a database writer cannot forge them ------------
    def row_mac(self, kind: str, *fields: object) -> str:
        """A MAC over a row's fields that matter (who it is, what it may do, when it ends)
        under a key derived from the audit key, which lives outside the database: a writer
        with database access alone can neither insert a credential or policy row nor change
        one's role, carrier, hash or end."""
        key = _row_mac_key(self._keys.audit_key())
        message = json.dumps([kind, *(_canonical(f) for f in fields)], separators=(",", ":"))
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def mac_matches(stored: str | None, expected: str) -> bool:
        """Whether a row's stored MAC is the one its fields give now (constant time)."""
        return stored is not None and hmac.compare_digest(stored, expected)

    # --- lookup without storing the number ---------------------------------------------
    def digest(self, document: DocumentKey) -> str:
        """The keyed digest by which a document is found without storing its number."""
        message = f"{document.issuing_state}:{document.number}".encode()
        return hmac.new(self._keys.index_key(), message, hashlib.sha256).hexdigest()

    # --- a traveler's data key -----------------------------------------------------------
    def data_key(self, session: Session, traveler_id: str, now: datetime) -> bytes:
        """The traveler's data key, created (and wrapped by the current KEK) on first use."""
        stored = session.get(DataKeyRow, traveler_id)
        if stored is not None:
            return self.unwrap(stored)
        kek_id, kek = self._keys.current_kek()
        data_key = new_data_key()
        session.add(
            DataKeyRow(
                traveler_id=traveler_id,
                kek_id=kek_id,
                wrapped_key=wrap_data_key(kek, data_key, traveler_id),
                created_at=now,
            )
        )
        session.flush()
        return data_key

    def new_data_key_values(self, traveler_id: str, now: datetime) -> tuple[dict[str, Any], bytes]:
        """A new traveler's data key (wrapped by the current KEK) as the columns of its row,
        and its plain value, for a caller that inserts many at once (``data_key`` flushes
        each)."""
        kek_id, kek = self._keys.current_kek()
        data_key = new_data_key()
        values = {
            "traveler_id": traveler_id,
            "kek_id": kek_id,
            "wrapped_key": wrap_data_key(kek, data_key, traveler_id),
            "created_at": now,
        }
        return values, data_key

    def unwrap(self, row: DataKeyRow) -> bytes:
        return unwrap_data_key(self._keys.kek(row.kek_id), row.wrapped_key, row.traveler_id)

    def seal_with(self, data_key: bytes, value: bytes, context: bytes) -> bytes:
        return seal(data_key, value, context)

    def open_with(self, data_key: bytes, sealed: bytes, context: bytes) -> bytes:
        return open_sealed(data_key, sealed, context)

    # --- personal details ------------------------------------------------------------------
    def seal_personal(self, data_key: bytes, traveler_id: str, details: dict[str, str]) -> bytes:
        return seal(data_key, json.dumps(details).encode(), personal_context(traveler_id))

    def open_personal(
        self,
        doc: DocumentRow,
        data_key: DataKeyRow | None,
        unwrapped: dict[str, bytes] | None = None,
    ) -> dict[str, str]:
        """A document's sealed details; empty once the traveler's key is shredded.
        ``unwrapped`` caches data keys across the documents of one traveler."""
        if data_key is None or doc.personal is None:
            return {}
        key = unwrapped.get(doc.traveler_id) if unwrapped is not None else None
        if key is None:
            key = self.unwrap(data_key)
            if unwrapped is not None:
                unwrapped[doc.traveler_id] = key
        details: dict[str, str] = json.loads(
            open_sealed(key, doc.personal, personal_context(doc.traveler_id))
        )
        return details

    # --- items with a key of their own ----------------------------------------------------
    def seal_item(self, owner: str, value: bytes, context: bytes) -> SealedItem:
        kek_id, kek = self._keys.current_kek()
        key = new_data_key()
        return SealedItem(seal(key, value, context), wrap_data_key(kek, key, owner), kek_id)

    def open_item(
        self, owner: str, sealed: bytes, wrapped_key: bytes, kek_id: str, context: bytes
    ) -> bytes:
        key = unwrap_data_key(self._keys.kek(kek_id), wrapped_key, owner)
        return open_sealed(key, sealed, context)

    def seal_for(
        self, session: Session, traveler_id: str | None, owner: str, value: bytes, context: bytes
    ) -> SealedFor:
        """``value`` sealed under the traveler's data key when it is a known traveler's (their
        key exists), else under a key of its own."""
        stored = None if traveler_id is None else session.get(DataKeyRow, traveler_id)
        if stored is None:
            item = self.seal_item(owner, value, context)
            return SealedFor(item.sealed, item.wrapped_key, item.kek_id)
        return SealedFor(seal(self.unwrap(stored), value, context), None, None)

    def open_for(
        self,
        session: Session,
        traveler_id: str | None,
        owner: str,
        sealed: bytes,
        wrapped_key: bytes | None,
        kek_id: str | None,
        context: bytes,
    ) -> bytes | None:
        """What :meth:`seal_for` sealed; None once the traveler's data key is shredded."""
        if wrapped_key is not None and kek_id:
            return self.open_item(owner, sealed, wrapped_key, kek_id, context)
        stored = None if traveler_id is None else session.get(DataKeyRow, traveler_id)
        if stored is None:
            return None
        return open_sealed(self.unwrap(stored), sealed, context)

    def rewrap_item(self, owner: str, wrapped_key: bytes, kek_id: str) -> tuple[bytes, str] | None:
        """The item's key wrapped under the current KEK, or None if it already is."""
        current_id, current = self._keys.current_kek()
        if kek_id == current_id:
            return None
        key = unwrap_data_key(self._keys.kek(kek_id), wrapped_key, owner)
        return wrap_data_key(current, key, owner), current_id

    def current_kek_id(self) -> str:
        return self._keys.current_kek()[0]

    def audit_key(self) -> bytes:
        return self._keys.audit_key()
