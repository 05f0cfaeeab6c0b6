"""Policy versions: stored once, never changed (history is kept, not rewritten).

Each row carries a MAC over its version, content hash and effective date (keyed outside the
database, see ``Sealer.row_mac``), and its content must match its hash: a database writer
without the keys cannot loosen a policy in force (a higher FPIR target, a longer retention) or
slip in a new version. A row that fails either check stops every policy read with
:class:`StoredDataUntrustedError` (fail closed: travelers go to an officer) until an
administrator loads the policy file again.

Deleting a row (to roll back to an older policy) leaves no row to check, so the audit log,
MACed with a key outside the database, vouches for what must be there: the newest "policy
load" event and the newest event of all (which names the policy in force when it was written)
must each verify and name a stored version. Hiding the deletion would take deleting that load
event and every event since, which the signed head and `entryexit audit verify` report.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.audit import audit_event_from_row
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import AuditEventRow, PolicyRow
from entryexit.domain.audit import AuditEvent, chain, event_mac
from entryexit.errors import ConflictError, StoredDataUntrustedError
from entryexit.services.ports import StoredPolicy

logger = logging.getLogger(__name__)


def policy_mac(sealer: Sealer, row: PolicyRow) -> str:
    return sealer.row_mac("policies", row.version, row.sha256, row.effective_from)


class SqlPolicyRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool:
        """Store a policy version; ``False`` if this exact file was loaded before."""
        existing = self._session.get(PolicyRow, policy.version)
        if existing is not None and not self._trusted(existing):
            # Loading the file again is how an administrator mends a row written without
            # the keys: the file's content replaces it (the service audits the load).
            existing.effective_from = effective_from
            existing.source = policy.source
            existing.sha256 = policy.sha256
            existing.loaded_at = now
            existing.mac = policy_mac(self._sealer, existing)
            self._session.flush()
            return True
        if existing is not None:
            if existing.sha256 != policy.sha256:
                raise ConflictError(
                    f"policy version {policy.version} is already loaded with different"
                    " content; give the new policy a new version"
                )
            return False
        row = PolicyRow(
            version=policy.version,
            effective_from=effective_from,
            source=policy.source,
            sha256=policy.sha256,
            loaded_at=now,
        )
        row.mac = policy_mac(self._sealer, row)
        self._session.add(row)
        return True

    def all(self) -> list[StoredPolicy]:
        rows = self._session.scalars(select(PolicyRow).order_by(PolicyRow.effective_from)).all()
        for row in rows:
            if not self._trusted(row):
                logger.error("policy version %s fails its integrity check", row.version)
                raise StoredDataUntrustedError(
                    f"policy version {row.version} fails its integrity check (written without"
                    " the keys); no decision is made on it: load the genuine file again with"
                    " `entryexit policy load`"
                )
        self._check_none_deleted({row.version for row in rows})
        return [StoredPolicy(r.version, r.source, r.sha256) for r in rows]

    def _check_none_deleted(self, stored: set[str]) -> None:
        newest_load = self._session.scalar(
            select(AuditEventRow)
            .where(AuditEventRow.action == "policy load", AuditEventRow.outcome == "ok")
            .order_by(AuditEventRow.sequence.desc())
            .limit(1)
        )
        if newest_load is not None:
            event = audit_event_from_row(newest_load)
            if not self._genuine(event):
                # Fail closed: a load event the attacker spoiled must not hide which version
                # was loaded last.
                self._untrusted(
                    f"the audit event of the newest policy load ({event.sequence}) fails its"
                    " MAC; run `entryexit audit verify`, then load a policy file whose version"
                    " is not stored yet with `entryexit policy load` (its load is audited anew)"
                )
            if event.entry.resource_id not in stored:
                self._untrusted(
                    f"policy version {event.entry.resource_id} was loaded (audit event"
                    f" {event.sequence}) but is no longer stored; load it again with"
                    " `entryexit policy load`"
                )
        newest = self._session.scalar(
            select(AuditEventRow).order_by(AuditEventRow.sequence.desc()).limit(1)
        )
        if newest is None:
            return
        last = audit_event_from_row(newest)
        in_force = last.entry.policy_version
        # A last event that fails its MAC is the audit log's problem, reported (and refused)
        # by the audit trail itself.
        if in_force is not None and in_force not in stored and self._genuine(last):
            self._untrusted(
                f"policy version {in_force} was in force at audit event {last.sequence} but is"
                " no longer stored; load it again with `entryexit policy load`"
            )

    def _genuine(self, event: AuditEvent) -> bool:
        rehashed = chain(event.entry, event.sequence, event.previous_hash).hash
        expected = event_mac(self._sealer.audit_key(), event.sequence, event.hash)
        return rehashed == event.hash and self._sealer.mac_matches(event.mac, expected)

    @staticmethod
    def _untrusted(reason: str) -> NoReturn:
        logger.error("stored policies fail their integrity check: %s", reason)
        raise StoredDataUntrustedError(f"{reason}; no decision is made until then")

    def _trusted(self, row: PolicyRow) -> bool:
        content_hash = hashlib.sha256(row.source.encode()).hexdigest()
        return content_hash == row.sha256 and self._sealer.mac_matches(
            row.mac, policy_mac(self._sealer, row)
        )
