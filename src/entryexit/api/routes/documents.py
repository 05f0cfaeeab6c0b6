from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import EnrolmentPublic
from entryexit.bootstrap import Services
from entryexit.documents.manifest import normalise_document_number, normalise_state
from entryexit.documents.mrz import parse_mrz
from entryexit.domain.model import DocumentKey, PhotoSource
from entryexit.errors import InvalidInputError

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def document_from(mrz: str | None, issuing_state: str | None, number: str | None) -> DocumentKey:
    """A document named by its MRZ (lines separated by newlines) or by state and number."""
    if mrz:
        parsed = parse_mrz(mrz.replace("\r", "").split("\n"), date.today())
        return DocumentKey(parsed.issuing_state, parsed.document_number)
    if issuing_state and number:
        return DocumentKey(normalise_state(issuing_state), normalise_document_number(number))
    raise InvalidInputError("identify the document by mrz, or by issuing_state and number")


async def _enrol(
    services: Services, document: DocumentKey, photo: UploadFile, source: PhotoSource
) -> EnrolmentPublic:
    data = await photo.read()
    enrolment = await run_in_threadpool(services.enrolment.enrol, document, data, source)
    return EnrolmentPublic(
        template_id=enrolment.template_id,
        traveler_ref=enrolment.traveler_id,
        model=enrolment.model,
        quality=enrolment.quality.as_dict(),
    )


@router.post("/photos", status_code=201)
async def enrol_photo_by_form(
    services: ServicesDep,
    _caller: CallerDep,
    photo: Annotated[UploadFile, File(description="JPEG or PNG reference photo")],
    mrz: Annotated[str | None, Form(description="The document's MRZ lines.")] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    number: Annotated[str | None, Form(max_length=20)] = None,
    source: Annotated[PhotoSource, Form()] = PhotoSource.PASSPORT,
) -> EnrolmentPublic:
    """Enrol a reference photo for a document named in the form (by MRZ or state and number),
    which keeps document numbers out of URLs and so out of proxies' access logs."""
    return await _enrol(services, document_from(mrz, issuing_state, number), photo, source)


@router.post("/{issuing_state}/{number}/photos", status_code=201)
async def enrol_photo(
    issuing_state: str,
    number: str,
    services: ServicesDep,
    _caller: CallerDep,
    photo: Annotated[UploadFile, File(description="JPEG or PNG reference photo")],
    source: Annotated[PhotoSource, Form()] = PhotoSource.PASSPORT,
) -> EnrolmentPublic:
    """Enrol a reference photo for a document; its template is kept, the photo is not."""
    document = DocumentKey(normalise_state(issuing_state), normalise_document_number(number))
    return await _enrol(services, document, photo, source)
