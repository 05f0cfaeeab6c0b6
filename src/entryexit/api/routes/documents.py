from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import EnrolmentPublic
from entryexit.documents.manifest import normalise_document_number, normalise_state
from entryexit.domain.model import DocumentKey, PhotoSource

router = APIRouter(prefix="/v1/documents", tags=["documents"])


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
    data = await photo.read()
    enrolment = await run_in_threadpool(services.enrolment.enrol, document, data, source)
    return EnrolmentPublic(
        template_id=enrolment.template_id,
        traveler_ref=enrolment.traveler_id,
        model=enrolment.model,
        quality=enrolment.quality.as_dict(),
    )
