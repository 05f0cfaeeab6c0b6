"""The audit log: a hash chain of events with a signed head, extended inside the use case's
own transaction."""

from __future__ import annotations

import json
import logging

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import AuditEventRow, AuditHeadRow
from entryexit.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    chain,
    head_problem,
    sign_head,
    with_mac,
)
from entryexit.errors import AuditLogUntrustedError, TransactionConflictError

logger = logging.getLogger(__name__)


class SqlAuditRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def append(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` after the last event, MAC it and re-sign the head, after checking
        that the stored head is one this service signed and names the last event: otherwise
        the whole transaction is refused (:class:`AuditLogUntrustedError`), never re-signed.
        The head row is locked for the rest of the transaction (SQLite: the transaction holds
        the write lock from its start; PostgreSQL: ``FOR UPDATE``), so concurrent writers
        queue instead of forking the chain; the one race left (two first events) reruns the
        transaction."""
        head = self._locked_head()
        problem = head_problem(self._sealer.audit_key(), _head_tuple(head), self._last_event())
        if problem is not None:
            logger.error("audit log untrusted, audited actions refused: %s", problem)
            raise AuditLogUntrustedError(
                f"the audit log cannot be extended: {problem}; an administrator must run"
                " `entryexit audit verify` and `entryexit audit repair`"
            )
        return self._extend(head, entry)

    def integrity_problem(self) -> str | None:
        """Why the log could not be extended now, or None (readiness reports it)."""
        head = self._session.get(AuditHeadRow, 1)
        return head_problem(self._sealer.audit_key(), _head_tuple(head), self._last_event())

    def repair(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` (which records what was found) after the last stored event and sign
        the head there, whatever the head said. Only the audited repair command calls this:
        it lets the service go on, and hides nothing, since every wrong event still fails
        verification by its own MAC."""
        return self._extend(self._locked_head(), entry, repairing=True)

    def lock(self) -> None:
        self._locked_head()

    def last(self) -> AuditEvent | None:
        return self._last_event()

    def _locked_head(self) -> AuditHeadRow | None:
        return self._session.scalar(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        )

    def _last_event(self) -> AuditEvent | None:
        row = self._session.scalar(
            select(AuditEventRow).order_by(AuditEventRow.sequence.desc()).limit(1)
        )
        return None if row is None else audit_event_from_row(row)

    def _extend(
        self, head: AuditHeadRow | None, entry: AuditEntry, repairing: bool = False
    ) -> AuditEvent:
        session = self._session
        key = self._sealer.audit_key()
        # Normally the (checked) head names the last event; a repair goes by the events.
        last = self._last_event() if repairing else None
        if repairing:
            sequence, previous = (
                (1, GENESIS_HASH) if last is None else (last.sequence + 1, last.hash)
            )
        elif head is not None:
            sequence, previous = head.sequence + 1, head.hash
        else:
            sequence, previous = 1, GENESIS_HASH
        event = with_mac(key, chain(entry, sequence, previous))
        signature = sign_head(key, sequence, event.hash)
        session.flush()  # the use case's own writes fail as themselves, not as a conflict
        try:
            with session.begin_nested():
                session.execute(insert(AuditEventRow).values(_audit_columns(event)))
                if head is None:
                    session.add(
                        AuditHeadRow(id=1, sequence=sequence, hash=event.hash, signature=signature)
                    )
                else:
                    moved = session.execute(
                        update(AuditHeadRow)
                        .where(AuditHeadRow.id == 1, AuditHeadRow.sequence == head.sequence)
                        .values(sequence=sequence, hash=event.hash, signature=signature)
                        .execution_options(synchronize_session=False)
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
        return [audit_event_from_row(row) for row in self._session.scalars(query)]

    def head(self) -> tuple[int, str] | None:
        head = self._session.get(AuditHeadRow, 1)
        return None if head is None else (head.sequence, head.signature)


def _audit_row(event: AuditEvent) -> AuditEventRow:
    return AuditEventRow(**_audit_columns(event))


def _audit_columns(event: AuditEvent) -> dict[str, object]:
    entry = event.entry
    return {
        "sequence": event.sequence,
        "occurred_at": entry.occurred_at,
        "action": entry.action,
        "outcome": entry.outcome,
        "actor_key_id": entry.actor_key_id,
        "actor_role": entry.actor_role,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "policy_version": entry.policy_version,
        "details": json.dumps(dict(entry.details), sort_keys=True),
        "previous_hash": event.previous_hash,
        "hash": event.hash,
        "mac": event.mac,
    }


def _head_tuple(head: AuditHeadRow | None) -> tuple[int, str, str] | None:
    return None if head is None else (head.sequence, head.hash, head.signature)


def audit_event_from_row(row: AuditEventRow) -> AuditEvent:
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
        mac=row.mac,
    )
