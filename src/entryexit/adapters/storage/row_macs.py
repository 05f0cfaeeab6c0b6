"""MACs for access and policy rows written before rows had them (migrations 0018, 0019).

A migration holds no keys, so the first start that does attests each such row against the
audit log, whose events are MACed and chained with keys kept outside the database: a key or a
console account is MACed only if a verified "api key create" / "console user create" event
names it with the same role (and carrier), a policy version only if a verified "policy load"
event names it with the same effective date, a paired kiosk only if a verified "kiosk pair"
event names it with the same carrier, port and lane (and, if a "kiosk revoke" event names it,
only if it is still revoked). Anything else (a row a database writer added) is left without a
MAC and so stays refused; sessions and kiosks still waiting to be paired without a MAC are
simply ended (people sign in again, the kiosk shows a new code).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.access import api_key_mac, user_mac
from entryexit.adapters.storage.repositories.audit import audit_event_from_row
from entryexit.adapters.storage.repositories.kiosks import kiosk_device_mac
from entryexit.adapters.storage.repositories.policies import policy_mac
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    ApiKeyRow,
    AuditEventRow,
    AuditHeadRow,
    ConsoleSessionRow,
    ConsoleUserRow,
    KioskDeviceRow,
    PolicyRow,
)
from entryexit.domain.audit import AuditEvent, verify_chain

logger = logging.getLogger(__name__)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def mac_legacy_rows(session: Session, sealer: Sealer) -> dict[str, int]:
    """MAC the attested rows that have none; returns counts of what was MACed and refused."""
    counts = {"sessions_ended": 0, "kiosks_unpaired_ended": 0, "attested": 0, "refused": 0}
    # Only reads when there is nothing to do (a start on a store that cannot write must
    # still come up and say so through readiness).
    if session.scalar(
        select(ConsoleSessionRow.token_hash).where(ConsoleSessionRow.mac.is_(None)).limit(1)
    ):
        ended = session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.mac.is_(None)))
        counts["sessions_ended"] = int(getattr(ended, "rowcount", 0) or 0)
    unpaired = KioskDeviceRow.mac.is_(None) & KioskDeviceRow.paired_at.is_(None)
    if session.scalar(select(KioskDeviceRow.id).where(unpaired).limit(1)):
        ended = session.execute(delete(KioskDeviceRow).where(unpaired))
        counts["kiosks_unpaired_ended"] = int(getattr(ended, "rowcount", 0) or 0)
    keys = session.scalars(select(ApiKeyRow).where(ApiKeyRow.mac.is_(None))).all()
    users = session.scalars(select(ConsoleUserRow).where(ConsoleUserRow.mac.is_(None))).all()
    policies = session.scalars(select(PolicyRow).where(PolicyRow.mac.is_(None))).all()
    kiosks = session.scalars(select(KioskDeviceRow).where(KioskDeviceRow.mac.is_(None))).all()
    if not (keys or users or policies or kiosks):
        return counts
    events = _verified_events(session, sealer)
    created = {
        (e.entry.action, e.entry.resource_id): e.entry.details
        for e in events
        if e.entry.outcome == "ok"
    }
    for key in keys:
        details = created.get(("api key create", key.id))
        attested = details is not None and details.get("role") == key.role
        if attested and details is not None and details.get("carrier", key.carrier) == key.carrier:
            key.mac = api_key_mac(sealer, key)
    for user in users:
        details = created.get(("console user create", user.id))
        if details is not None and details.get("role") == user.role:
            user.mac = user_mac(sealer, user)
    for policy in policies:
        details = created.get(("policy load", policy.version))
        effective = None if details is None else details.get("effective_from")
        if isinstance(effective, str) and _utc(datetime.fromisoformat(effective)) == _utc(
            policy.effective_from
        ):
            policy.mac = policy_mac(sealer, policy)
    for kiosk in kiosks:
        details = created.get(("kiosk pair", kiosk.id))
        placed = details is not None and all(
            details.get(field) == getattr(kiosk, field) for field in ("carrier", "port", "lane")
        )
        unrevoked = ("kiosk revoke", kiosk.id) in created and kiosk.revoked_at is None
        if placed and not unrevoked:
            kiosk.mac = kiosk_device_mac(sealer, kiosk)
    rows: list[ApiKeyRow | ConsoleUserRow | PolicyRow | KioskDeviceRow] = [
        *keys,
        *users,
        *policies,
        *kiosks,
    ]
    counts["attested"] = sum(1 for row in rows if row.mac is not None)
    counts["refused"] = len(rows) - counts["attested"]
    if counts["refused"]:
        logger.error(
            "%d key, account, policy or kiosk rows written before row MACs are not attested by the"
            " audit log and stay refused (recreate them)",
            counts["refused"],
        )
    session.flush()
    return counts


def _verified_events(session: Session, sealer: Sealer) -> list[AuditEvent]:
    rows = session.scalars(select(AuditEventRow).order_by(AuditEventRow.sequence)).all()
    events = [audit_event_from_row(row) for row in rows]
    head = session.get(AuditHeadRow, 1)
    result = verify_chain(
        events,
        sealer.audit_key(),
        head.sequence if head else None,
        head.signature if head else None,
    )
    if not result.ok:
        logger.error(
            "the audit log does not verify (event %s): rows written before row MACs cannot be"
            " attested and stay refused",
            result.first_broken_sequence,
        )
        return []
    return events
