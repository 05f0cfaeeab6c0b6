"""Entries, exits, admissions and overstays; the watchlist and its alerts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import (
    AdmissionPublic,
    AdmissionUpdate,
    AlertPublic,
    DispositionCreate,
    OverstayReportPublic,
    TravelerCrossingsPublic,
    WatchlistEntryCreated,
    WatchlistEntryPublic,
)
from entryexit.services.formats import overstay_csv, overstay_json, plain

router = APIRouter(tags=["entry and exit"])


@router.get("/v1/travelers/{traveler_id}/crossings")
def crossings(
    traveler_id: str, services: ServicesDep, caller: CallerDep
) -> TravelerCrossingsPublic:
    """A traveler's entries, exits and admissions (with how each exit was linked)."""
    return TravelerCrossingsPublic.model_validate(services.crossings.crossings(caller, traveler_id))


@router.patch("/v1/admissions/{admission_id}")
def update_admission(
    admission_id: str, body: AdmissionUpdate, services: ServicesDep, caller: CallerDep
) -> AdmissionPublic:
    """Record the class of admission and its end from the arrival record (officer)."""
    return AdmissionPublic.model_validate(
        services.crossings.update_admission(
            caller, admission_id, body.admission_class, body.admitted_until
        )
    )


@router.get(
    "/v1/reports/overstays",
    response_model=OverstayReportPublic,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV rows"}},
)
async def overstays(
    services: ServicesDep,
    caller: CallerDep,
    as_of: Annotated[date, Query(description="Report as of this day.")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """In-country and out-of-country overstays, exit confirmation rates by flight, port,
    carrier and day, and exits without an entry. CSV carries the overstay rows only."""
    report = await run_in_threadpool(services.crossings.overstays, caller, as_of)
    if format == "csv":
        return Response(overstay_csv(report), media_type="text/csv")
    return OverstayReportPublic.model_validate(overstay_json(report))


@router.post("/v1/watchlist", status_code=201)
async def add_watchlist_entry(
    services: ServicesDep,
    caller: CallerDep,
    photo: Annotated[UploadFile, File()],
    category: Annotated[str, Form(max_length=32)],
    reason_code: Annotated[str, Form(max_length=32)],
) -> WatchlistEntryCreated:
    data = await photo.read()
    entry_id = await run_in_threadpool(services.watchlist.add, caller, data, category, reason_code)
    return WatchlistEntryCreated(entry_id=entry_id)


@router.get("/v1/watchlist")
def list_watchlist(services: ServicesDep, caller: CallerDep) -> list[WatchlistEntryPublic]:
    """Entries with their category and reason code; templates never leave the store."""
    return [
        WatchlistEntryPublic(
            entry_id=e.id,
            category=e.category,
            reason_code=e.reason_code,
            model=e.model,
            added_at=e.added_at,
        )
        for e in services.watchlist.entries(caller)
    ]


@router.delete("/v1/watchlist/{entry_id}", status_code=204)
def remove_watchlist_entry(entry_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    services.watchlist.remove(caller, entry_id)
    return Response(status_code=204)


@router.get("/v1/alerts")
def list_alerts(
    services: ServicesDep,
    caller: CallerDep,
    status: Annotated[str | None, Query(max_length=32)] = "open",
) -> list[AlertPublic]:
    """Watchlist alerts (open by default; ``status=`` empty for all)."""
    return [
        AlertPublic.model_validate(plain(a))
        for a in services.watchlist.alerts(caller, status or None)
    ]


@router.post("/v1/alerts/{alert_id}/disposition")
def disposition_alert(
    alert_id: str, body: DispositionCreate, services: ServicesDep, caller: CallerDep
) -> AlertPublic:
    alert = services.watchlist.disposition(caller, alert_id, body.disposition, body.reason)
    return AlertPublic.model_validate(alert, from_attributes=True)
