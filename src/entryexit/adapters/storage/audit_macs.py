"""MACs for audit events written before events had their own (migration 0008).

A migration holds no keys, so the first start that does holds the audit key verifies the
existing chain against its signed head and only then MACs its events, in one transaction. A
chain that does not verify is left without MACs: verification reports it, writers refuse to
extend it, and `entryexit audit repair` records what was found.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.audit import audit_event_from_row
from entryexit.adapters.storage.tables import AuditEventRow, AuditHeadRow
from entryexit.domain.audit import event_mac, verify_chain, with_mac

logger = logging.getLogger(__name__)


def mac_legacy_events(session: Session, audit_key: bytes) -> int:
    """MAC the events that have none, if the whole chain verifies; returns how many."""
    if (
        session.scalar(select(AuditEventRow.sequence).where(AuditEventRow.mac.is_(None)).limit(1))
        is None
    ):
        return 0
    rows = session.scalars(select(AuditEventRow).order_by(AuditEventRow.sequence)).all()
    events = [
        with_mac(audit_key, audit_event_from_row(row))
        if row.mac is None
        else audit_event_from_row(row)
        for row in rows
    ]
    head = session.get(AuditHeadRow, 1)
    result = verify_chain(
        events,
        audit_key,
        head.sequence if head else None,
        head.signature if head else None,
    )
    if not result.ok:
        logger.error(
            "audit events written before per-event MACs do not verify (event %s: %s);"
            " they stay without MACs",
            result.first_broken_sequence,
            result.reason,
        )
        return 0
    count = 0
    for row in rows:
        if row.mac is None:
            session.execute(
                update(AuditEventRow)
                .where(AuditEventRow.sequence == row.sequence)
                .values(mac=event_mac(audit_key, row.sequence, row.hash))
            )
            count += 1
    return count
