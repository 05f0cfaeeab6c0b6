"""Policy versions: stored once, never changed (history is kept, not rewritten)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from entryexit.adapters.storage.tables import PolicyRow
from entryexit.errors import ConflictError
from entryexit.services.ports import StoredPolicy


class SqlPolicyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool:
        """Store a policy version; ``False`` if this exact file was loaded before."""
        existing = self._session.get(PolicyRow, policy.version)
        if existing is not None:
            if existing.sha256 != policy.sha256:
                raise ConflictError(
                    f"policy version {policy.version} is already loaded with different"
                    " content; give the new policy a new version"
                )
            return False
        self._session.add(
            PolicyRow(
                version=policy.version,
                effective_from=effective_from,
                source=policy.source,
                sha256=policy.sha256,
                loaded_at=now,
            )
        )
        return True

    def all(self) -> list[StoredPolicy]:
        rows = self._session.scalars(select(PolicyRow).order_by(PolicyRow.effective_from)).all()
        return [StoredPolicy(r.version, r.source, r.sha256) for r in rows]
