"""The audit log: a hash chain of events with a signed head, extended inside the use case's
own transaction."""

from __future__ import annotations

import json

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import AuditEventRow, AuditHeadRow
from entryexit.domain.audit import GENESIS_HASH, AuditEntry, AuditEvent, chain, sign_head
from entryexit.errors import TransactionConflictError


class SqlAuditRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def append(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` after the last event and re-sign the head. The head row is locked
        for the rest of the transaction (SQLite: the transaction holds the write lock from
        its start; PostgreSQL: ``FOR UPDATE``), so concurrent writers queue instead of
        forking the chain; the one race left (two first events) reruns the transaction."""
        session = self._session
        head = session.scalar(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update())
        sequence = 1 if head is None else head.sequence + 1
        previous = GENESIS_HASH if head is None else head.hash
        event = chain(entry, sequence, previous)
        signature = sign_head(self._sealer.audit_key(), sequence, event.hash)
        try:
            with session.begin_nested():
                session.add(_audit_row(event))
                if head is None:
                    session.add(
                        AuditHeadRow(id=1, sequence=sequence, hash=event.hash, signature=signature)
                    )
                else:
                    moved = session.execute(
                        update(AuditHeadRow)
                        .where(AuditHeadRow.id == 1, AuditHeadRow.sequence == head.sequence)
                        .values(sequence=sequence, hash=event.hash, signature=signature)
                    )
                    if getattr(moved, "rowcount", 0) != 1:
                        raise TransactionConflictError("the audit log moved on; run again")
        except IntegrityError:
            raise TransactionConflictError("the audit log moved on; run again") from None
        return event

    def events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.sequence > after_sequence)
            .order_by(AuditEventRow.sequence)
            .limit(limit)
        )
        if action is not None:
            query = query.where(AuditEventRow.action == action)
        if actor_key_id is not None:
            query = query.where(AuditEventRow.actor_key_id == actor_key_id)
        return [_audit_event(row) for row in self._session.scalars(query)]

    def head(self) -> tuple[int, str] | None:
        head = self._session.get(AuditHeadRow, 1)
        return None if head is None else (head.sequence, head.signature)


def _audit_row(event: AuditEvent) -> AuditEventRow:
    entry = event.entry
    return AuditEventRow(
        sequence=event.sequence,
        occurred_at=entry.occurred_at,
        action=entry.action,
        outcome=entry.outcome,
        actor_key_id=entry.actor_key_id,
        actor_role=entry.actor_role,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        policy_version=entry.policy_version,
        details=json.dumps(dict(entry.details), sort_keys=True),
        previous_hash=event.previous_hash,
        hash=event.hash,
    )


def _audit_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        sequence=row.sequence,
        entry=AuditEntry(
            occurred_at=row.occurred_at,
            action=row.action,
            outcome=row.outcome,
            actor_key_id=row.actor_key_id,
            actor_role=row.actor_role,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            policy_version=row.policy_version,
            details=json.loads(row.details),
        ),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )
