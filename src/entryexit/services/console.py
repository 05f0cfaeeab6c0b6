"""The console's use cases: the flights board, a flight's live state, and the exceptions
queue where an officer resolves what the gate could not, with the evidence side by side."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

from entryexit.biometrics import similarity_matrix
from entryexit.documents.manifest import home_state_citizen
from entryexit.domain.access import Permission, Principal
from entryexit.domain.fingerprints import FingerprintRules
from entryexit.domain.model import CitizenshipClass, EncounterMethod, Flight
from entryexit.domain.policy import age_on
from entryexit.errors import (
    BiometricError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.callers import for_caller
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    CaptureSummary,
    Clock,
    FaceAnalyser,
    FlightCounts,
    ManifestStatus,
)
from entryexit.services.privacy import OptOutService
from entryexit.services.unit_of_work import (
    BoardQueries,
    EncounterHook,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)

CANDIDATES_SHOWN = 3
# How many cases' candidate sets a process keeps (a miss ranks the case again).
CANDIDATE_SETS_KEPT = 4096
# The gate decisions that open a case in the queue.
OPEN_DECISIONS = frozenset({"no_match", "manual"})


def _citizenship(value: str) -> CitizenshipClass | None:
    try:
        return CitizenshipClass(value)
    except ValueError:
        return None


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
    # Whether the officer may confirm this person by fingerprints (see prints_possible).
    prints_possible: bool = False
    # The capture's face score against every staged traveler of the flight (by traveler id),
    # for the evidence shown beside a fingerprint check.
    face_scores: Mapping[str, float] = field(default_factory=dict)


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
        uow: UnitOfWorkFactory,
        boards: BoardQueries,
        engine: FaceAnalyser,
        clock: Clock,
        galleries: GalleryService,
        policies: PolicyService,
        opt_outs: OptOutService,
        audit: AuditTrail,
        on_encounter: EncounterHook | None = None,
        home_state: str = "UTO",
    ) -> None:
        self._on_encounter = on_encounter
        self._home_state = home_state
        self._uow = uow
        self._boards = boards
        self._engine = engine
        self._clock = clock
        self._galleries = galleries
        self._policies = policies
        self._opt_outs = opt_outs
        self._audit = audit
        # The candidates each case page showed (capture id -> traveler ids), most recent last:
        # an enrolled photo is opened for a case only for one of them.
        self._shown: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._shown_lock = threading.Lock()

    # --- board and flights -------------------------------------------------------------
    def board(self, actor: Principal, day_from: datetime, hours: int = 36) -> list[BoardRow]:
        actor.require(Permission.FLIGHT_READ)
        now = self._clock()
        rows = self._boards.flight_board(day_from, day_from + timedelta(hours=hours))
        return [BoardRow(f, c, flight_status(f, c, now)) for f, c in rows]

    def flight(self, actor: Principal, flight_id: str) -> tuple[Flight, list[ManifestStatus]]:
        actor.require(Permission.FLIGHT_READ)
        with self._uow(read_only=True) as uow:
            flight = FlightService.get_in(uow, flight_id)
            return flight, uow.flights.manifest_status(flight_id, self._engine.model)

    def feed(self, actor: Principal, flight_id: str, limit: int = 25) -> list[CaptureSummary]:
        actor.require(Permission.ENCOUNTER_READ)
        with self._uow(read_only=True) as uow:
            FlightService.get_in(uow, flight_id)
        return self._boards.recent_captures(flight_id, limit)

    def stage(self, actor: Principal, flight_id: str) -> None:
        actor.require(Permission.GALLERY_STAGE)
        self._galleries.stage(flight_id, actor)

    def record_opt_out(self, actor: Principal, flight_id: str, traveler_id: str) -> str:
        """A traveler at the desk declines biometrics: recorded as the gate would."""
        actor.require(Permission.OPT_OUT_RECORD)
        with self._uow(read_only=True) as uow:
            status = self._manifest_entry(uow, flight_id, traveler_id)
        return self._opt_outs.record(actor, flight_id, status.document, "console").encounter_id

    # --- the exceptions queue ----------------------------------------------------------
    def open_cases(self, actor: Principal, limit: int = 50) -> list[CaptureSummary]:
        actor.require(Permission.CASE_RESOLVE)
        return self._boards.recent_captures(None, limit, open_only=True)

    def prints_possible(self, actor: Principal, cases: Sequence[CaptureSummary]) -> frozenset[str]:
        """The cases (capture ids) an officer may settle with fingerprints: a manual case of a
        traveler the policy in force takes prints from and who has prints enrolled, or a
        no-match on a flight with such a traveler still to board. Only the console's officers
        learn it: a gate's answer is the same either way (a gate asking for prints would
        reveal who is not a citizen)."""
        actor.require(Permission.CASE_RESOLVE)
        if not actor.can(Permission.FINGERPRINT_VERIFY):
            return frozenset()
        now = self._clock()
        rules = self._policies.in_force(now).fingerprints
        marked: set[str] = set()
        takers: dict[str, tuple[frozenset[str], bool]] = {}
        with self._uow(read_only=True) as uow:
            for case in cases:
                if case.decision not in OPEN_DECISIONS or case.resolution is not None:
                    continue
                if case.flight_id not in takers:
                    takers[case.flight_id] = self._print_takers(
                        uow, case.flight_id, rules, now, self._home_state
                    )
                enrolled, any_waiting = takers[case.flight_id]
                if (case.traveler_id is not None and case.traveler_id in enrolled) or (
                    case.traveler_id is None and any_waiting
                ):
                    marked.add(case.id)
        return frozenset(marked)

    @staticmethod
    def _print_takers(
        uow: UnitOfWork, flight_id: str, rules: FingerprintRules, now: datetime, home_state: str
    ) -> tuple[frozenset[str], bool]:
        """The flight's travelers with enrolled prints whom the policy takes prints from, and
        whether one of them has not been processed yet. A home-state national or passport
        holder is a citizen whatever class the manifest stored (prints enrolled before the
        manifest's class was checked are not offered)."""
        enrolled = uow.fingerprints.travelers_enrolled(flight_id)
        if not enrolled:
            return frozenset(), False
        takers = [
            status
            for status in uow.flights.manifest_status(flight_id, "")
            if status.traveler_id in enrolled
            and not home_state_citizen(
                status.nationality,
                status.document_type,
                status.document.issuing_state,
                home_state,
            )
            and rules.takes_prints(
                _citizenship(status.citizenship_class),
                age_on(status.date_of_birth, now.date()) if status.date_of_birth else None,
            )
        ]
        return (
            frozenset(s.traveler_id for s in takers),
            any(not s.processed for s in takers),
        )

    def case(self, actor: Principal, capture_id: str) -> Case:
        """A capture with the flight's closest travelers, re-scored from its kept image."""
        actor.require(Permission.CASE_RESOLVE)
        with self._uow(read_only=True) as uow:
            capture = self._capture(uow, capture_id)
            flight = FlightService.get_in(uow, capture.flight_id)
            statuses = {s.traveler_id: s for s in uow.flights.manifest_status(flight.id, "")}
            image = uow.cases.capture_image(capture_id) if capture.has_image else None
        ranked, face_scores = self._ranked(actor, flight, image, statuses)
        candidates = [Candidate(statuses[t], score) for t, score in ranked]
        self._remember_candidates(capture_id, ranked)
        self._audit.record_alone("console case view", "ok", actor, "capture", capture_id)
        prints = capture.id in self.prints_possible(actor, [capture])
        return Case(capture, flight, tuple(candidates), prints, face_scores)

    def _ranked(
        self,
        actor: Principal,
        flight: Flight,
        image: bytes | None,
        on_manifest: Mapping[str, object],
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """The case's candidates (the ``CANDIDATES_SHOWN`` closest travelers of the flight's
        staged gallery to the kept image, with their scores) and the face score of every
        staged traveler on the manifest. The model runs in ``actor``'s share of the decode
        slots."""
        ranked: list[tuple[str, float]] = []
        face_scores: dict[str, float] = {}
        # Past the gallery's deletion time the case is still shown, without candidates.
        gallery = self._galleries.gallery_for(flight) if flight.staged else None
        if image is not None and gallery is not None and len(gallery):
            try:
                with for_caller(actor):
                    template = self._engine.analyse(image).template.vector
            except BiometricError:
                template = None
            if template is not None:
                scores = similarity_matrix(template, gallery.matrix)[0]
                face_scores = {
                    traveler: float(score)
                    for traveler, score in zip(gallery.traveler_ids, scores, strict=True)
                    if traveler in on_manifest
                }
                for index in np.argsort(-scores)[:CANDIDATES_SHOWN]:
                    traveler_id = gallery.traveler_ids[int(index)]
                    if traveler_id in on_manifest:
                        ranked.append((traveler_id, float(scores[index])))
        return ranked, face_scores

    def _remember_candidates(self, capture_id: str, ranked: Sequence[tuple[str, float]]) -> None:
        with self._shown_lock:
            self._shown[capture_id] = frozenset(t for t, _ in ranked)
            self._shown.move_to_end(capture_id)
            while len(self._shown) > CANDIDATE_SETS_KEPT:
                self._shown.popitem(last=False)

    def _candidate_ids(
        self, actor: Principal, capture: CaptureSummary, flight: Flight
    ) -> frozenset[str]:
        """The travelers a case shows as candidates: as its page last showed them in this
        process, else ranked again (one face-model run: another process showed the page)."""
        with self._shown_lock:
            known = self._shown.get(capture.id)
        if known is not None:
            return known
        with self._uow(read_only=True) as uow:
            on_manifest = {s.traveler_id: s for s in uow.flights.manifest_status(flight.id, "")}
            image = uow.cases.capture_image(capture.id) if capture.has_image else None
        ranked, _ = self._ranked(actor, flight, image, on_manifest)
        self._remember_candidates(capture.id, ranked)
        return frozenset(t for t, _ in ranked)

    def capture_image(self, actor: Principal, capture_id: str) -> bytes:
        return self._view_image(
            actor,
            "capture",
            capture_id,
            lambda uow: uow.cases.capture_image(capture_id),
            "no image is kept for this capture (matched, or purged)",
        )

    def reference_photo(
        self,
        actor: Principal,
        traveler_id: str,
        case: str | None = None,
        alert: str | None = None,
    ) -> bytes:
        """A traveler's enrolled photo, shown only in a context that names the traveler: an
        open case (a capture the gate could not decide) the officer may work, that shows the
        traveler as a candidate, or a watchlist alert about the traveler. An officer cannot
        page through every traveler's photo by id (least privilege; the view is audited with
        its context)."""
        actor.require(Permission.IMAGE_VIEW)
        if (case is None) == (alert is None):
            raise PermissionDeniedError(
                "an enrolled photo is shown only for a case or an alert that names the traveler"
            )
        if case is not None:
            actor.require(Permission.CASE_RESOLVE)
            with self._uow(read_only=True) as uow:
                capture = self._capture(uow, case)
                flight = FlightService.get_in(uow, capture.flight_id)
            self._check_case_photo(capture)
            if traveler_id not in self._candidate_ids(actor, capture, flight):
                raise PermissionDeniedError("this traveler is not a candidate of this case")

        def read(uow: UnitOfWork) -> bytes | None:
            if case is not None:
                # Again in the viewing transaction: resolved meanwhile, no photo.
                self._check_case_photo(self._capture(uow, case))
            else:
                actor.require(Permission.ALERT_READ)
                found = uow.watchlist.get_alert(str(alert))
                if found is None or found.traveler_id != traveler_id:
                    raise PermissionDeniedError("this alert does not name this traveler")
            return uow.travelers.reference_photo(traveler_id)

        return self._view_image(
            actor,
            "traveler",
            traveler_id,
            read,
            "no enrolled photo is kept for this traveler",
            {"case": case} if case is not None else {"alert": str(alert)},
        )

    @staticmethod
    def _check_case_photo(capture: CaptureSummary) -> None:
        """A case shows its candidates' photos while it is open, to an officer who may work
        it. Who may: the permission table's ``case:resolve`` and ``image:view``, which a key
        or account bound to a carrier never has (cross-carrier permissions), so no carrier
        check is made here: it could never refuse (review L7)."""
        if capture.resolution is not None:
            raise PermissionDeniedError(
                f"this case is resolved ({capture.resolution}): its candidates' photos are"
                " shown only while it is open"
            )

    def _view_image(
        self,
        actor: Principal,
        resource_type: str,
        resource_id: str,
        read: Callable[[UnitOfWork], bytes | None],
        missing: str,
        context: dict[str, str] | None = None,
    ) -> bytes:
        """An image opened for an officer, and the view recorded, in one transaction."""
        actor.require(Permission.IMAGE_VIEW)

        def view(uow: UnitOfWork) -> bytes:
            image = read(uow)
            if image is None:
                raise NotFoundError(missing)
            self._audit.record(
                uow, "console image view", "ok", actor, resource_type, resource_id, context
            )
            return image

        return in_transaction(self._uow, view)

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
        person is not cleared here. Returns the encounter id, if one was recorded. All of it
        is one transaction."""
        actor.require(Permission.CASE_RESOLVE)
        return in_transaction(
            self._uow, lambda uow: self._resolve(uow, actor, capture_id, resolution, traveler_id)
        )

    def _resolve(
        self,
        uow: UnitOfWork,
        actor: Principal,
        capture_id: str,
        resolution: Resolution,
        traveler_id: str | None,
    ) -> str | None:
        capture = self._capture(uow, capture_id)
        if capture.resolution is not None:
            raise ConflictError(f"this case was already resolved ({capture.resolution})")
        flight = FlightService.get_in(uow, capture.flight_id)
        if not actor.serves(flight.carrier):
            raise PermissionDeniedError("this account does not serve this flight's carrier")
        encounter_id = None
        if resolution is not Resolution.REJECTED:
            if traveler_id is None:
                raise InvalidInputError("choose the traveler whose document was checked")
            status = self._manifest_entry(uow, flight.id, traveler_id)
            if resolution is Resolution.CONFIRMED:
                encounter_id = self._record_manual(uow, actor, flight, traveler_id, capture_id)
            else:
                encounter_id = self._opt_outs.record_in(
                    uow, actor, flight, status.document, "console", capture_id
                ).encounter_id
        if not uow.cases.resolve(capture_id, resolution.value, actor.key_id, self._clock()):
            raise ConflictError("another officer resolved this case first")
        self._audit.record(
            uow,
            "console case resolve",
            resolution.value,
            actor,
            "capture",
            capture_id,
            {"encounter": encounter_id or ""},
        )
        return encounter_id

    @staticmethod
    def _capture(uow: UnitOfWork, capture_id: str) -> CaptureSummary:
        """The capture behind a case. Only a capture the gate could not decide opens a case:
        a matched capture already recorded its traveler's encounter, and resolving it too
        would let one face clear a second traveler."""
        capture = uow.cases.get(capture_id)
        if capture is None or capture.decision not in OPEN_DECISIONS:
            raise NotFoundError(f"there is no case for capture {capture_id}")
        return capture

    @staticmethod
    def _manifest_entry(uow: UnitOfWork, flight_id: str, traveler_id: str) -> ManifestStatus:
        for status in uow.flights.manifest_status(flight_id, ""):
            if status.traveler_id == traveler_id:
                return status
        raise NotFoundError("that traveler is not on this flight's manifest")

    def _record_manual(
        self, uow: UnitOfWork, actor: Principal, flight: Flight, traveler_id: str, capture_id: str
    ) -> str:
        now = self._clock()
        policy = self._policies.in_force(now)
        citizenship = uow.travelers.citizenship_class(traveler_id, flight)
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
        if not uow.captures.add_encounter(encounter):
            raise ConflictError("this traveler has already been processed on this flight")
        if self._on_encounter is not None:
            self._on_encounter(uow, encounter, flight, None)
        return encounter.id
