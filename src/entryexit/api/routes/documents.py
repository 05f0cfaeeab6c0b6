from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import EnrolmentPublic
from entryexit.bootstrap import Services
from entryexit.documents.identity import identify_document, mrz_lines
from entryexit.documents.manifest import normalise_document_number, normalise_state
from entryexit.domain.access import Principal
from entryexit.domain.model import DocumentKey, PhotoSource
from entryexit.errors import InvalidInputError

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def document_from_form(
    services: Services, mrz: str | None, issuing_state: str | None, number: str | None
) -> DocumentKey:
    """The document a form names, by its MRZ or by issuing state and number (kept out of
    URLs, and so out of proxies' access logs)."""
    document, _ = identify_document(
        mrz_lines(mrz) if mrz else None, issuing_state, number, services.clock().date()
    )
    if document is None:
        raise InvalidInputError("identify the document by mrz, or by issuing_state and number")
    return document


async def _enrol(
    services: Services,
    caller: Principal,
    document: DocumentKey,
    photo: UploadFile,
    source: PhotoSource,
) -> EnrolmentPublic:
    data = await photo.read()
    enrolment = await run_in_threadpool(services.enrolment.enrol, document, data, source, caller)
    return EnrolmentPublic(
        template_id=enrolment.template_id,
        traveler_ref=enrolment.traveler_id,
        model=enrolment.model,
        quality=enrolment.quality.as_dict(),
    )


@router.post("/photos", status_code=201)
async def enrol_photo_by_form(
    services: ServicesDep,
    caller: CallerDep,
    photo: Annotated[UploadFile, File(description="JPEG or PNG reference photo")],
    mrz: Annotated[str | None, Form(description="The document's MRZ lines.")] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    number: Annotated[str | None, Form(max_length=20)] = None,
    source: Annotated[PhotoSource, Form()] = PhotoSource.PASSPORT,
) -> EnrolmentPublic:
    """Enrol a reference photo for a document named in the form (by MRZ or state and number),
    which keeps document numbers out of URLs and so out of proxies' access logs."""
    document = document_from_form(services, mrz, issuing_state, number)
    return await _enrol(services, caller, document, photo, source)


@router.post("/{issuing_state}/{number}/photos", status_code=201)
async def enrol_photo(
    issuing_state: str,
    number: str,
    services: ServicesDep,
    caller: CallerDep,
    photo: Annotated[UploadFile, File(description="JPEG or PNG reference photo")],
    source: Annotated[PhotoSource, Form()] = PhotoSource.PASSPORT,
) -> EnrolmentPublic:
    """Enrol a reference photo for a document; its template is kept, the photo is not."""
    document = DocumentKey(normalise_state(issuing_state), normalise_document_number(number))
    return await _enrol(services, caller, document, photo, source)
