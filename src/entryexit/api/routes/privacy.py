from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.documents.identity import identify_document
from entryexit.errors import InvalidInputError

router = APIRouter(tags=["privacy"])


class OptOutCreate(BaseModel):
    """The traveler's document: ``issuing_state`` and ``number``, or its ``mrz`` lines."""

    issuing_state: str | None = Field(default=None, min_length=1, max_length=3, examples=["UTO"])
    number: str | None = Field(default=None, min_length=1, max_length=20, examples=["L898902C3"])
    mrz: list[str] | None = Field(default=None, max_length=3)
    gate: str = Field(min_length=1, max_length=64, examples=["B12"])


class OptOutPublic(BaseModel):
    decision: str = "manual"
    encounter_id: str
    policy_version: str


@router.post("/v1/flights/{flight_id}/opt-outs", status_code=201)
def record_opt_out(
    flight_id: str, body: OptOutCreate, services: ServicesDep, caller: CallerDep
) -> OptOutPublic:
    """The traveler declines the photo: processed manually, never matched on this flight.
    Refused (409, opt-out-refused) where the policy in force requires capture."""
    document, _ = identify_document(body.mrz, body.issuing_state, body.number, date.today())
    if document is None:
        raise InvalidInputError("identify the document by issuing_state and number, or mrz")
    opt_out = services.opt_outs.record(caller, flight_id, document, body.gate)
    return OptOutPublic(encounter_id=opt_out.encounter_id, policy_version=opt_out.policy_version)


@router.get("/v1/policies")
def list_policies(services: ServicesDep, _caller: CallerDep) -> list[dict[str, Any]]:
    """Every policy version loaded, oldest effective date first."""
    return [policy.as_dict() for policy in services.policies.all()]


@router.get("/v1/policies/current")
def current_policy(services: ServicesDep, _caller: CallerDep) -> dict[str, Any]:
    return services.policies.in_force().as_dict()


@router.get("/v1/privacy/report")
async def privacy_report(
    services: ServicesDep,
    _caller: CallerDep,
    since: Annotated[
        datetime | None, Query(description="Start of the period (default: 7 days ago).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="End of the period (default: now).")
    ] = None,
) -> dict[str, object]:
    """What is held, what is overdue for deletion (must be zero), purges, opt-outs,
    exemptions and manual processing in the period. Counts only."""
    start = since or datetime.now(UTC) - timedelta(days=7)
    return await run_in_threadpool(services.privacy.report, start, until)


@router.get("/v1/reports/fairness")
async def fairness_report(
    services: ServicesDep,
    _caller: CallerDep,
    since: Annotated[
        datetime | None, Query(description="Flights staged from (default: 30 days ago).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Flights staged until (default: now).")
    ] = None,
) -> dict[str, object]:
    """How travelers of each sex on staged manifests were processed (counts only)."""
    start = since or datetime.now(UTC) - timedelta(days=30)
    return await run_in_threadpool(services.fairness.report, start, until)
