"""Retention (the purge) and key-encryption-key rotation: housekeeping over every aggregate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.captures import capture_owner
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    CaptureRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ReferenceTemplateRow,
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


class SqlDataKeyRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def rotate_batch(self, batch_size: int) -> int:
        current_id = self._sealer.current_kek_id()
        rows = self._session.scalars(
            select(DataKeyRow).where(DataKeyRow.kek_id != current_id).limit(batch_size)
        ).all()
        rewrapped = sum(1 for row in rows if self._sealer.rewrap(row))
        captures = self._session.scalars(
            select(CaptureRow)
            .where(CaptureRow.kek_id.is_not(None), CaptureRow.kek_id != current_id)
            .limit(batch_size)
        ).all()
        for capture in captures:
            if capture.kek_id is None or capture.wrapped_key is None:
                continue
            moved = self._sealer.rewrap_item(
                capture_owner(capture.id), capture.wrapped_key, capture.kek_id
            )
            if moved is not None:
                capture.wrapped_key, capture.kek_id = moved
                rewrapped += 1
        return rewrapped

    def counts_by_kek(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for query in (
            select(DataKeyRow.kek_id, func.count()).group_by(DataKeyRow.kek_id),
            select(CaptureRow.kek_id, func.count())
            .where(CaptureRow.kek_id.is_not(None))
            .group_by(CaptureRow.kek_id),
        ):
            for kek_id, count in self._session.execute(query).all():
                counts[str(kek_id)] = counts.get(str(kek_id), 0) + int(count)
        return counts
