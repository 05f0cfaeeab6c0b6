"""A gate capture in, a decision out: the boarding queue's hot path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from entryexit.biometrics import similarity_matrix
from entryexit.domain.access import Permission, Principal, Role
from entryexit.domain.identification import IdentificationRule, identify
from entryexit.domain.model import (
    BASELINE_POLICY_VERSION,
    Decision,
    Encounter,
    EncounterMethod,
)
from entryexit.errors import InvalidInputError, NoFaceError, PermissionDeniedError
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.ports import CaptureRecord, Clock, FaceAnalyser, Store

_MAX_LABEL = 64


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    """Everything known about a decision. What a caller may *see* of it depends on its role
    (the API shows a gate only ``capture_id``, ``decision``, ``reasons`` and
    ``already_processed``)."""

    capture_id: str
    decision: Decision
    reasons: tuple[str, ...]
    already_processed: bool
    traveler_id: str | None
    score: float | None
    runner_up_score: float | None
    model: str
    gallery_size: int
    policy_version: str


class CaptureService:
    def __init__(
        self,
        store: Store,
        engine: FaceAnalyser,
        flights: FlightService,
        galleries: GalleryService,
        rule: IdentificationRule,
        clock: Clock,
    ) -> None:
        self._store = store
        self._engine = engine
        self._flights = flights
        self._galleries = galleries
        self._rule = rule
        self._clock = clock

    def process(
        self, principal: Principal, flight_id: str, photo: bytes, gate: str, device: str
    ) -> CaptureOutcome:
        if not principal.can(Permission.CAPTURE_SUBMIT):
            raise PermissionDeniedError("this key may not submit captures")
        gate, device = _label(gate, "gate"), _label(device, "device")
        flight = self._flights.get(flight_id)
        if principal.role is Role.GATE and principal.carrier != flight.carrier:
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        gallery = self._galleries.gallery_for(flight)
        received_at = self._clock()
        capture_id = str(uuid.uuid4())

        def finish(
            decision: Decision,
            reasons: tuple[str, ...] = (),
            traveler_id: str | None = None,
            score: float | None = None,
            runner_up: float | None = None,
            already: bool = False,
        ) -> CaptureOutcome:
            self._store.add_capture(
                CaptureRecord(
                    id=capture_id,
                    flight_id=flight.id,
                    gate=gate,
                    device=device,
                    received_at=received_at,
                    decision=decision.value,
                    reason=",".join(reasons) or None,
                    score=score,
                    traveler_id=traveler_id,
                    model=gallery.model,
                )
            )
            return CaptureOutcome(
                capture_id,
                decision,
                reasons,
                already,
                traveler_id,
                score,
                runner_up,
                gallery.model,
                len(gallery),
                BASELINE_POLICY_VERSION,
            )

        try:
            analysis = self._engine.analyse(photo)
        except NoFaceError:
            return finish(Decision.RECAPTURE, ("no_face",))
        if not analysis.quality.acceptable:
            return finish(Decision.RECAPTURE, tuple(r.value for r in analysis.quality.reasons))
        if len(gallery) == 0:
            return finish(Decision.MANUAL, ("no_reference_photos",))

        scores = similarity_matrix(analysis.template.vector, gallery.matrix)[0]
        result = identify(scores, self._rule)
        if not result.matched or result.index is None:
            reason = result.reason.value if result.reason else "no_match"
            return finish(
                Decision.NO_MATCH, (reason,), score=result.score, runner_up=result.runner_up_score
            )
        traveler_id = gallery.traveler_ids[result.index]
        recorded = self._store.add_encounter(
            Encounter(
                id=str(uuid.uuid4()),
                flight_id=flight.id,
                traveler_id=traveler_id,
                direction=flight.direction,
                method=EncounterMethod.BIOMETRIC,
                gate=gate,
                device=device,
                occurred_at=received_at,
                score=result.score,
                model=gallery.model,
                policy_version=BASELINE_POLICY_VERSION,
                capture_id=capture_id,
            )
        )
        return finish(
            Decision.MATCH,
            () if recorded else ("already_processed",),
            traveler_id=traveler_id,
            score=result.score,
            runner_up=result.runner_up_score,
            already=not recorded,
        )


def _label(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > _MAX_LABEL or not text.isprintable():
        raise InvalidInputError(f"{what} must be 1 to {_MAX_LABEL} printable characters")
    return text
