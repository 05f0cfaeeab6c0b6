from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import (
    AuditCheckpointsPublic,
    AuditEventPublic,
    AuditProblemPublic,
    AuditRepairPublic,
    AuditVerificationPublic,
)

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
    """Walk the chain from the last signed checkpoint (``checked_from_sequence``) to the signed
    head and hold it against that checkpoint: every wrong event, every repair passed, and
    any rollback, truncation or wipe since (a restore acknowledged by an administrator is
    reported as such). Its cost is what was written since the checkpoint, not the log's
    size; the full walk is `entryexit audit verify --checkpoints FILE`."""
    result = await run_in_threadpool(services.checkpoints.verify_recent)
    chain, report = result.chain, result.checkpoints
    return AuditVerificationPublic(
        ok=result.ok,
        events=chain.events,
        checked_from_sequence=chain.after_sequence + 1,
        first_broken_sequence=chain.first_broken_sequence,
        reason=chain.reason,
        problems=[AuditProblemPublic(sequence=p.sequence, reason=p.reason) for p in chain.problems],
        problem_count=chain.problem_count,
        repairs=[
            AuditRepairPublic(
                sequence=r.sequence,
                occurred_at=r.entry.occurred_at,
                actor_key_id=r.entry.actor_key_id,
                details=dict(r.entry.details),
            )
            for r in chain.repairs
        ],
        checkpoints=None
        if report is None
        else AuditCheckpointsPublic(
            checked=report.checked,
            superseded=report.superseded,
            problems=list(report.problems),
            restores=[r.describe() for r in report.restores],
        ),
    )
