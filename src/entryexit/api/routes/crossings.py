"""Entries, exits, admissions and overstays; the watchlist and its alerts."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.services.watchlist import Disposition

router = APIRouter(tags=["entry and exit"])


@router.get("/v1/travelers/{traveler_id}/crossings")
def crossings(traveler_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    """A traveler's entries, exits and admissions (with how each exit was linked)."""
    return services.crossings.crossings(caller, traveler_id)


class AdmissionUpdate(BaseModel):
    admission_class: str = Field(min_length=1, max_length=16, examples=["B2"])
    admitted_until: date | None = Field(default=None, examples=["2027-05-21"])


@router.patch("/v1/admissions/{admission_id}")
def update_admission(
    admission_id: str, body: AdmissionUpdate, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    """Record the class of admission and its end from the arrival record (officer)."""
    return services.crossings.update_admission(
        caller, admission_id, body.admission_class, body.admitted_until
    )


OVERSTAY_COLUMNS = (
    "kind",
    "traveler_ref",
    "surname",
    "given_names",
    "nationality",
    "document",
    "admission_class",
    "admitted_on",
    "admitted_until",
    "exited_on",
    "days_over",
)


@router.get("/v1/reports/overstays", response_model=None)
async def overstays(
    services: ServicesDep,
    caller: CallerDep,
    as_of: Annotated[date, Query(description="Report as of this day.")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    """In-country and out-of-country overstays, exit confirmation rates by flight, port,
    carrier and day, and exits without an entry. CSV carries the overstay rows only."""
    report = await run_in_threadpool(services.crossings.overstays, caller, as_of)
    if format == "csv":
        return Response(overstay_csv(report), media_type="text/csv")
    return overstay_json(report)


def plain(record: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready fields (dates and times in ISO 8601)."""
    return {
        k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in asdict(record).items()
    }


def overstay_json(report: dict[str, Any]) -> dict[str, Any]:
    """The overstay report with its rows as plain fields (API and CLI JSON)."""
    return {
        **report,
        "in_country": [plain(r) for r in report["in_country"]],
        "out_of_country": [plain(r) for r in report["out_of_country"]],
    }


def overstay_csv(report: dict[str, Any]) -> str:
    """The report's overstay rows, in-country then out-of-country, one CSV line each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(OVERSTAY_COLUMNS)
    for kind in ("in_country", "out_of_country"):
        for row in report[kind]:
            values = plain(row)
            writer.writerow(
                [kind, *("" if values[c] is None else values[c] for c in OVERSTAY_COLUMNS[1:])]
            )
    return buffer.getvalue()


@router.post("/v1/watchlist", status_code=201)
async def add_watchlist_entry(
    services: ServicesDep,
    caller: CallerDep,
    photo: Annotated[UploadFile, File()],
    category: Annotated[str, Form(max_length=32)],
    reason_code: Annotated[str, Form(max_length=32)],
) -> dict[str, str]:
    data = await photo.read()
    entry_id = await run_in_threadpool(services.watchlist.add, caller, data, category, reason_code)
    return {"entry_id": entry_id}


@router.get("/v1/watchlist")
def list_watchlist(services: ServicesDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Entries with their category and reason code; templates never leave the store."""
    return [
        {
            "entry_id": e.id,
            "category": e.category,
            "reason_code": e.reason_code,
            "model": e.model,
            "added_at": e.added_at.isoformat(),
        }
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
) -> list[dict[str, Any]]:
    """Watchlist alerts (open by default; ``status=`` empty for all)."""
    return [plain(a) for a in services.watchlist.alerts(caller, status or None)]


class DispositionCreate(BaseModel):
    disposition: Disposition
    reason: str = Field(min_length=1, max_length=500)


@router.post("/v1/alerts/{alert_id}/disposition")
def disposition_alert(
    alert_id: str, body: DispositionCreate, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    alert = services.watchlist.disposition(caller, alert_id, body.disposition, body.reason)
    return plain(alert)
