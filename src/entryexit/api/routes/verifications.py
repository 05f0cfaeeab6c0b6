from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.documents.manifest import normalise_document_number, normalise_state
from entryexit.documents.mrz import parse_mrz
from entryexit.domain.access import Role
from entryexit.domain.model import Decision, DocumentKey
from entryexit.errors import InvalidInputError

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])


class VerificationDecisionPublic(BaseModel):
    decision: Decision
    reasons: list[str]


class VerificationDetailPublic(VerificationDecisionPublic):
    similarity: float | None
    threshold: float
    model: str
    policy_version: str
    encounter_id: str | None


@router.post("", response_model=VerificationDetailPublic | VerificationDecisionPublic)
async def verify(
    services: ServicesDep,
    caller: CallerDep,
    capture: Annotated[UploadFile, File(description="The live capture (JPEG or PNG).")],
    document_photo: Annotated[UploadFile, File(description="The document's photo.")],
    mrz: Annotated[
        str | None, Form(description="The document's MRZ, lines separated by newlines.")
    ] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    document_number: Annotated[str | None, Form(max_length=20)] = None,
    flight_id: Annotated[str | None, Form(max_length=36)] = None,
    gate: Annotated[str, Form(max_length=64)] = "",
    device: Annotated[str, Form(max_length=64)] = "",
) -> VerificationDetailPublic | VerificationDecisionPublic:
    """1:1: is the person at the camera the person in the document photo? With a document
    (MRZ, or state and number) and a flight or lane, a match is recorded as an encounter."""
    document = None
    if mrz:
        parsed = parse_mrz(mrz.replace("\r", "").split("\n"), date.today())
        document = DocumentKey(parsed.issuing_state, parsed.document_number)
    elif issuing_state and document_number:
        document = DocumentKey(
            normalise_state(issuing_state), normalise_document_number(document_number)
        )
    elif issuing_state or document_number:
        raise InvalidInputError("give both issuing_state and document_number, or an mrz")
    live, reference = await capture.read(), await document_photo.read()
    result = await run_in_threadpool(
        services.verifications.verify, caller, live, reference, document, flight_id, gate, device
    )
    decision = VerificationDecisionPublic(decision=result.decision, reasons=list(result.reasons))
    if caller.role is Role.GATE:
        return decision
    return VerificationDetailPublic(
        **decision.model_dump(),
        similarity=result.similarity,
        threshold=result.threshold,
        model=result.model,
        policy_version=result.policy_version,
        encounter_id=result.encounter_id,
    )
