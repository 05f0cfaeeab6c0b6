from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import VerificationDecisionPublic, VerificationDetailPublic
from entryexit.documents.identity import identify_document, mrz_lines
from entryexit.documents.text import excerpt
from entryexit.errors import InvalidInputError
from entryexit.services.verification import ChipEvidence, Verification

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])
FIELDS = frozenset(
    {
        "capture",
        "document_photo",
        "dg2",
        "dg1",
        "sod",
        "mrz",
        "issuing_state",
        "document_number",
        "flight_id",
        "gate",
        "device",
    }
)


@router.post("", response_model=VerificationDetailPublic | VerificationDecisionPublic)
async def verify(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    capture: Annotated[UploadFile, File(description="The live capture (JPEG or PNG).")],
    document_photo: Annotated[
        UploadFile | None, File(description="The document's photo (or send the chip's DG2).")
    ] = None,
    dg2: Annotated[UploadFile | None, File(description="The chip's DG2 (face).")] = None,
    dg1: Annotated[UploadFile | None, File(description="The chip's DG1 (MRZ).")] = None,
    sod: Annotated[UploadFile | None, File(description="The chip's EF.SOD.")] = None,
    mrz: Annotated[
        str | None, Form(description="The document's MRZ, lines separated by newlines.")
    ] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    document_number: Annotated[str | None, Form(max_length=20)] = None,
    flight_id: Annotated[str | None, Form(max_length=36)] = None,
    gate: Annotated[str, Form(max_length=64)] = "",
    device: Annotated[str, Form(max_length=64)] = "",
) -> VerificationDetailPublic | VerificationDecisionPublic:
    """1:1: is the person at the camera the person in the document (its photo, or the chip's
    DG2 with its DG1 and EF.SOD checked)? With a document (MRZ, or state and number) and a
    flight or lane, a match is recorded as an encounter. A failed chip check, or a signer that
    no configured CSCA vouches for, is ``manual``. A field this endpoint does not know (an
    EF.SOD sent as ``ef_sod``, say) is refused, never ignored."""
    unknown = sorted(set((await request.form()).keys()) - FIELDS)
    if unknown:
        raise InvalidInputError(
            f"unknown form field {excerpt(unknown[0])}; send the chip's files as dg2, dg1, sod"
        )
    if dg2 is None and (dg1 is not None or sod is not None):
        raise InvalidInputError("dg1 and sod check a chip's DG2: send them with dg2")
    document, printed = identify_document(
        mrz_lines(mrz) if mrz else None, issuing_state, document_number, services.clock().date()
    )
    live = await capture.read()
    reference = await document_photo.read() if document_photo is not None else None
    chip = None
    if dg2 is not None:
        chip = ChipEvidence(
            dg2=await dg2.read(),
            dg1=await dg1.read() if dg1 is not None else None,
            sod=await sod.read() if sod is not None else None,
        )
    result = await run_in_threadpool(
        partial(
            services.verifications.verify,
            caller,
            live,
            reference,
            document,
            flight_id,
            gate,
            device,
            chip=chip,
            printed_mrz=printed,
        )
    )
    seen = result.seen_by(caller)
    decision = VerificationDecisionPublic(decision=seen.decision, reasons=list(seen.reasons))
    if not isinstance(seen, Verification):
        return decision
    return VerificationDetailPublic(
        **decision.model_dump(),
        similarity=seen.similarity,
        threshold=seen.threshold,
        model=seen.model,
        policy_version=seen.policy_version,
        encounter_id=seen.encounter_id,
        chip_checks=seen.chip_checks,
    )
