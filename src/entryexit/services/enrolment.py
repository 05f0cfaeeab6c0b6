"""Reference photos from the document holdings become templates (the photo is not kept)."""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.biometrics import QualityReport
from entryexit.domain.access import Principal
from entryexit.domain.model import DocumentKey, PhotoSource
from entryexit.domain.policy import DataKind
from entryexit.services.audit import AuditTrail
from entryexit.services.callers import for_caller
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, FaceAnalyser
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction


@dataclass(frozen=True, slots=True)
class Enrolment:
    template_id: str
    traveler_id: str
    model: str
    quality: QualityReport


class EnrolmentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engine: FaceAnalyser,
        clock: Clock,
        policies: PolicyService,
        audit: AuditTrail,
    ) -> None:
        self._uow = uow
        self._engine = engine
        self._clock = clock
        self._policies = policies
        self._audit = audit

    def enrol(
        self,
        document: DocumentKey,
        photo: bytes,
        source: PhotoSource,
        actor: Principal | None = None,
    ) -> Enrolment:
        """Decode, find the face, embed and store its template for ``document``.

        References are enrolled before boarding, off the gate's clock, so they get the engine's
        richer multi-crop reference template. Undecodable photos and photos without a face
        raise; a reference photo of poor quality is still enrolled (it may be all the holdings
        have) with its quality reported.
        """
        with for_caller(actor):
            analysis = self._engine.analyse_reference(photo)
        now = self._clock()
        policy = self._policies.in_force(now)

        def store(uow: UnitOfWork) -> tuple[str, str]:
            known = uow.travelers.traveler_for_document(document)
            citizenship = uow.travelers.profile(known).citizenship_class if known else None
            # Unknown class (document not yet on a manifest): the shortest retention of any.
            keep = policy.retention(DataKind.REFERENCE_TEMPLATES, citizenship)
            template_id, traveler_id = uow.travelers.add_reference_template(
                document,
                source,
                analysis.template.to_bytes(),
                analysis.template.model,
                now,
                expires_at=now + keep,
                # Kept sealed, and deleted with the template, so that an officer can compare
                # a no-match capture with the enrolled photo in the console.
                image=photo,
            )
            self._audit.record(
                uow,
                "reference enrol",
                "ok",
                actor,
                details={"source": source.value, "model": analysis.template.model},
                policy_version=policy.version,
            )
            return template_id, traveler_id

        template_id, traveler_id = in_transaction(self._uow, store)
        return Enrolment(template_id, traveler_id, analysis.template.model, analysis.quality)
