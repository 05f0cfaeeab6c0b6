"""Fingerprints: an officer enrols a non-citizen's fingers and confirms a traveler 1:1.

The document is named in the form (by MRZ, or state and number), never in the URL, so
document numbers stay out of proxies' access logs. Prints are multipart files with their
finger positions in the same order; one resolution applies to every image of a request (one
scanner), and ISO/IEC 19794-2 records carry their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.routes.documents import document_from_form
from entryexit.api.schemas import (
    EnrolledFingerPublic,
    FingerprintCandidatePublic,
    FingerprintEnrolmentPublic,
    FingerprintSearchPublic,
    FingerprintVerificationPublic,
    FingerScorePublic,
    WatchlistEntryCreated,
)
from entryexit.errors import InvalidInputError
from entryexit.services.fingerprints import MAX_PRINTS, PrintFormat, SubmittedPrint

router = APIRouter(tags=["fingerprints"])

PrintsField = Annotated[
    list[UploadFile], File(description=f"1 to {MAX_PRINTS} prints (images or ISO records)")
]
FingersField = Annotated[
    list[int], Form(description="The finger position (1-10) of each print, in order.")
]
FormatField = Annotated[PrintFormat, Form(description="image, or iso19794-2 records")]
PpiField = Annotated[
    float | None, Form(description="The images' resolution (pixels per inch); not for records.")
]


async def submitted_prints(
    prints: list[UploadFile], fingers: list[int], format: PrintFormat, ppi: float | None
) -> list[SubmittedPrint]:
    if len(prints) > MAX_PRINTS:
        raise InvalidInputError(f"at most {MAX_PRINTS} fingerprints in one request")
    if len(prints) != len(fingers):
        raise InvalidInputError(
            f"{len(prints)} prints but {len(fingers)} finger positions: one position a print"
        )
    return [
        SubmittedPrint(finger, await upload.read(), format, ppi)
        for upload, finger in zip(prints, fingers, strict=True)
    ]


@router.post("/v1/documents/fingerprints", status_code=201)
async def enrol_fingerprints(
    services: ServicesDep,
    caller: CallerDep,
    prints: PrintsField,
    fingers: FingersField,
    format: FormatField = PrintFormat.IMAGE,
    ppi: PpiField = None,
    mrz: Annotated[str | None, Form(description="The document's MRZ lines.")] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    number: Annotated[str | None, Form(max_length=20)] = None,
    reason: Annotated[
        str | None,
        Form(
            max_length=40,
            description="Replacing a finger already enrolled (supervisors only): why, as a code"
            " such as `injured_finger` or `poor_quality`.",
        ),
    ] = None,
) -> FingerprintEnrolmentPublic:
    """Enrol the fingers the policy asks of this traveler (non-citizens of the policy's ages;
    citizens never). Only minutiae templates are kept, sealed; the images are not. A finger
    already enrolled is refused (409) unless a supervisor replaces it with a `reason`."""
    document = document_from_form(services, mrz, issuing_state, number)
    submitted = await submitted_prints(prints, fingers, format, ppi)
    enrolment = await run_in_threadpool(
        services.fingerprints.enrol, caller, document, submitted, reason
    )
    return FingerprintEnrolmentPublic(
        traveler_ref=enrolment.traveler_id,
        engine=enrolment.engine,
        fingers=[
            EnrolledFingerPublic(finger=f.finger, quality=f.quality) for f in enrolment.fingers
        ],
    )


@router.post("/v1/fingerprint-verifications")
async def verify_fingerprints(
    services: ServicesDep,
    caller: CallerDep,
    prints: PrintsField,
    fingers: FingersField,
    format: FormatField = PrintFormat.IMAGE,
    ppi: PpiField = None,
    mrz: Annotated[str | None, Form(description="The document's MRZ lines.")] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    number: Annotated[str | None, Form(max_length=20)] = None,
    flight_id: Annotated[
        str | None,
        Form(max_length=36, description="A match of a traveler on it is their encounter."),
    ] = None,
    device: Annotated[str, Form(max_length=64)] = "",
) -> FingerprintVerificationPublic:
    """The officer's 1:1: live prints against those enrolled for the document, fingers
    fused by the mean of their scores, decided at the policy's target FAR."""
    document = document_from_form(services, mrz, issuing_state, number)
    submitted = await submitted_prints(prints, fingers, format, ppi)
    result = await run_in_threadpool(
        services.fingerprints.verify, caller, document, submitted, flight_id, device
    )
    return FingerprintVerificationPublic(
        decision=result.decision.value,
        traveler_ref=result.traveler_id,
        engine=result.engine,
        fingers=[FingerScorePublic(finger=s.finger, score=s.score) for s in result.fingers],
        fused_score=result.fused_score,
        threshold=result.threshold,
        fusion=result.fusion.value,
        encounter_id=result.encounter_id,
        alerts=result.alerts,
    )


@router.post("/v1/flights/{flight_id}/fingerprint-searches")
async def search_fingerprints(
    flight_id: str,
    services: ServicesDep,
    caller: CallerDep,
    prints: PrintsField,
    fingers: FingersField,
    format: FormatField = PrintFormat.IMAGE,
    ppi: PpiField = None,
) -> FingerprintSearchPublic:
    """Without the document: the flight's travelers whose prints best resemble these, best
    first (at most five), for the officer to confirm with the traveler's document. Never a
    decision, and nothing is recorded but the audit event."""
    submitted = await submitted_prints(prints, fingers, format, ppi)
    result = await run_in_threadpool(services.fingerprints.search, caller, flight_id, submitted)
    return FingerprintSearchPublic(
        candidates=[
            FingerprintCandidatePublic(
                traveler_ref=c.traveler_id,
                fused_score=c.fused_score,
                fingers=[FingerScorePublic(finger=s.finger, score=s.score) for s in c.fingers],
                meets_threshold=c.meets_threshold,
            )
            for c in result.candidates
        ],
        searched=result.searched,
        engine=result.engine,
        threshold=result.threshold,
        alerts=result.alerts,
    )


@router.post("/v1/watchlist/fingerprints", status_code=201)
async def add_watchlist_prints(
    services: ServicesDep,
    caller: CallerDep,
    prints: PrintsField,
    fingers: FingersField,
    category: Annotated[str, Form(max_length=32)],
    reason_code: Annotated[str, Form(max_length=32)],
    format: FormatField = PrintFormat.IMAGE,
    ppi: PpiField = None,
) -> WatchlistEntryCreated:
    """A watchlist entry of prints (watchlist manager). Live prints submitted with a flight
    (the officer's 1:1 with ``flight_id``, a flight search, a console case) are searched
    against it; a hit is an alert for an officer to disposition, never a decision."""
    submitted = await submitted_prints(prints, fingers, format, ppi)
    entry_id = await run_in_threadpool(
        services.fingerprints.add_to_watchlist, caller, submitted, category, reason_code
    )
    return WatchlistEntryCreated(entry_id=entry_id)
