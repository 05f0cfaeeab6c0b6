"""1:1 verification of a live capture against a document photo: land and sea crossings
without a manifest, and the fallback when a traveler has no reference photo."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from entryexit.biometrics import compare_templates
from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import Decision, DocumentKey, Encounter, EncounterMethod
from entryexit.domain.policy import DataKind
from entryexit.errors import BiometricError, NoFaceError, PermissionDeniedError
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, FaceAnalyser, Store


@dataclass(frozen=True, slots=True)
class Verification:
    decision: Decision
    reasons: tuple[str, ...]
    similarity: float | None
    threshold: float
    model: str
    policy_version: str
    encounter_id: str | None


class VerificationService:
    def __init__(
        self,
        store: Store,
        engine: FaceAnalyser,
        flights: FlightService,
        policies: PolicyService,
        clock: Clock,
        threshold: float,
    ) -> None:
        self._store = store
        self._engine = engine
        self._flights = flights
        self._policies = policies
        self._clock = clock
        self._threshold = threshold

    def verify(
        self,
        actor: Principal,
        capture: bytes,
        reference: bytes,
        document: DocumentKey | None = None,
        flight_id: str | None = None,
        gate: str = "",
        device: str = "",
    ) -> Verification:
        if not actor.can(Permission.VERIFY):
            raise PermissionDeniedError("this key may not run verifications")
        now = self._clock()
        policy = self._policies.in_force(now)
        flight = self._flights.get(flight_id) if flight_id else None
        if flight is not None and actor.carrier is not None and actor.carrier != flight.carrier:
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        try:
            reference_face = self._engine.analyse(reference)
        except BiometricError as exc:
            raise type(exc)(f"document photo: {exc.message}") from exc

        def outcome(
            decision: Decision, reasons: tuple[str, ...], score: float | None
        ) -> Verification:
            return Verification(
                decision, reasons, score, self._threshold, self._engine.model, policy.version, None
            )

        try:
            live = self._engine.analyse(capture)
        except NoFaceError:
            return outcome(Decision.RECAPTURE, ("no_face",), None)
        if not live.quality.acceptable:
            return outcome(Decision.RECAPTURE, tuple(r.value for r in live.quality.reasons), None)
        score = float(compare_templates([live.template], [reference_face.template])[0, 0])
        if score < self._threshold:
            return outcome(Decision.NO_MATCH, ("below_threshold",), score)
        encounter_id = None
        if flight is not None and document is not None:
            traveler_id = self._store.traveler_for_document(document)
            if traveler_id is not None:
                citizenship = self._store.traveler_profile(traveler_id).citizenship_class
                encounter = Encounter(
                    id=str(uuid.uuid4()),
                    flight_id=flight.id,
                    traveler_id=traveler_id,
                    direction=flight.direction,
                    method=EncounterMethod.BIOMETRIC,
                    gate=gate or "verification",
                    device=device or "verification",
                    occurred_at=now,
                    score=score,
                    model=self._engine.model,
                    policy_version=policy.version,
                    capture_id=None,
                    expires_at=now + policy.retention(DataKind.ENCOUNTER_RECORDS, citizenship),
                )
                if self._store.add_encounter(encounter):
                    encounter_id = encounter.id
        return Verification(
            Decision.MATCH,
            (),
            score,
            self._threshold,
            self._engine.model,
            policy.version,
            encounter_id,
        )
