"""The audit trail: record what was done, by whom, to which resource, with what outcome."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from entryexit.domain.access import Principal
from entryexit.domain.audit import AuditEntry, AuditEvent, ChainVerification, verify_chain
from entryexit.services.ports import Clock, KeyProvider, Store

PAGE = 1000


class AuditTrail:
    def __init__(self, store: Store, clock: Clock, keys: KeyProvider) -> None:
        self._store = store
        self._clock = clock
        self._keys = keys

    def record(
        self,
        action: str,
        outcome: str,
        actor: Principal | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        details: Mapping[str, int | str] | None = None,
        policy_version: str | None = None,
    ) -> AuditEvent:
        return self._store.append_audit(
            AuditEntry(
                occurred_at=self._clock(),
                action=action,
                outcome=outcome,
                actor_key_id=actor.key_id if actor else None,
                actor_role=actor.role.value if actor else None,
                resource_type=resource_type,
                resource_id=resource_id,
                policy_version=policy_version,
                details=dict(details or {}),
            )
        )

    def events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        return self._store.audit_events(
            after_sequence, min(max(limit, 1), PAGE), action, actor_key_id
        )

    def all_events(self, action: str | None = None) -> Iterator[AuditEvent]:
        after = 0
        while page := self._store.audit_events(after, PAGE, action):
            yield from page
            after = page[-1].sequence

    def verify(self) -> ChainVerification:
        head = self._store.audit_head()
        return verify_chain(
            self.all_events(),
            self._keys.audit_key(),
            head[0] if head else None,
            head[1] if head else None,
        )
