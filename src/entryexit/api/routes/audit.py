from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import AuditEventPublic, AuditVerificationPublic

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/events")
def list_events(
    services: ServicesDep,
    _caller: CallerDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Events after this sequence number.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=128)] = None,
    actor_key_id: Annotated[str | None, Query(max_length=36)] = None,
) -> list[AuditEventPublic]:
    """The audit log, oldest first, in pages (``after`` = the last sequence you have)."""
    return [
        AuditEventPublic(
            sequence=e.sequence,
            occurred_at=e.entry.occurred_at,
            action=e.entry.action,
            outcome=e.entry.outcome,
            actor_key_id=e.entry.actor_key_id,
            actor_role=e.entry.actor_role,
            resource_type=e.entry.resource_type,
            resource_id=e.entry.resource_id,
            policy_version=e.entry.policy_version,
            details=dict(e.entry.details),
            previous_hash=e.previous_hash,
            hash=e.hash,
        )
        for e in services.audit.events(after, limit, action, actor_key_id)
    ]


@router.get("/verification")
async def verify(services: ServicesDep, _caller: CallerDep) -> AuditVerificationPublic:
    """Walk the whole chain and check the signed head."""
    result = await run_in_threadpool(services.audit.verify)
    return AuditVerificationPublic(
        ok=result.ok,
        events=result.events,
        first_broken_sequence=result.first_broken_sequence,
        reason=result.reason,
    )
