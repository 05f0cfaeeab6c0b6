"""Reference photos from the document holdings become templates (the photo is not kept)."""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.biometrics import QualityReport
from entryexit.domain.model import DocumentKey, PhotoSource
from entryexit.domain.policy import DataKind
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, FaceAnalyser, Store


@dataclass(frozen=True, slots=True)
class Enrolment:
    template_id: str
    traveler_id: str
    model: str
    quality: QualityReport


class EnrolmentService:
    def __init__(
        self, store: Store, engine: FaceAnalyser, clock: Clock, policies: PolicyService
    ) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock
        self._policies = policies

    def enrol(self, document: DocumentKey, photo: bytes, source: PhotoSource) -> Enrolment:
        """Decode, find the face, embed and store its template for ``document``.

        References are enrolled before boarding, off the gate's clock, so they get the engine's
        richer multi-crop reference template. Undecodable photos and photos without a face
        raise; a reference photo of poor quality is still enrolled (it may be all the holdings
        have) with its quality reported.
        """
        analysis = self._engine.analyse_reference(photo)
        now = self._clock()
        traveler_id = self._store.traveler_for_document(document)
        citizenship = (
            self._store.traveler_profile(traveler_id).citizenship_class if traveler_id else None
        )
        # Unknown class (document not yet on a manifest): the shortest retention of any class.
        keep = self._policies.in_force(now).retention(DataKind.REFERENCE_TEMPLATES, citizenship)
        template_id, traveler_id = self._store.add_reference_template(
            document,
            source,
            analysis.template.to_bytes(),
            analysis.template.model,
            now,
            expires_at=now + keep,
            # Kept sealed, and deleted with the template, so that an officer can compare a
            # no-match capture with the enrolled photo in the console.
            image=photo,
        )
        return Enrolment(template_id, traveler_id, analysis.template.model, analysis.quality)
