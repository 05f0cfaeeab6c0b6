"""The audit log: a hash chain of events with a signed head, extended inside the use case's
own transaction."""

from __future__ import annotations

import json
import logging
from typing import cast

from sqlalchemy import Table, bindparam, insert, literal, select, true, update
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
    tip_problem,
    with_mac,
)
from entryexit.errors import AuditLogUntrustedError, TransactionConflictError

logger = logging.getLogger(__name__)


_EVENTS = cast(Table, AuditEventRow.__table__)
_HEAD = cast(Table, AuditHeadRow.__table__)
# What a writer checks of the log before extending it: the stored head (locked) and the
# last event's sequence, hash and MAC (no other column, no JSON decode).
_HEAD_COLUMNS = (_HEAD.c.sequence, _HEAD.c.hash, _HEAD.c.signature)
_TIP = (
    select(_EVENTS.c.sequence, _EVENTS.c.hash, _EVENTS.c.mac)
    .order_by(_EVENTS.c.sequence.desc())
    .limit(1)
)
_LOCKED_HEAD = select(*_HEAD_COLUMNS).where(_HEAD.c.id == 1).with_for_update()
_tip = _TIP.subquery()
_one = select(literal(1).label("one")).subquery()
# SQLite: a writing unit of work holds the database's write lock from ``BEGIN IMMEDIATE``
# and reads one snapshot, so the head and the last event are read in one statement, exactly
# what two statements would read. Not on PostgreSQL: a statement that waited for the head's
# row lock sees the new head but the last event of its own (older) snapshot, so there the
# head is locked first and the last event read after, by a statement with a fresh snapshot.
_HEAD_AND_TIP = select(
    *_HEAD_COLUMNS,
    _tip.c.sequence.label("tip_sequence"),
    _tip.c.hash.label("tip_hash"),
    _tip.c.mac.label("tip_mac"),
).select_from(_one.outerjoin(_HEAD, _HEAD.c.id == 1).outerjoin(_tip, true()))
_INSERT_EVENT = insert(_EVENTS)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1, _HEAD.c.sequence == bindparam("was"))
    .values(
        sequence=bindparam("new_sequence"),
        hash=bindparam("new_hash"),
        signature=bindparam("new_signature"),
    )
)
_FIRST_HEAD = insert(_HEAD)

Head = tuple[int, str, str]
Tip = tuple[int, str, str | None]


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
        key = self._sealer.audit_key()
        head, tip = self._head_and_tip()
        problem = tip_problem(key, head, tip)
        if problem is not None:
            logger.error("audit log untrusted, audited actions refused: %s", problem)
            raise AuditLogUntrustedError(
                f"the audit log cannot be extended: {problem}; an administrator must run"
                " `entryexit audit verify` and `entryexit audit repair`"
            )
        return self._extend(key, head, None if head is None else (head[0], head[1]), entry)

    def integrity_problem(self) -> str | None:
        """Why the log could not be extended now, or None (readiness reports it)."""
        head = self._session.get(AuditHeadRow, 1)
        return head_problem(self._sealer.audit_key(), _head_tuple(head), self._last_event())

    def repair(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` (which records what was found) after the last stored event and sign
        the head there, whatever the head said. Only the audited repair command calls this:
        it lets the service go on, and hides nothing, since every wrong event still fails
        verification by its own MAC."""
        head, tip = self._head_and_tip()
        after = None if tip is None else (tip[0], tip[1])
        return self._extend(self._sealer.audit_key(), head, after, entry)

    def lock(self) -> None:
        self._session.execute(_LOCKED_HEAD)

    def last(self) -> AuditEvent | None:
        return self._last_event()

    def _head_and_tip(self) -> tuple[Head | None, Tip | None]:
        """The locked head and the last event's (sequence, hash, mac)."""
        session = self._session
        if session.get_bind().dialect.name == "sqlite":
            row = session.execute(_HEAD_AND_TIP).one()
            head = None if row[0] is None else (row[0], row[1], row[2])
            tip = None if row[3] is None else (row[3], row[4], row[5])
            return head, tip
        locked = session.execute(_LOCKED_HEAD).first()
        last = session.execute(_TIP).first()
        return (
            None if locked is None else (locked[0], locked[1], locked[2]),
            None if last is None else (last[0], last[1], last[2]),
        )

    def _last_event(self) -> AuditEvent | None:
        row = self._session.scalar(
            select(AuditEventRow).order_by(AuditEventRow.sequence.desc()).limit(1)
        )
        return None if row is None else audit_event_from_row(row)

    def _extend(
        self, key: bytes, head: Head | None, after: tuple[int, str] | None, entry: AuditEntry
    ) -> AuditEvent:
        """Chain ``entry`` after ``after`` (the checked head, or for a repair the last stored
        event) and move the stored ``head`` there. Three statements at most while the head is
        locked: the event's insert and the head's update (no savepoint: a conflict reruns
        the whole transaction, which is rolled back anyway), or for the first event both
        inserts in a savepoint (two writers may race to create the head)."""
        session = self._session
        sequence, previous = (1, GENESIS_HASH) if after is None else (after[0] + 1, after[1])
        event = with_mac(key, chain(entry, sequence, previous))
        signature = sign_head(key, sequence, event.hash)
        session.flush()  # the use case's own writes fail as themselves, not as a conflict
        try:
            if head is None:
                with session.begin_nested():
                    session.execute(_INSERT_EVENT, _audit_columns(event))
                    session.execute(
                        _FIRST_HEAD,
                        {"id": 1, "sequence": sequence, "hash": event.hash, "signature": signature},
                    )
                return event
            session.execute(_INSERT_EVENT, _audit_columns(event))
            moved = session.execute(
                _MOVE_HEAD,
                {
                    "was": head[0],
                    "new_sequence": sequence,
                    "new_hash": event.hash,
                    "new_signature": signature,
                },
                execution_options={"synchronize_session": False},
            )
        except IntegrityError:
            raise TransactionConflictError("the audit log moved on; run again") from None
        if getattr(moved, "rowcount", 0) != 1:
            raise TransactionConflictError("the audit log moved on; run again")
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
