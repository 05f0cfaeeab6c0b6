"""Staged galleries: each flight's reference templates, fused per traveler, held in memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.domain.access import Principal
from entryexit.domain.model import CitizenshipClass, DocumentKey, Flight, StagingReport
from entryexit.domain.normalisation import TravelerFacts, are_related
from entryexit.domain.policy import Participation, age_on
from entryexit.errors import ConflictError
from entryexit.services.audit import AuditTrail
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, ManifestStatus
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

# Runs inside the staging transaction with the new gallery (watchlist screening).
StagedHook = Callable[[UnitOfWork, Flight, "StagedGallery"], object]


@dataclass(frozen=True, slots=True)
class StagedGallery:
    """One row per traveler: the L2-normalised mean of their reference templates, what the
    manifest says that can relate two travelers (``facts``), and how many reference
    templates each row fuses (``reference_counts``: its 1:N threshold depends on it), all in
    the same order. ``quarantined``: travelers left out because their sealed rows do not
    open (a database writer moved or altered them); their captures find no match and go to an
    officer."""

    flight_id: str
    version: int
    model: str
    traveler_ids: tuple[str, ...]
    matrix: NDArray[np.float32]
    staged_at: datetime
    expires_at: datetime | None = None
    facts: tuple[TravelerFacts, ...] = ()
    reference_counts: tuple[int, ...] = ()
    quarantined: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.traveler_ids)

    def related(self, first: int, second: int) -> bool:
        """Whether entries ``first`` and ``second`` are related travelers (one booking, or a
        surname and full birth date in common)."""
        if not self.facts:
            return False
        return are_related(self.facts[first], self.facts[second])


def fuse_templates(
    vectors_by_traveler: dict[str, list[NDArray[np.float32]]],
) -> tuple[tuple[str, ...], NDArray[np.float32]]:
    """Mean template per traveler (better than keeping the max of several; see issue 7)."""
    traveler_ids = tuple(sorted(vectors_by_traveler))
    if not traveler_ids:
        return (), np.empty((0, 0), dtype=np.float32)
    means = np.stack([np.mean(vectors_by_traveler[t], axis=0) for t in traveler_ids])
    return traveler_ids, l2_normalise(means)


class GalleryService:
    """Builds galleries from the store and keeps them; a process that finds its copy older
    than the flight's ``gallery_version`` (another worker restaged) rebuilds it."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        model: str,
        dimension: int,
        policies: PolicyService,
        audit: AuditTrail,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policies = policies
        self._audit = audit
        self._model = model
        self._dimension = dimension
        self._galleries: dict[str, StagedGallery] = {}
        self._lock = threading.Lock()
        self._on_staged: list[StagedHook] = []

    def on_staged(self, callback: StagedHook) -> None:
        """Run ``callback`` with every newly staged gallery, in the staging transaction."""
        self._on_staged.append(callback)

    def stage(self, flight_id: str, actor: Principal | None = None) -> StagingReport:
        """Stage (or re-stage) the flight's gallery: one transaction bumps its version,
        screens it and records the event; this process keeps the gallery once it commits."""
        previous = self._galleries.get(flight_id)
        return in_transaction(self._uow, lambda uow: self._stage(uow, flight_id, actor, previous))

    def _stage(
        self,
        uow: UnitOfWork,
        flight_id: str,
        actor: Principal | None,
        previous: StagedGallery | None,
    ) -> StagingReport:
        flight = FlightService.get_in(uow, flight_id)
        # Who the flight's travelers are by its own carrier's manifest where another carrier
        # holds a document's details (the agency's govern every flight).
        statuses = uow.flights.manifest_status(flight_id, self._model, flight.carrier)
        now = self._clock()
        policy = self._policies.in_force(now)
        gallery = self.restage_in(uow, flight, statuses)
        for callback in self._on_staged:
            callback(uow, flight, gallery)
        excluded = self._excluded(statuses, now)
        before = set(previous.traveler_ids) if previous else set()
        after = set(gallery.traveler_ids)
        without_photo: tuple[DocumentKey, ...] = tuple(
            s.document for s in statuses if not s.has_photo
        )
        self._audit.record(
            uow,
            "gallery staged",
            "ok",
            actor,
            resource_type="flight",
            resource_id=flight_id,
            details={
                "travelers": len(statuses),
                "in_gallery": len(after),
                "without_photo": len(without_photo),
                "exempt": sum(1 for reason in excluded.values() if reason == "exempt"),
                "opted_out": sum(1 for reason in excluded.values() if reason == "opted_out"),
            },
            policy_version=policy.version,
        )
        return StagingReport(
            flight_id=flight_id,
            gallery_version=gallery.version,
            travelers=len(statuses),
            with_photo=len(after),
            added=len(after - before),
            removed=len(before - after),
            unchanged=len(after & before),
            without_photo=without_photo,
        )

    def restage_in(
        self, uow: UnitOfWork, flight: Flight, statuses: list[ManifestStatus] | None = None
    ) -> StagedGallery:
        """Bump the flight's gallery version and build the new gallery in ``uow`` (an opt-out
        takes its traveler out this way); this process keeps it once ``uow`` commits."""
        now = self._clock()
        hours = self._policies.in_force(now).gallery_hours_after_departure
        expires_at = flight.scheduled_departure + timedelta(hours=hours)
        version = uow.flights.mark_gallery_staged(flight.id, now, expires_at)
        gallery = self._build(uow, flight, version, expires_at, statuses)
        for traveler_id in gallery.quarantined:
            self._audit.record(
                uow,
                "gallery quarantine",
                "tampered",
                None,
                resource_type="traveler",
                resource_id=traveler_id,
                details={"flight": flight.id, "reason": "sealed rows do not open"},
            )
        uow.after_commit(lambda: self._keep(gallery))
        return gallery

    def _keep(self, gallery: StagedGallery) -> None:
        with self._lock:
            current = self._galleries.get(gallery.flight_id)
            if current is None or current.version <= gallery.version:
                self._galleries[gallery.flight_id] = gallery

    def gallery_for(self, flight: Flight) -> StagedGallery:
        if not flight.staged:
            raise ConflictError(f"the gallery of flight {flight.id} has not been staged")
        cached = self._galleries.get(flight.id)
        if cached is not None and cached.version == flight.gallery_version:
            return cached
        with self._uow(read_only=True) as uow:
            rebuilt = self._build(uow, flight, flight.gallery_version, flight.gallery_expires_at)
        self._keep(rebuilt)
        return rebuilt

    def _excluded(self, statuses: list[ManifestStatus], now: datetime) -> dict[str, str]:
        """Travelers who must never be matched: those who opted out, and those the policy
        in force exempts (by age)."""
        excluded = {s.traveler_id: "opted_out" for s in statuses if s.opted_out}
        policy = self._policies.in_force(now)
        for status in statuses:
            if status.traveler_id in excluded or not status.citizenship_class:
                continue
            age = age_on(status.date_of_birth, now.date()) if status.date_of_birth else None
            klass = CitizenshipClass(status.citizenship_class)
            if policy.participation(klass, age) is Participation.EXEMPT:
                excluded[status.traveler_id] = "exempt"
        return excluded

    def _build(
        self,
        uow: UnitOfWork,
        flight: Flight,
        version: int,
        expires_at: datetime | None,
        statuses: list[ManifestStatus] | None = None,
    ) -> StagedGallery:
        """The gallery from the store; ``statuses`` when the caller has read the manifest
        already (staging does), else read now."""
        now = self._clock()
        if statuses is None:
            statuses = uow.flights.manifest_status(flight.id, self._model, flight.carrier)
        excluded = self._excluded(statuses, now)
        vectors: dict[str, list[NDArray[np.float32]]] = {}
        unopenable: set[str] = set()
        for stored in uow.travelers.gallery_templates(flight.id, self._model, unopenable):
            if stored.traveler_id in excluded:
                continue
            template = Template.from_bytes(stored.vector, stored.model, self._dimension)
            vectors.setdefault(stored.traveler_id, []).append(template.vector)
        traveler_ids, matrix = fuse_templates(vectors)
        by_traveler = {status.traveler_id: status for status in statuses}
        facts = tuple(_facts(by_traveler.get(traveler_id)) for traveler_id in traveler_ids)
        return StagedGallery(
            flight.id,
            version,
            self._model,
            traveler_ids,
            matrix,
            now,
            expires_at,
            facts,
            tuple(len(vectors[traveler_id]) for traveler_id in traveler_ids),
            tuple(sorted(unopenable - set(excluded))),
        )

    def evict_expired(self, now: datetime) -> int:
        """Forget galleries past their deletion time (the store forgets them too)."""
        with self._lock:
            expired = [
                flight_id
                for flight_id, gallery in self._galleries.items()
                if gallery.expires_at is not None and gallery.expires_at <= now
            ]
            for flight_id in expired:
                del self._galleries[flight_id]
        return len(expired)

    def forget(self, flight_id: str) -> None:
        with self._lock:
            self._galleries.pop(flight_id, None)


def _facts(status: ManifestStatus | None) -> TravelerFacts:
    if status is None:
        return TravelerFacts()
    return TravelerFacts(
        booking_reference=status.booking_reference,
        surname=status.surname,
        date_of_birth=status.date_of_birth.isoformat() if status.date_of_birth else None,
    )
