"""1:1 verification of a live capture against a document photo: land and sea crossings
without a manifest, and the fallback when a traveler has no reference photo."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from cryptography import x509
from numpy.typing import NDArray

from entryexit.biometrics import compare_templates
from entryexit.biometrics.decode import ALLOWED_FORMATS, CHIP_FORMATS, ImageKind
from entryexit.documents.emrtd import CheckResult, parse_dg1, parse_dg2, verify_security_object
from entryexit.documents.mrz import Mrz
from entryexit.domain.access import Permission, Principal, Role
from entryexit.domain.model import Decision, DocumentKey, EncounterMethod, Flight
from entryexit.domain.policy import Policy
from entryexit.errors import (
    BiometricError,
    InvalidInputError,
    NoFaceError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.callers import for_caller
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, FaceAnalyser
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.unit_of_work import (
    EncounterHook,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)

# The reason a chip verification goes to an officer when no CSCA store vouches for the signer.
CHAIN_NOT_CHECKED = "chip_chain_not_checked"


@dataclass(frozen=True, slots=True)
class ChipEvidence:
    """What an e-passport reader delivered: DG2 (the face), and where available DG1 (the MRZ)
    and EF.SOD (the signed hashes)."""

    dg2: bytes
    dg1: bytes | None = None
    sod: bytes | None = None


@dataclass(frozen=True, slots=True)
class VerificationDecision:
    """All a partner's gate learns of a 1:1 verification."""

    decision: Decision
    reasons: tuple[str, ...]


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

    def seen_by(self, principal: Principal) -> Verification | VerificationDecision:
        """The one place that decides what a caller sees (partners: the decision only)."""
        if principal.can(Permission.DECISION_DETAILS):
            return self
        return VerificationDecision(self.decision, self.reasons)


@dataclass(frozen=True, slots=True)
class _Compared:
    """A comparison's result with what recording it needs (``live`` only for a match)."""

    result: Verification
    live: NDArray[np.float32] | None
    document: DocumentKey | None
    flight: Flight | None
    policy: Policy
    at: datetime


class VerificationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engine: FaceAnalyser,
        flights: FlightService,
        policies: PolicyService,
        clock: Clock,
        thresholds: OperatingThresholds,
        audit: AuditTrail,
        trusted_cscas: list[x509.Certificate] | None = None,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._on_encounter = on_encounter
        self._cscas = list(trusted_cscas or [])
        self._uow = uow
        self._audit = audit
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
        """Compare (model work first), then one transaction records the encounter of a match
        on a flight and the audit event."""
        compared = self._compare(actor, capture, reference, document, flight_id, chip, printed_mrz)
        result = compared.result

        def record(uow: UnitOfWork) -> str | None:
            encounter_id = None
            if (
                compared.live is not None
                and compared.flight
                and compared.document
                and self._vouched(actor, result)
            ):
                encounter_id = self._record_encounter(
                    uow, compared, gate or "verification", device or "verification"
                )
            flight = compared.flight
            self._audit.record(
                uow,
                "verification",
                "ok",
                actor,
                "flight" if flight else None,
                flight.id if flight else None,
                {"decision": result.decision.value, "chip": "yes" if chip else "no"},
                policy_version=result.policy_version,
            )
            return encounter_id

        return replace(result, encounter_id=in_transaction(self._uow, record))

    @staticmethod
    def _vouched(actor: Principal, result: Verification) -> bool:
        """Whether a match may stand as the traveler's biometric encounter. A partner's gate
        must not vouch for an identity with evidence it supplied itself: its match counts
        only when the reference and the document both came from the chip (DG2 and DG1, their
        hashes in an EF.SOD whose signer a trusted CSCA vouches for). An officer's desk (who
        holds the document in hand) may use the document's photo."""
        if actor.can(Permission.DECISION_DETAILS):
            return True
        checks = result.chip_checks
        passed = CheckResult.PASSED.value
        return all(checks.get(name) == passed for name in ("csca_chain", "dg1_hash", "dg2_hash"))

    def _record_encounter(
        self, uow: UnitOfWork, compared: _Compared, gate: str, device: str
    ) -> str | None:
        assert compared.flight is not None
        assert compared.document is not None
        traveler_id = uow.travelers.traveler_for_document(compared.document)
        # Only a traveler this flight expects is recorded as boarding (or leaving) on it.
        if traveler_id is None or not uow.flights.has_traveler(compared.flight.id, traveler_id):
            return None
        encounter = new_encounter(
            compared.flight,
            traveler_id,
            EncounterMethod.BIOMETRIC,
            gate=gate,
            device=device,
            at=compared.at,
            policy=compared.policy,
            citizenship=uow.travelers.citizenship_class(traveler_id, compared.flight),
            score=compared.result.similarity,
            model=self._engine.model,
        )
        if not uow.captures.add_encounter(encounter):
            return None
        if self._on_encounter is not None:
            self._on_encounter(uow, encounter, compared.flight, compared.live)
        return encounter.id

    def _compare(
        self,
        actor: Principal,
        capture: bytes,
        reference: bytes | None,
        document: DocumentKey | None,
        flight_id: str | None,
        chip: ChipEvidence | None,
        printed_mrz: Mrz | None,
    ) -> _Compared:
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
        # A partner's gate sends a scan of the data page (DOCUMENT_PHOTO: 4 MP at most, where
        # a reference photo may be 16 MP); an officer's desk may send any reference photo.
        formats, kind = (
            ALLOWED_FORMATS,
            (ImageKind.DOCUMENT_PHOTO if actor.role is Role.GATE else ImageKind.REFERENCE_PHOTO),
        )
        if chip is not None:
            reference, document, checks = self._read_chip(chip, printed_mrz, document, now)
            formats, kind = CHIP_FORMATS, ImageKind.CHIP_DG2
        assert reference is not None  # one of the two, checked above

        def compared(result: Verification, live: NDArray[np.float32] | None = None) -> _Compared:
            return _Compared(result, live, document, flight, policy, now)

        failed = sorted(
            name for name, result in checks.items() if result == CheckResult.FAILED.value
        )
        doubts = tuple(f"chip_check_failed:{name}" for name in failed)
        if checks.get("csca_chain") == CheckResult.NOT_CHECKED.value:
            # A signature that verifies under a signer nobody vouched for proves nothing
            # (anyone can sign their own DG2): without a CSCA store, an officer decides.
            doubts += (CHAIN_NOT_CHECKED,)
        if doubts:
            # A photo whose integrity is in doubt is not compared: an officer decides.
            return compared(
                Verification(
                    Decision.MANUAL,
                    doubts,
                    None,
                    threshold,
                    self._engine.model,
                    policy.version,
                    None,
                    checks,
                )
            )
        try:
            with for_caller(actor):
                reference_face = self._engine.analyse(reference, formats, kind)
        except BiometricError as exc:
            label = "chip photo (DG2)" if chip is not None else "document photo"
            raise type(exc)(f"{label}: {exc.message}") from exc

        def outcome(decision: Decision, reasons: tuple[str, ...], score: float | None) -> _Compared:
            return compared(
                Verification(
                    decision,
                    reasons,
                    score,
                    threshold,
                    self._engine.model,
                    policy.version,
                    None,
                    checks,
                )
            )

        try:
            with for_caller(actor):
                live = self._engine.analyse(capture)
        except NoFaceError:
            return outcome(Decision.RECAPTURE, ("no_face",), None)
        if not live.quality.acceptable:
            return outcome(Decision.RECAPTURE, tuple(r.value for r in live.quality.reasons), None)
        score = float(compare_templates([live.template], [reference_face.template])[0, 0])
        if score < threshold:
            return outcome(Decision.NO_MATCH, ("below_threshold",), score)
        return compared(
            Verification(
                Decision.MATCH,
                (),
                score,
                threshold,
                self._engine.model,
                policy.version,
                None,
                checks,
            ),
            live.template.vector,
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
            on_chip = DocumentKey(chip_mrz.issuing_state, chip_mrz.document_number)
            if document is not None and printed_mrz is None:
                # The chip names its own document: one named beside it must be the same, or
                # an officer looks (a chip must not vouch for somebody else's document). A
                # printed MRZ beside the chip is held to DG1 just below.
                checks["document_matches_chip"] = (
                    CheckResult.PASSED if document == on_chip else CheckResult.FAILED
                )
            document = on_chip
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
