"""A gate capture in, a decision out: the boarding queue's hot path."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from entryexit.biometrics import similarity_matrix
from entryexit.domain.access import Permission, Principal
from entryexit.domain.identification import identify
from entryexit.domain.model import (
    CitizenshipClass,
    Decision,
    EncounterMethod,
)
from entryexit.domain.policy import DataKind
from entryexit.errors import InvalidInputError, NoFaceError, PermissionDeniedError
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import CaptureRecord, Clock, EncounterHook, FaceAnalyser, Store
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.watchlist import WatchlistService

_MAX_LABEL = 64
logger = logging.getLogger(__name__)


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
    threshold: float | None = None


class CaptureService:
    def __init__(
        self,
        store: Store,
        engine: FaceAnalyser,
        flights: FlightService,
        galleries: GalleryService,
        thresholds: OperatingThresholds,
        clock: Clock,
        policies: PolicyService,
        watchlist: WatchlistService | None = None,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._watchlist = watchlist
        self._on_encounter = on_encounter
        self._policies = policies
        self._store = store
        self._engine = engine
        self._flights = flights
        self._galleries = galleries
        self._thresholds = thresholds
        self._clock = clock

    def process(
        self, principal: Principal, flight_id: str, photo: bytes, gate: str, device: str
    ) -> CaptureOutcome:
        if not principal.can(Permission.CAPTURE_SUBMIT):
            raise PermissionDeniedError("this key may not submit captures")
        gate, device = _label(gate, "gate"), _label(device, "device")
        flight = self._flights.get(flight_id)
        if not principal.serves(flight.carrier):
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        gallery = self._galleries.gallery_for(flight)
        received_at = self._clock()
        capture_id = str(uuid.uuid4())
        policy = self._policies.in_force(received_at)
        rule = self._thresholds.identification_rule(policy.matching)

        def finish(
            decision: Decision,
            reasons: tuple[str, ...] = (),
            traveler_id: str | None = None,
            score: float | None = None,
            runner_up: float | None = None,
            already: bool = False,
            citizenship: CitizenshipClass | None = None,
            keep_image: bool = False,
        ) -> CaptureOutcome:
            # Records of a capture whose traveler is unknown get the shortest retention.
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
                    policy_version=policy.version,
                    expires_at=received_at
                    + policy.retention(DataKind.CAPTURE_RECORDS, citizenship),
                    image=photo if keep_image else None,
                    image_expires_at=received_at
                    + policy.retention(DataKind.CAPTURE_IMAGES, citizenship),
                )
            )
            logger.debug(
                "capture %s on flight %s: %s %s", capture_id, flight.id, decision.value, reasons
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
                policy.version,
                rule.threshold,
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
        result = identify(scores, rule)
        matched_id = (
            gallery.traveler_ids[result.index]
            if result.matched and result.index is not None
            else None
        )
        if self._watchlist is not None:
            hit = self._watchlist.screen_capture(
                flight, capture_id, analysis.template.vector, matched_id
            )
            if matched_id is not None and (hit or self._watchlist.has_open_alert(matched_id)):
                # An officer decides; the gate learns only that it is an officer's case.
                return finish(
                    Decision.MANUAL,
                    ("officer_review",),
                    traveler_id=matched_id,
                    score=result.score,
                    runner_up=result.runner_up_score,
                    keep_image=True,
                )
        if not result.matched or result.index is None:
            reason = result.reason.value if result.reason else "no_match"
            # The officer doing the document check sees this photo beside the candidates,
            # so it is kept (sealed) until the policy's capture-image retention ends.
            return finish(
                Decision.NO_MATCH,
                (reason,),
                score=result.score,
                runner_up=result.runner_up_score,
                keep_image=True,
            )
        traveler_id = gallery.traveler_ids[result.index]
        profile = self._store.traveler_profile(traveler_id)
        citizenship = profile.citizenship_class
        encounter = new_encounter(
            flight,
            traveler_id,
            EncounterMethod.BIOMETRIC,
            gate=gate,
            device=device,
            at=received_at,
            policy=policy,
            citizenship=citizenship,
            score=result.score,
            model=gallery.model,
            capture_id=capture_id,
        )
        recorded = self._store.add_encounter(encounter)
        if recorded and self._on_encounter is not None:
            self._on_encounter(encounter, flight, analysis.template.vector)
        return finish(
            Decision.MATCH,
            () if recorded else ("already_processed",),
            traveler_id=traveler_id,
            score=result.score,
            runner_up=result.runner_up_score,
            already=not recorded,
            citizenship=citizenship,
        )


def _label(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > _MAX_LABEL or not text.isprintable():
        raise InvalidInputError(f"{what} must be 1 to {_MAX_LABEL} printable characters")
    return text
