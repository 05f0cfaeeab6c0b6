from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import (
    ErasureCreate,
    ErasurePublic,
    FairnessReportPublic,
    Instant,
    OptOutCreate,
    OptOutPublic,
    PolicyPublic,
    PrivacyReportPublic,
)
from entryexit.documents.identity import identify_document
from entryexit.errors import InvalidInputError

router = APIRouter(tags=["privacy"])


@router.post("/v1/flights/{flight_id}/opt-outs", status_code=201)
def record_opt_out(
    flight_id: str, body: OptOutCreate, services: ServicesDep, caller: CallerDep
) -> OptOutPublic:
    """The traveler declines the photo: processed manually, never matched on this flight.
    Refused (409, opt-out-refused) where the policy in force requires capture."""
    today = services.clock().date()
    document, _ = identify_document(body.mrz, body.issuing_state, body.number, today)
    if document is None:
        raise InvalidInputError("identify the document by issuing_state and number, or mrz")
    opt_out = services.opt_outs.record(caller, flight_id, document, body.gate)
    return OptOutPublic(encounter_id=opt_out.encounter_id, policy_version=opt_out.policy_version)


@router.post("/v1/erasures", status_code=201)
async def erase_traveler(
    body: ErasureCreate, services: ServicesDep, caller: CallerDep
) -> ErasurePublic:
    """Erase every record of the traveler holding the document (a court order, a mistaken
    enrolment), their data key included, so that no copy anywhere can be read again.
    Supervisors and admins only; audited with counts and the reason code."""
    today = services.clock().date()
    document, _ = identify_document(body.mrz, body.issuing_state, body.number, today)
    if document is None:
        raise InvalidInputError("identify the document by issuing_state and number, or mrz")
    report = await run_in_threadpool(services.erasure.erase, caller, document, body.reason)
    return ErasurePublic(
        traveler_id=report.traveler_id,
        reason=report.reason,
        erased=report.erased,
        galleries_rebuilt=report.galleries_rebuilt,
    )


@router.get("/v1/policies")
def list_policies(services: ServicesDep, _caller: CallerDep) -> list[PolicyPublic]:
    """Every policy version loaded, oldest effective date first."""
    return [PolicyPublic.model_validate(policy.as_dict()) for policy in services.policies.all()]


@router.get("/v1/policies/current")
def current_policy(services: ServicesDep, _caller: CallerDep) -> PolicyPublic:
    return PolicyPublic.model_validate(services.policies.in_force().as_dict())


@router.get("/v1/privacy/report")
async def privacy_report(
    services: ServicesDep,
    _caller: CallerDep,
    since: Annotated[
        Instant | None, Query(description="Start of the period (default: 7 days ago).")
    ] = None,
    until: Annotated[Instant | None, Query(description="End of the period (default: now).")] = None,
    as_of: Annotated[
        Instant | None,
        Query(description="Count holdings and overdue items as of this moment (default: now)."),
    ] = None,
) -> PrivacyReportPublic:
    """What is held, what is overdue for deletion (must be zero), purges, erasures,
    opt-outs, exemptions and manual processing in the period. Counts only."""
    start = since or services.clock() - timedelta(days=7)
    report = await run_in_threadpool(services.privacy.report, start, until, as_of)
    return PrivacyReportPublic.model_validate(report)


@router.get("/v1/reports/fairness")
async def fairness_report(
    services: ServicesDep,
    _caller: CallerDep,
    since: Annotated[
        Instant | None, Query(description="Flights staged from (default: 30 days ago).")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Flights staged until (default: now).")
    ] = None,
) -> FairnessReportPublic:
    """How travelers of each sex on staged manifests were processed (counts only)."""
    start = since or services.clock() - timedelta(days=30)
    report = await run_in_threadpool(services.fairness.report, start, until)
    return FairnessReportPublic.model_validate(report)
