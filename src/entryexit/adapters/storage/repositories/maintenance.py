"""Retention (the purge) and key-encryption-key rotation: housekeeping over every aggregate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.captures import capture_owner
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    AdmissionRow,
    Base,
    CaptureIdempotencyRow,
    CaptureRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    OutboxRow,
    ReferenceTemplateRow,
    WatchlistEntryRow,
)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class SqlRetentionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def purge_expired(self, now: datetime) -> dict[str, int]:
        """Delete everything whose time is up (running it again deletes nothing more)."""
        session = self._session
        counts = {
            "capture_images": _rowcount(
                session.execute(
                    update(CaptureRow)
                    .where(CaptureRow.image.is_not(None), CaptureRow.image_expires_at <= now)
                    .values(image=None, wrapped_key=None, kek_id=None, image_expires_at=None)
                )
            )
        }
        for kind, table in (
            ("idempotency_keys", CaptureIdempotencyRow),
            ("capture_records", CaptureRow),
            ("reference_templates", ReferenceTemplateRow),
            ("encounter_records", EncounterRow),
        ):
            counts[kind] = _rowcount(session.execute(delete(table).where(table.expires_at <= now)))
        # A data key that seals neither a template nor a document protects nothing.
        counts["data_keys"] = _rowcount(
            session.execute(
                delete(DataKeyRow).where(
                    ~select(ReferenceTemplateRow.id)
                    .where(ReferenceTemplateRow.traveler_id == DataKeyRow.traveler_id)
                    .exists(),
                    ~select(DocumentRow.id)
                    .where(DocumentRow.traveler_id == DataKeyRow.traveler_id)
                    .exists(),
                )
            )
        )
        counts["staged_galleries"] = _rowcount(
            session.execute(
                update(FlightRow)
                .where(FlightRow.gallery_version > 0, FlightRow.gallery_expires_at <= now)
                .values(gallery_version=0, gallery_expires_at=None)
            )
        )
        return counts


# Every table that keeps a key wrapped by a key-encryption key, and the owner name it was
# wrapped under. A test derives the list of such tables from the schema (a ``kek_id``
# column), so a new sealed column cannot be left out of rotation.
SEALED_ITEMS: dict[type[Base], Callable[[Any], str]] = {
    DataKeyRow: lambda row: str(row.traveler_id),
    CaptureRow: lambda row: capture_owner(row.id),
    AdmissionRow: lambda row: f"admission:{row.id}",
    WatchlistEntryRow: lambda row: f"watchlist:{row.id}",
    OutboxRow: lambda row: f"outbox:{row.id}",
}


class SqlDataKeyRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def rotate_batch(self, batch_size: int) -> int:
        """Re-wrap up to ``batch_size`` keys of each sealed table that are not under the
        current KEK."""
        current_id = self._sealer.current_kek_id()
        rewrapped = 0
        for table, owner in SEALED_ITEMS.items():
            kek_column = table.kek_id  # type: ignore[attr-defined]
            rows: Sequence[Any] = self._session.scalars(
                select(table)
                .where(kek_column.is_not(None), kek_column != current_id)
                .limit(batch_size)
            ).all()
            for row in rows:
                if not row.wrapped_key:
                    # Erased (a removed watchlist entry): no key left to re-wrap.
                    row.kek_id = current_id
                    rewrapped += 1
                    continue
                moved = self._sealer.rewrap_item(owner(row), row.wrapped_key, row.kek_id)
                if moved is not None:
                    row.wrapped_key, row.kek_id = moved
                    rewrapped += 1
        return rewrapped

    def counts_by_kek(self) -> dict[str, int]:
        """How many wrapped keys each KEK holds, over every sealed table (a KEK may be
        retired only when it holds none)."""
        counts: dict[str, int] = {}
        for table in SEALED_ITEMS:
            kek_column = table.kek_id  # type: ignore[attr-defined]
            query = (
                select(kek_column, func.count()).where(kek_column.is_not(None)).group_by(kek_column)
            )
            for kek_id, count in self._session.execute(query).all():
                counts[str(kek_id)] = counts.get(str(kek_id), 0) + int(count)
        return counts
