"""The console's use cases: the flights board, a flight's live state, and the exceptions
queue where an officer resolves what the gate could not, with the evidence side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

from entryexit.biometrics import similarity_matrix
from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import DocumentKey, EncounterMethod, Flight
from entryexit.errors import (
    BiometricError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    CaptureSummary,
    Clock,
    ConsoleStore,
    EncounterHook,
    FaceAnalyser,
    FlightCounts,
    ManifestStatus,
    Store,
)
from entryexit.services.privacy import OptOutService

CANDIDATES_SHOWN = 3


class FlightStatus(StrEnum):
    SCHEDULED = "scheduled"
    MANIFEST_RECEIVED = "manifest received"
    GALLERY_STAGED = "gallery staged"
    BOARDING = "boarding"
    CLOSED = "closed"


class Resolution(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True, slots=True)
class BoardRow:
    flight: Flight
    counts: FlightCounts
    status: FlightStatus


@dataclass(frozen=True, slots=True)
class Candidate:
    traveler: ManifestStatus
    score: float


@dataclass(frozen=True, slots=True)
class Case:
    capture: CaptureSummary
    flight: Flight
    candidates: tuple[Candidate, ...]


def flight_status(flight: Flight, counts: FlightCounts, now: datetime) -> FlightStatus:
    if now > flight.scheduled_departure:
        return FlightStatus.CLOSED
    if counts.matched + counts.manual + counts.opted_out + counts.no_matches > 0:
        return FlightStatus.BOARDING
    if flight.staged:
        return FlightStatus.GALLERY_STAGED
    if counts.travelers:
        return FlightStatus.MANIFEST_RECEIVED
    return FlightStatus.SCHEDULED


class ConsoleService:
    def __init__(
        self,
        store: Store,
        console_store: ConsoleStore,
        engine: FaceAnalyser,
        clock: Clock,
        flights: FlightService,
        galleries: GalleryService,
        policies: PolicyService,
        opt_outs: OptOutService,
        audit: AuditTrail,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._on_encounter = on_encounter
        self._store = store
        self._console = console_store
        self._engine = engine
        self._clock = clock
        self._flights = flights
        self._galleries = galleries
        self._policies = policies
        self._opt_outs = opt_outs
        self._audit = audit

    # --- board and flights -------------------------------------------------------------
    def board(self, actor: Principal, day_from: datetime, hours: int = 36) -> list[BoardRow]:
        actor.require(Permission.FLIGHT_READ)
        now = self._clock()
        rows = self._console.flight_board(day_from, day_from + timedelta(hours=hours))
        return [BoardRow(f, c, flight_status(f, c, now)) for f, c in rows]

    def flight(self, actor: Principal, flight_id: str) -> tuple[Flight, list[ManifestStatus]]:
        actor.require(Permission.FLIGHT_READ)
        flight = self._flights.get(flight_id)
        return flight, self._store.manifest_status(flight_id, self._engine.model)

    def feed(self, actor: Principal, flight_id: str, limit: int = 25) -> list[CaptureSummary]:
        actor.require(Permission.ENCOUNTER_READ)
        self._flights.get(flight_id)
        return self._console.recent_captures(flight_id, limit)

    def stage(self, actor: Principal, flight_id: str) -> None:
        actor.require(Permission.GALLERY_STAGE)
        report = self._galleries.stage(flight_id)
        self._audit.record(
            "console gallery stage",
            "ok",
            actor,
            "flight",
            flight_id,
            {"with_photo": report.with_photo, "travelers": report.travelers},
        )

    def record_opt_out(self, actor: Principal, flight_id: str, traveler_id: str) -> str:
        """A traveler at the desk declines biometrics: recorded as the gate would."""
        actor.require(Permission.OPT_OUT_RECORD)
        status = self._manifest_entry(flight_id, traveler_id)
        return self._opt_outs.record(actor, flight_id, status.document, "console").encounter_id

    # --- the exceptions queue ----------------------------------------------------------
    def open_cases(self, actor: Principal, limit: int = 50) -> list[CaptureSummary]:
        actor.require(Permission.CASE_RESOLVE)
        return self._console.recent_captures(None, limit, open_only=True)

    def case(self, actor: Principal, capture_id: str) -> Case:
        """A capture with the flight's closest travelers, re-scored from its kept image."""
        actor.require(Permission.CASE_RESOLVE)
        capture = self._capture(capture_id)
        flight = self._flights.get(capture.flight_id)
        statuses = {s.traveler_id: s for s in self._store.manifest_status(flight.id, "")}
        candidates: list[Candidate] = []
        image = self._console.capture_image(capture_id) if capture.has_image else None
        gallery = self._galleries.gallery_for(flight)
        if image is not None and len(gallery):
            try:
                template = self._engine.analyse(image).template.vector
            except BiometricError:
                template = None
            if template is not None:
                scores = similarity_matrix(template, gallery.matrix)[0]
                for index in np.argsort(-scores)[:CANDIDATES_SHOWN]:
                    traveler_id = gallery.traveler_ids[int(index)]
                    if traveler_id in statuses:
                        candidates.append(Candidate(statuses[traveler_id], float(scores[index])))
        self._audit.record("console case view", "ok", actor, "capture", capture_id, {})
        return Case(capture, flight, tuple(candidates))

    def capture_image(self, actor: Principal, capture_id: str) -> bytes:
        actor.require(Permission.IMAGE_VIEW)
        image = self._console.capture_image(capture_id)
        if image is None:
            raise NotFoundError("no image is kept for this capture (matched, or purged)")
        self._audit.record("console image view", "ok", actor, "capture", capture_id, {})
        return image

    def reference_photo(self, actor: Principal, traveler_id: str) -> bytes:
        actor.require(Permission.IMAGE_VIEW)
        photo = self._console.reference_photo(traveler_id)
        if photo is None:
            raise NotFoundError("no enrolled photo is kept for this traveler")
        self._audit.record("console image view", "ok", actor, "traveler", traveler_id, {})
        return photo

    def resolve(
        self,
        actor: Principal,
        capture_id: str,
        resolution: Resolution,
        traveler_id: str | None = None,
    ) -> str | None:
        """Close a case. ``confirmed``: the officer checked the document of ``traveler_id``
        (a manual encounter is recorded); ``opted_out``: that traveler declines biometrics
        (an opt-out encounter, refused where policy requires capture); ``rejected``: the
        person is not cleared here. Returns the encounter id, if one was recorded."""
        actor.require(Permission.CASE_RESOLVE)
        capture = self._capture(capture_id)
        if capture.resolution is not None:
            raise ConflictError(f"this case was already resolved ({capture.resolution})")
        flight = self._flights.get(capture.flight_id)
        if not actor.serves(flight.carrier):
            raise PermissionDeniedError("this account does not serve this flight's carrier")
        encounter_id = None
        if resolution is not Resolution.REJECTED:
            if traveler_id is None:
                raise InvalidInputError("choose the traveler whose document was checked")
            status = self._manifest_entry(flight.id, traveler_id)
            if resolution is Resolution.CONFIRMED:
                encounter_id = self._record_manual(actor, flight, traveler_id, capture_id)
            else:
                encounter_id = self._opt_out(actor, flight, status.document)
        if not self._console.resolve_capture(
            capture_id, resolution.value, actor.key_id, self._clock()
        ):
            raise ConflictError("another officer resolved this case first")
        self._audit.record(
            "console case resolve",
            resolution.value,
            actor,
            "capture",
            capture_id,
            {"encounter": encounter_id or ""},
        )
        return encounter_id

    def _capture(self, capture_id: str) -> CaptureSummary:
        capture = self._console.get_capture(capture_id)
        if capture is None:
            raise NotFoundError(f"capture {capture_id} does not exist")
        return capture

    def _manifest_entry(self, flight_id: str, traveler_id: str) -> ManifestStatus:
        for status in self._store.manifest_status(flight_id, ""):
            if status.traveler_id == traveler_id:
                return status
        raise NotFoundError("that traveler is not on this flight's manifest")

    def _record_manual(
        self, actor: Principal, flight: Flight, traveler_id: str, capture_id: str
    ) -> str:
        now = self._clock()
        policy = self._policies.in_force(now)
        citizenship = self._store.traveler_profile(traveler_id).citizenship_class
        encounter = new_encounter(
            flight,
            traveler_id,
            EncounterMethod.MANUAL_DOCUMENT_CHECK,
            gate="console",
            device=f"officer:{actor.key_id}",
            at=now,
            policy=policy,
            citizenship=citizenship,
            capture_id=capture_id,
        )
        if not self._store.add_encounter(encounter):
            raise ConflictError("this traveler has already been processed on this flight")
        if self._on_encounter is not None:
            self._on_encounter(encounter, flight, None)
        return encounter.id

    def _opt_out(self, actor: Principal, flight: Flight, document: DocumentKey) -> str:
        return self._opt_outs.record(actor, flight.id, document, "console").encounter_id
