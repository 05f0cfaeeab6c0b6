"""1:1 verification of a live capture against a document photo: land and sea crossings
without a manifest, and the fallback when a traveler has no reference photo."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from entryexit.biometrics import compare_templates
from entryexit.biometrics.decode import ALLOWED_FORMATS, CHIP_FORMATS
from entryexit.documents.emrtd import CheckResult, parse_dg1, parse_dg2, verify_security_object
from entryexit.documents.mrz import Mrz
from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import Decision, DocumentKey, EncounterMethod
from entryexit.errors import (
    BiometricError,
    InvalidInputError,
    NoFaceError,
    PermissionDeniedError,
)
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, EncounterHook, FaceAnalyser, Store
from entryexit.services.thresholds import OperatingThresholds


@dataclass(frozen=True, slots=True)
class ChipEvidence:
    """What an e-passport reader delivered: DG2 (the face), and where available DG1 (the MRZ)
    and EF.SOD (the signed hashes)."""

    dg2: bytes
    dg1: bytes | None = None
    sod: bytes | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    decision: Decision
    reasons: tuple[str, ...]
    similarity: float | None
    threshold: float
    model: str
    policy_version: str
    encounter_id: str | None
    chip_checks: dict[str, str] = field(default_factory=dict)


class VerificationService:
    def __init__(
        self,
        store: Store,
        engine: FaceAnalyser,
        flights: FlightService,
        policies: PolicyService,
        clock: Clock,
        thresholds: OperatingThresholds,
        trusted_cscas: list[x509.Certificate] | None = None,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._on_encounter = on_encounter
        self._cscas = list(trusted_cscas or [])
        self._store = store
        self._engine = engine
        self._flights = flights
        self._policies = policies
        self._clock = clock
        self._thresholds = thresholds

    def verify(
        self,
        actor: Principal,
        capture: bytes,
        reference: bytes | None,
        document: DocumentKey | None = None,
        flight_id: str | None = None,
        gate: str = "",
        device: str = "",
        chip: ChipEvidence | None = None,
        printed_mrz: Mrz | None = None,
    ) -> Verification:
        if not actor.can(Permission.VERIFY):
            raise PermissionDeniedError("this key may not run verifications")
        if (reference is None) == (chip is None):
            raise InvalidInputError("send either a document photo or the chip's DG2")
        now = self._clock()
        policy = self._policies.in_force(now)
        threshold = self._thresholds.verification_threshold(policy.matching)
        flight = self._flights.get(flight_id) if flight_id else None
        if flight is not None and not actor.serves(flight.carrier):
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        checks: dict[str, str] = {}
        formats = ALLOWED_FORMATS
        if chip is not None:
            reference, document, checks = self._read_chip(chip, printed_mrz, document, now)
            formats = CHIP_FORMATS
        assert reference is not None  # one of the two, checked above
        failed = sorted(
            name for name, result in checks.items() if result == CheckResult.FAILED.value
        )
        if failed:
            # A photo whose integrity is in doubt is not compared: an officer decides.
            return Verification(
                Decision.MANUAL,
                tuple(f"chip_check_failed:{name}" for name in failed),
                None,
                threshold,
                self._engine.model,
                policy.version,
                None,
                checks,
            )
        try:
            reference_face = self._engine.analyse(reference, formats)
        except BiometricError as exc:
            label = "chip photo (DG2)" if chip is not None else "document photo"
            raise type(exc)(f"{label}: {exc.message}") from exc

        def outcome(
            decision: Decision, reasons: tuple[str, ...], score: float | None
        ) -> Verification:
            return Verification(
                decision, reasons, score, threshold, self._engine.model, policy.version, None
            )

        try:
            live = self._engine.analyse(capture)
        except NoFaceError:
            return outcome(Decision.RECAPTURE, ("no_face",), None)
        if not live.quality.acceptable:
            return outcome(Decision.RECAPTURE, tuple(r.value for r in live.quality.reasons), None)
        score = float(compare_templates([live.template], [reference_face.template])[0, 0])
        if score < threshold:
            return outcome(Decision.NO_MATCH, ("below_threshold",), score)
        encounter_id = None
        if flight is not None and document is not None:
            traveler_id = self._store.traveler_for_document(document)
            if traveler_id is not None:
                citizenship = self._store.traveler_profile(traveler_id).citizenship_class
                encounter = new_encounter(
                    flight,
                    traveler_id,
                    EncounterMethod.BIOMETRIC,
                    gate=gate or "verification",
                    device=device or "verification",
                    at=now,
                    policy=policy,
                    citizenship=citizenship,
                    score=score,
                    model=self._engine.model,
                )
                if self._store.add_encounter(encounter):
                    encounter_id = encounter.id
                    if self._on_encounter is not None:
                        self._on_encounter(encounter, flight, live.template.vector)
        return Verification(
            Decision.MATCH,
            (),
            score,
            threshold,
            self._engine.model,
            policy.version,
            encounter_id,
            checks,
        )

    def _read_chip(
        self,
        chip: ChipEvidence,
        printed_mrz: Mrz | None,
        document: DocumentKey | None,
        now: datetime,
    ) -> tuple[bytes, DocumentKey | None, dict[str, str]]:
        face = parse_dg2(chip.dg2)
        checks: dict[str, CheckResult] = {}
        groups = {2: chip.dg2}
        if chip.dg1 is not None:
            chip_mrz = parse_dg1(chip.dg1, now.date())
            groups[1] = chip.dg1
            document = document or DocumentKey(chip_mrz.issuing_state, chip_mrz.document_number)
            if printed_mrz is not None:
                agrees = chip_mrz.as_dict() == printed_mrz.as_dict()
                checks["dg1_matches_printed_mrz"] = (
                    CheckResult.PASSED if agrees else CheckResult.FAILED
                )
        if chip.sod is None:
            checks["security_object"] = CheckResult.NOT_CHECKED
        else:
            checks.update(verify_security_object(chip.sod, groups, self._cscas).checks)
        return face.data, document, {name: result.value for name, result in checks.items()}
