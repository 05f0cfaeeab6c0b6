"""The outbox: work written in a use case's transaction, done later by a worker."""

from __future__ import annotations

import json
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from entryexit.adapters.storage.database import READ_ONLY_TRANSACTION
from entryexit.adapters.storage.repositories import core
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import OutboxRow
from entryexit.services.unit_of_work import OutboxMessage, ParkedWork

# Written by every first match of a traveler on a flight (the admission's work).
_INSERT = insert(cast(Table, OutboxRow.__table__))


def _owner(message_id: str) -> str:
    return f"outbox:{message_id}"


def _context(message_id: str) -> bytes:
    return f"outbox-template:{message_id}".encode()


class SqlOutboxRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add(self, message: OutboxMessage) -> None:
        sealed = (
            None
            if message.template is None
            else self._sealer.seal_for(
                self._session,
                message.payload.get("traveler_id"),
                _owner(message.id),
                message.template,
                _context(message.id),
            )
        )
        core.run(
            self._session,
            _INSERT,
            {
                "id": message.id,
                "kind": message.kind,
                "payload": json.dumps(message.payload, sort_keys=True),
                "created_at": message.created_at,
                "template": sealed.sealed if sealed else None,
                "wrapped_key": sealed.wrapped_key if sealed else None,
                "kek_id": sealed.kek_id if sealed else None,
                "attempts": 0,
            },
        )

    def pending(self, kind: str, limit: int) -> list[OutboxMessage]:
        query = (
            select(OutboxRow)
            .where(OutboxRow.kind == kind, OutboxRow.parked_at.is_(None))
            .order_by(OutboxRow.created_at, OutboxRow.id)
            .limit(limit)
        )
        # A read-only unit of work only looks (PostgreSQL refuses row locks in a read-only
        # transaction); the writer that takes the message locks it.
        options = self._session.connection().get_execution_options()
        if not options.get(READ_ONLY_TRANSACTION, False):
            query = query.with_for_update(skip_locked=True)
        rows = self._session.scalars(query).all()
        messages = []
        for row in rows:
            template = None
            payload = json.loads(row.payload)
            if row.template is not None:
                template = self._sealer.open_for(
                    self._session,
                    payload.get("traveler_id"),
                    _owner(row.id),
                    row.template,
                    row.wrapped_key,
                    row.kek_id,
                    _context(row.id),
                )
            messages.append(OutboxMessage(row.id, row.kind, payload, row.created_at, template))
        return messages

    def pending_ids(self, kind: str, limit: int) -> list[str]:
        return list(
            self._session.scalars(
                select(OutboxRow.id)
                .where(OutboxRow.kind == kind, OutboxRow.parked_at.is_(None))
                .order_by(OutboxRow.created_at, OutboxRow.id)
                .limit(limit)
            )
        )

    def complete(self, message_id: str, now: datetime) -> None:
        self._session.execute(delete(OutboxRow).where(OutboxRow.id == message_id))

    def count_pending(self) -> int:
        return int(
            self._session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.parked_at.is_(None))
            )
            or 0
        )

    def record_failure(self, message_id: str, park_after: int, now: datetime) -> bool:
        row = self._session.get(OutboxRow, message_id)
        if row is None:
            return False
        row.attempts = (row.attempts or 0) + 1
        if row.attempts >= park_after:
            row.parked_at = now
        return row.parked_at is not None

    def count_parked(self) -> int:
        return int(
            self._session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.parked_at.is_not(None))
            )
            or 0
        )

    def parked(self, kind: str, limit: int) -> list[ParkedWork]:
        rows = self._session.scalars(
            select(OutboxRow)
            .where(OutboxRow.kind == kind, OutboxRow.parked_at.is_not(None))
            .order_by(OutboxRow.parked_at.desc(), OutboxRow.id)
            .limit(limit)
        )
        return [
            ParkedWork(
                row.id,
                row.kind,
                json.loads(row.payload),
                row.created_at,
                row.attempts or 0,
                row.parked_at,
            )
            for row in rows
            if row.parked_at is not None
        ]

    def retry(self, message_id: str) -> bool:
        row = self._session.get(OutboxRow, message_id)
        if row is None or row.parked_at is None:
            return False
        row.parked_at = None
        row.attempts = 0
        return True
