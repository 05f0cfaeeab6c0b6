from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, PendingAccessDep, ServicesDep
from entryexit.api.observability import MANIFEST_CONFLICTS
from entryexit.api.schemas import (
    CaptureDecisionPublic,
    CaptureDetailPublic,
    DocumentRef,
    EncounterPublic,
    FlaggedTravelerPublic,
    FlightCreate,
    FlightPublic,
    ManifestChangePublic,
    ManifestTravelerPublic,
    StagingPublic,
)
from entryexit.domain.access import Principal
from entryexit.domain.model import Encounter, EncounterMethod, Flight
from entryexit.errors import InvalidInputError
from entryexit.services.captures import CaptureOutcome
from entryexit.services.flights import ManifestFormat, NewFlight
from entryexit.services.ports import ManifestStatus
from entryexit.services.unit_of_work import UnitOfWork

router = APIRouter(prefix="/v1/flights", tags=["flights"])
# The capture's form fields are declared optional (see submit_capture) but are required: the
# document says so.
_CAPTURE_FIELDS_REQUIRED = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {"required": ["photo", "gate", "device"]}}},
    }
}
_MANIFEST_FORMATS = {
    "": ManifestFormat.JSON,
    "application/json": ManifestFormat.JSON,
    "text/csv": ManifestFormat.CSV,
    "application/csv": ManifestFormat.CSV,
    "application/edifact": ManifestFormat.PAXLST,
    "application/x-edifact": ManifestFormat.PAXLST,
}


def _public(flight: Flight) -> FlightPublic:
    return FlightPublic(
        id=flight.id,
        carrier=flight.carrier,
        number=flight.number,
        scheduled_departure=flight.scheduled_departure,
        origin=flight.origin,
        destination=flight.destination,
        direction=flight.direction,
        gallery_staged=flight.staged,
        gallery_version=flight.gallery_version,
        gallery_staged_at=flight.gallery_staged_at,
    )


def _traveler(status: ManifestStatus, partner: bool = False) -> ManifestTravelerPublic:
    return ManifestTravelerPublic(
        traveler_ref=status.traveler_id,
        document=DocumentRef(
            issuing_state=status.document.issuing_state, number=status.document.number
        ),
        surname=status.surname,
        given_names=status.given_names,
        citizenship_class=status.citizenship_class,
        # An agency enrolment: not a carrier's to know.
        has_photo=None if partner else status.has_photo,
        processed=status.processed,
        booking_reference=status.booking_reference,
    )


@router.post("", status_code=201)
def create_flight(body: FlightCreate, services: ServicesDep, caller: CallerDep) -> FlightPublic:
    """Create a flight, voyage or land-lane session."""
    flight = services.flights.create(NewFlight(**body.model_dump()), caller)
    return _public(flight)


@router.get("/{flight_id}")
def get_flight(flight_id: str, services: ServicesDep, _caller: CallerDep) -> FlightPublic:
    return _public(services.flights.get(flight_id))


@router.put(
    "/{flight_id}/manifest",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/edifact": {"schema": {"type": "string"}},
            },
        }
    },
)
async def put_manifest(
    flight_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> ManifestChangePublic:
    """Replace the manifest (JSON, CSV or UN/EDIFACT PAXLST): travelers are added, removed or
    updated, never duplicated. Invalid manifests change nothing; PAXLST travelers without a
    usable document are listed in ``flagged``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    manifest_format = _MANIFEST_FORMATS.get(content_type)
    if manifest_format is None:
        raise InvalidInputError(
            "send the manifest as application/json, text/csv or application/edifact (PAXLST)"
        )
    body = await request.body()
    # Read, validated and sealed in a manifest worker process (not on this event loop, nor
    # under this process's interpreter lock, which the gates need); swapped in here.
    replaced = await run_in_threadpool(
        services.flights.replace_manifest, flight_id, body, manifest_format, caller
    )
    change = replaced.change
    if change.conflicts:
        MANIFEST_CONFLICTS.inc(change.conflicts)
    flagged = [
        FlaggedTravelerPublic(segment=f.position, role=f.role, reason=f.reason)
        for f in replaced.flagged
    ]
    return ManifestChangePublic(
        added=change.added,
        removed=change.removed,
        updated=change.updated,
        total=change.total,
        flagged=flagged,
        # A carrier's key is told nothing of what others set: the same answer for a document
        # known elsewhere and an unknown one (the conflicts still wait for the agency).
        details_kept=None if caller.carrier is not None else change.details_kept,
        conflicts=None if caller.carrier is not None else change.conflicts,
    )


@router.get("/{flight_id}/manifest")
def get_manifest(
    flight_id: str, services: ServicesDep, caller: CallerDep
) -> list[ManifestTravelerPublic]:
    """The flight's travelers. A carrier's key sees what its carrier sent for each (never the
    details another carrier or the agency set: empty fields if it sent none of its own) and
    no ``has_photo``."""
    partner = caller.carrier is not None
    return [_traveler(s, partner) for s in services.flights.manifest(flight_id, caller)]


@router.post("/{flight_id}/gallery")
def stage_gallery(flight_id: str, services: ServicesDep, caller: CallerDep) -> StagingPublic:
    """Stage (or restage) the flight's gallery; lists travelers who need a manual check. A
    carrier's key is told the version and the count of travelers staged from, nothing of who
    is in the gallery: that would say which of its passengers the agency holds a photo of (a
    one-traveler manifest of any passport number, staged, would answer it)."""
    report = services.galleries.stage(flight_id, caller)
    if caller.carrier is not None:
        return StagingPublic(
            flight_id=report.flight_id,
            gallery_version=report.gallery_version,
            travelers=report.travelers,
        )
    return StagingPublic(
        flight_id=report.flight_id,
        gallery_version=report.gallery_version,
        travelers=report.travelers,
        with_photo=report.with_photo,
        added=report.added,
        removed=report.removed,
        unchanged=report.unchanged,
        without_photo=[
            DocumentRef(issuing_state=d.issuing_state, number=d.number)
            for d in report.without_photo
        ],
    )


@router.post(
    "/{flight_id}/captures",
    response_model=CaptureDetailPublic | CaptureDecisionPublic,
    openapi_extra=_CAPTURE_FIELDS_REQUIRED,
)
async def submit_capture(
    flight_id: str,
    services: ServicesDep,
    access: PendingAccessDep,
    response: Response,
    # Declared optional so that the key is checked before the form (as on every endpoint):
    # a missing field is refused after the key's checks, in the worker thread.
    photo: Annotated[
        list[UploadFile] | None,
        File(
            description="JPEG or PNG from the gate camera; repeat the field for a short burst"
            " of frames of one traveler (at most the policy's capture.max_frames)"
        ),
    ] = None,
    gate: Annotated[str | None, Form(max_length=64)] = None,
    device: Annotated[str | None, Form(max_length=64)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=128,
            description="A gate's retry of a capture sends the first attempt's key and gets"
            " its outcome (same capture id) without a second record; another capture under"
            " the same key is 409.",
        ),
    ] = None,
) -> CaptureDetailPublic | CaptureDecisionPublic:
    """Decide on a live capture (one frame or a burst fused into one probe): match,
    no_match, recapture (with reasons) or manual. Frames of a burst that were left out are
    named in the reasons (``frame_<n>_<reason>``)."""
    frames = [await frame.read() for frame in photo or ()]
    fields = {"photo": photo, "gate": gate, "device": device}

    def admit(within: UnitOfWork) -> tuple[Principal, Flight | None]:
        admitted = access.check(within)
        missing = [name for name, value in fields.items() if value is None]
        if missing:
            raise RequestValidationError(
                [
                    {"type": "missing", "loc": ("body", name), "msg": "Field required"}
                    for name in missing
                ]
            )
        return admitted

    def early() -> Principal | None:
        if any(value is None for value in fields.values()):
            return None
        return access.early()

    # The key's checks, the capture's reads, the model and the write: one worker call.
    caller, outcome = await run_in_threadpool(
        services.captures.submit_burst,
        admit,
        flight_id,
        frames,
        gate or "",
        device or "",
        idempotency_key,
        early,
    )
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    seen = outcome.seen_by(caller)
    decision = CaptureDecisionPublic(
        capture_id=seen.capture_id,
        decision=seen.decision,
        reasons=list(seen.reasons),
        already_processed=seen.already_processed,
    )
    if not isinstance(seen, CaptureOutcome):
        return decision
    return CaptureDetailPublic(
        **decision.model_dump(),
        traveler_ref=seen.traveler_id,
        score=seen.score,
        runner_up_score=seen.runner_up_score,
        threshold=seen.threshold,
        frames_fused=seen.frames_fused,
        model=seen.model,
        gallery_size=seen.gallery_size,
        policy_version=seen.policy_version,
    )


# How a fingerprint encounter is recorded (services/fingerprints.py) and shown to partners.
FINGERPRINT_STEP = "fingerprint"
AGENCY_STEP = "agency"


@router.get("/{flight_id}/encounters")
def list_encounters(
    flight_id: str, services: ServicesDep, caller: CallerDep
) -> list[EncounterPublic]:
    """A carrier's key sees that a traveler was processed, where and when; never a score, an
    engine or an officer's key, and every officer-side step (a document check, a fingerprint
    check, whose taking would tell the traveler's class) in one shape: an agency check."""
    partner = caller.carrier is not None
    return [_encounter(e, partner) for e in services.flights.encounters(flight_id)]


def _encounter(e: Encounter, partner: bool) -> EncounterPublic:
    officer_side = e.gate == FINGERPRINT_STEP or e.method is EncounterMethod.MANUAL_DOCUMENT_CHECK
    shown_as_agency = partner and officer_side
    return EncounterPublic(
        id=e.id,
        traveler_ref=e.traveler_id,
        direction=e.direction,
        method=(EncounterMethod.MANUAL_DOCUMENT_CHECK.value if shown_as_agency else e.method.value),
        gate=AGENCY_STEP if shown_as_agency else e.gate,
        device=AGENCY_STEP if shown_as_agency else e.device,
        occurred_at=e.occurred_at,
        score=None if partner else e.score,
        model=None if partner else e.model,
        policy_version=e.policy_version,
        capture_id=e.capture_id,
    )


@router.get("/{flight_id}/outstanding")
def list_outstanding(
    flight_id: str, services: ServicesDep, caller: CallerDep
) -> list[ManifestTravelerPublic]:
    """Manifest travelers not yet processed on this flight (shown as the manifest is)."""
    partner = caller.carrier is not None
    return [
        _traveler(s, partner)
        for s in services.flights.manifest(flight_id, caller)
        if not s.processed
    ]
