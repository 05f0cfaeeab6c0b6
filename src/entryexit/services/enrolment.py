"""Reference photos from the document holdings become templates (the photo is not kept)."""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.biometrics import QualityReport
from entryexit.domain.model import DocumentKey, PhotoSource
from entryexit.services.ports import Clock, FaceAnalyser, Store


@dataclass(frozen=True, slots=True)
class Enrolment:
    template_id: str
    traveler_id: str
    model: str
    quality: QualityReport


class EnrolmentService:
    def __init__(self, store: Store, engine: FaceAnalyser, clock: Clock) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock

    def enrol(self, document: DocumentKey, photo: bytes, source: PhotoSource) -> Enrolment:
        """Decode, find the face, embed and store its template for ``document``.

        Undecodable photos and photos without a face raise; a reference photo of poor quality
        is still enrolled (it may be all the holdings have) with its quality reported.
        """
        analysis = self._engine.analyse(photo)
        template_id, traveler_id = self._store.add_reference_template(
            document, source, analysis.template.to_bytes(), analysis.template.model, self._clock()
        )
        return Enrolment(template_id, traveler_id, analysis.template.model, analysis.quality)
