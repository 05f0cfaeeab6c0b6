"""Flights and their manifests; what officers see of a boarding."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from entryexit.documents.manifest import (
    check_citizenship,
    parse_csv_manifest,
    parse_json_manifest,
)
from entryexit.documents.paxlst import FlaggedTraveler, parse_paxlst
from entryexit.documents.text import excerpt
from entryexit.domain.access import Principal
from entryexit.domain.conflicts import (
    MAX_CONFLICTS_PER_UPLOAD,
    MAX_OPEN_CONFLICTS_PER_CARRIER,
    ConflictPage,
    ConflictQuery,
)
from entryexit.domain.model import (
    AGENCY,
    ConflictSide,
    Direction,
    DocumentKey,
    Encounter,
    Flight,
    ManifestChange,
    ManifestConflict,
    ManifestTraveler,
)
from entryexit.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from entryexit.services.audit import AuditTrail
from entryexit.services.citizen_prints import drop_citizens_prints, drop_exempt_prints
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, ManifestStatus
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

logger = logging.getLogger(__name__)
_CARRIER = re.compile(r"^[A-Z0-9]{2,3}$")
_FLIGHT_NUMBER = re.compile(r"^[0-9]{1,4}[A-Z]?$")
_PORT = re.compile(r"^[A-Z]{3,5}$")
# A manifest is written in batches of this many travelers, each its own short transaction
# (about 20-40 ms on SQLite), with a pause between them in which a waiting gate capture takes
# the write lock: an upload of any size delays a gate by at most one batch.
MANIFEST_BATCH = 100
MANIFEST_PAUSE_SECONDS = 0.03
MAX_ID_LENGTH = 36
# Staging copies left by an upload whose process died are dropped after this long.
STALE_STAGING = timedelta(hours=1)


class ManifestFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PAXLST = "paxlst"


@dataclass(frozen=True, slots=True)
class ManifestUpload:
    """A manifest document as received and what reading and staging it needs. It crosses to a
    manifest worker process, so it holds plain values only (no key, no connection)."""

    flight_id: str
    upload_id: str
    data: bytes
    format: ManifestFormat
    today: date
    home_state: str
    staged_at: datetime
    # The flight's carrier: the worker pool serves each carrier one upload at a time.
    carrier: str = ""
    # Who sets the details of documents first seen here: the uploading key's carrier, or
    # ``AGENCY`` for the agency's own keys (first carrier wins: see ``swap_manifest``).
    details_by: str | None = None


@dataclass(frozen=True, slots=True)
class StagedManifest:
    """What staging wrote into the upload's version: how many travelers, and the PAXLST
    travelers kept out of it for an officer."""

    total: int
    flagged: tuple[FlaggedTraveler, ...] = ()


@dataclass(frozen=True, slots=True)
class ManifestReplaced:
    change: ManifestChange
    flagged: tuple[FlaggedTraveler, ...]


class ManifestStager(Protocol):
    """Reads, validates and seals a manifest document into its upload's version, which no
    reader sees until the swap (in this process, or in a worker process of its own so that
    the work does not share the serving process's interpreter lock with the gates)."""

    def stage(self, upload: ManifestUpload) -> StagedManifest: ...


def read_manifest(
    data: bytes, format: ManifestFormat, today: date, home_state: str
) -> tuple[list[ManifestTraveler], tuple[FlaggedTraveler, ...]]:
    """The travelers of a manifest document (JSON and CSV: all valid, or refused whole;
    PAXLST: the valid ones, and the others flagged)."""
    if format is ManifestFormat.CSV:
        return parse_csv_manifest(data, today, home_state), ()
    if format is ManifestFormat.JSON:
        return parse_json_manifest(data, today, home_state), ()
    message = parse_paxlst(data, today, home_state)
    return list(message.travelers), message.flagged


def check_distinct(travelers: Sequence[ManifestTraveler]) -> None:
    seen: set[DocumentKey] = set()
    for position, traveler in enumerate(travelers, start=1):
        if traveler.document in seen:
            raise InvalidInputError(
                f"traveler {position}: the same document appears twice in the manifest"
            )
        seen.add(traveler.document)


def stage_travelers(
    uow: UnitOfWorkFactory,
    flight_id: str,
    upload_id: str,
    travelers: Sequence[ManifestTraveler],
    now: datetime,
    *,
    batch: int = MANIFEST_BATCH,
    pause: float = MANIFEST_PAUSE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    details_by: str | None = None,
) -> None:
    """Write ``travelers`` into version ``upload_id`` of the flight's manifest, a short
    transaction per ``batch`` with a ``pause`` between them (a waiting gate takes the
    write lock then). Documents first seen here are set by ``details_by``."""
    size = max(1, batch)
    for start in range(0, len(travelers), size):
        if start and pause > 0:
            sleep(pause)
        in_transaction(
            uow,
            functools.partial(
                _stage,
                flight_id,
                upload_id,
                list(travelers[start : start + size]),
                now,
                details_by,
            ),
        )


def stage_manifest(
    uow: UnitOfWorkFactory,
    upload: ManifestUpload,
    *,
    batch: int = MANIFEST_BATCH,
    pause: float = MANIFEST_PAUSE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> StagedManifest:
    """Read the document and stage its travelers (what a manifest worker process runs)."""
    travelers, flagged = read_manifest(upload.data, upload.format, upload.today, upload.home_state)
    check_distinct(travelers)
    stage_travelers(
        uow,
        upload.flight_id,
        upload.upload_id,
        travelers,
        upload.staged_at,
        batch=batch,
        pause=pause,
        sleep=sleep,
        details_by=upload.details_by,
    )
    return StagedManifest(len(travelers), flagged)


@dataclass(frozen=True, slots=True)
class NewFlight:
    carrier: str
    number: str
    scheduled_departure: datetime
    origin: str
    destination: str
    direction: Direction


class FlightService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        model: str,
        audit: AuditTrail,
        *,
        manifest_batch: int = MANIFEST_BATCH,
        manifest_pause: float = MANIFEST_PAUSE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        home_state: str = "UTO",
        stager: ManifestStager | None = None,
        policies: PolicyService | None = None,
        max_conflicts_per_upload: int = MAX_CONFLICTS_PER_UPLOAD,
        max_open_conflicts_per_carrier: int = MAX_OPEN_CONFLICTS_PER_CARRIER,
    ) -> None:
        self._policies = policies
        self._max_conflicts = max(0, max_conflicts_per_upload)
        self._max_open_conflicts = max(0, max_open_conflicts_per_carrier)
        self._uow = uow
        self._clock = clock
        self._model = model
        self._audit = audit
        self._batch = max(1, manifest_batch)
        self._pause = manifest_pause
        self._sleep = sleep
        self._home_state = home_state
        self._stager: ManifestStager = stager or _InProcess(uow, self._batch, manifest_pause, sleep)

    def create(self, new: NewFlight, actor: Principal | None = None) -> Flight:
        carrier = new.carrier.strip().upper()
        if actor is not None and not actor.serves(carrier):
            raise PermissionDeniedError("this key may not create another carrier's flights")
        number = new.number.strip().upper()
        origin, destination = new.origin.strip().upper(), new.destination.strip().upper()
        if not _CARRIER.match(carrier):
            raise InvalidInputError("carrier must be a 2- or 3-character airline or line code")
        if not _FLIGHT_NUMBER.match(number):
            raise InvalidInputError("flight number must be 1 to 4 digits and an optional letter")
        if not (_PORT.match(origin) and _PORT.match(destination)):
            raise InvalidInputError("origin and destination must be 3- to 5-letter port codes")
        if origin == destination:
            raise InvalidInputError("origin and destination must differ")
        if new.scheduled_departure.tzinfo is None:
            raise InvalidInputError("scheduled_departure needs a time zone (for example Z)")
        flight = Flight(
            id=str(uuid.uuid4()),
            carrier=carrier,
            number=number,
            scheduled_departure=new.scheduled_departure,
            origin=origin,
            destination=destination,
            direction=new.direction,
            created_at=self._clock(),
        )

        def store(uow: UnitOfWork) -> None:
            uow.flights.add(flight)
            self._audit.record(uow, "flight create", "ok", actor, "flight", flight.id)

        in_transaction(self._uow, store)
        return flight

    def get(self, flight_id: str) -> Flight:
        with self._uow(read_only=True) as uow:
            return self.get_in(uow, flight_id)

    def check_serves(
        self, actor: Principal, flight_id: str, within: UnitOfWork | None = None
    ) -> Flight:
        """Refuse a carrier-bound key on another carrier's flight (an unknown flight is the
        caller's 404 as usual); the flight, read in ``within`` when given."""
        if within is not None:
            return self.served_in(within, actor, flight_id)
        with self._uow(read_only=True) as uow:
            return self.served_in(uow, actor, flight_id)

    @staticmethod
    def served_in(uow: UnitOfWork, actor: Principal, flight_id: str) -> Flight:
        """The flight, read in the caller's unit of work, if ``actor`` serves its carrier."""
        flight = FlightService.get_in(uow, flight_id)
        if not actor.serves(flight.carrier):
            raise PermissionDeniedError("this key does not serve this flight's carrier")
        return flight

    @staticmethod
    def get_in(uow: UnitOfWork, flight_id: str) -> Flight:
        """The flight, read in the caller's unit of work."""
        # Ids are UUIDs: a longer one names no flight (and PostgreSQL would refuse to compare
        # it with the 36-character column).
        flight = uow.flights.get(flight_id) if len(flight_id) <= MAX_ID_LENGTH else None
        if flight is None:
            raise NotFoundError(f"flight {excerpt(flight_id)} does not exist")
        return flight

    def put_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], actor: Principal | None = None
    ) -> ManifestChange:
        """Replace the flight's manifest with ``travelers`` (already read and checked; a
        home-state citizen declared anything else is refused, as a manifest document is)."""
        check_distinct(travelers)
        for index, traveler in enumerate(travelers):
            try:
                check_citizenship(traveler, self._home_state)
            except InvalidInputError as exc:
                raise InvalidInputError(f"traveler {index + 1}: {exc.message}") from None
        self.get(flight_id)

        def stage(upload_id: str, now: datetime) -> StagedManifest:
            stage_travelers(
                self._uow,
                flight_id,
                upload_id,
                travelers,
                now,
                batch=self._batch,
                pause=self._pause,
                sleep=self._sleep,
                details_by=_details_by(actor),
            )
            return StagedManifest(len(travelers))

        return self._replace(flight_id, stage, actor).change

    def replace_manifest(
        self,
        flight_id: str,
        data: bytes,
        format: ManifestFormat,
        actor: Principal | None = None,
    ) -> ManifestReplaced:
        """Replace the flight's manifest with the document ``data``: read, validated and
        sealed by the stager (a worker process in the service), swapped in here."""
        flight = self.get(flight_id)

        def stage(upload_id: str, now: datetime) -> StagedManifest:
            return self._stager.stage(
                ManifestUpload(
                    flight_id,
                    upload_id,
                    data,
                    format,
                    now.date(),
                    self._home_state,
                    now,
                    carrier=flight.carrier,
                    details_by=_details_by(actor),
                )
            )

        return self._replace(flight_id, stage, actor)

    def _replace(
        self,
        flight_id: str,
        stage: Callable[[str, datetime], StagedManifest],
        actor: Principal | None,
    ) -> ManifestReplaced:
        """The travelers are written in short batches into a new manifest version that no
        reader sees, and one short transaction puts it in force (with the audit event; one
        flight row changes, whatever the size): readers see the old manifest or the new one,
        never part of it, a failed upload (an invalid row, a worker that died or ran out of
        time) leaves the old one, and gates on other flights wait for one batch at most."""
        upload_id = str(uuid.uuid4())
        now = self._clock()
        try:
            staged = stage(upload_id, now)

            def swap(uow: UnitOfWork) -> ManifestChange:
                self.get_in(uow, flight_id)
                change = uow.flights.swap_manifest(
                    flight_id,
                    upload_id,
                    now,
                    staged.total,
                    uploader_carrier=actor.carrier if actor is not None else None,
                    max_conflicts=self._max_conflicts,
                    max_open_conflicts=self._max_open_conflicts,
                )
                details = {"added": change.added, "removed": change.removed}
                details["total"] = change.total
                if change.details_kept:
                    details["details_kept"] = change.details_kept
                if change.conflicts:
                    details["conflicts"] = change.conflicts
                if change.conflicts_over_limit:
                    # For the agency (the carrier is told nothing: review C3, session 8's P1).
                    details["conflicts_over_limit"] = change.conflicts_over_limit
                    logger.warning(
                        "a manifest upload disputed more documents than it may open conflicts"
                        " for (%d an upload, %d open a carrier): %d not recorded (flight %s)",
                        self._max_conflicts,
                        self._max_open_conflicts,
                        change.conflicts_over_limit,
                        flight_id,
                    )
                self._audit.record(
                    uow, "manifest replace", "ok", actor, "flight", flight_id, details
                )
                # A traveler the manifest now shows to be a citizen keeps no prints (found by
                # clear columns: a manifest cannot state a home-state national or passport
                # holder anything but a citizen, so a change to one is a stored class).
                drop_citizens_prints(
                    uow,
                    uow.fingerprints.citizens_enrolled(flight_id, self._home_state),
                    self._home_state,
                    self._audit,
                    actor,
                    "manifest",
                )
                return change

            change = in_transaction(self._uow, swap)
        except BaseException:
            self._discard(upload_id=upload_id)
            raise
        # The superseded version, and any a dead upload left, go in short batches too.
        self._discard(flight_id=flight_id, staged_before=now)
        self._discard(staged_before=now - STALE_STAGING)
        return ManifestReplaced(change, staged.flagged)

    def _discard(
        self,
        upload_id: str | None = None,
        staged_before: datetime | None = None,
        flight_id: str | None = None,
    ) -> None:
        """Drop manifest versions not in force in short transactions. A failure here changes
        no manifest: the rows are left for the next upload's clean-up (it drops versions
        staged more than an hour before)."""
        limit = self._batch * 5
        try:
            while True:
                gone = in_transaction(
                    self._uow,
                    lambda uow: uow.flights.discard_manifest_versions(
                        upload_id, staged_before, limit, flight_id
                    ),
                )
                if gone < limit:
                    return
                if self._pause > 0:
                    self._sleep(self._pause)
        except Exception as exc:
            logger.warning("old manifest rows left for later clean-up: %s", type(exc).__name__)

    def manifest(self, flight_id: str, viewer: Principal | None = None) -> list[ManifestStatus]:
        """The flight's manifest. A key bound to a carrier sees only what its carrier sent
        (details another carrier or the agency set are not told, nor who has a reference
        photo); the agency's keys see the details in force."""
        with self._uow(read_only=True) as uow:
            flight = self.get_in(uow, flight_id)
            if viewer is not None and viewer.carrier is not None:
                return uow.flights.manifest_status(
                    flight_id, self._model, flight.carrier, own_only=True
                )
            return uow.flights.manifest_status(flight_id, self._model)

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        with self._uow(read_only=True) as uow:
            self.get_in(uow, flight_id)
            return uow.flights.manifest_travelers(flight_id)

    def encounters(self, flight_id: str) -> list[Encounter]:
        with self._uow(read_only=True) as uow:
            self.get_in(uow, flight_id)
            return uow.captures.encounters_of_flight(flight_id)

    def manifest_conflicts(self, open_only: bool = True) -> list[ManifestConflict]:
        """Details carriers' manifests brought for documents another carrier (or the agency)
        set first: not applied, waiting for the agency (the API and CLI check who asks)."""
        with self._uow(read_only=True) as uow:
            return uow.flights.manifest_conflicts(open_only)

    def manifest_conflict_page(self, query: ConflictQuery) -> ConflictPage:
        """One page of :meth:`manifest_conflicts` (keyset, oldest first), by status and
        optionally one flight or one proposing carrier (the API checks who asks)."""
        if query.flight_id is not None and len(query.flight_id) > MAX_ID_LENGTH:
            return ConflictPage([], None)
        with self._uow(read_only=True) as uow:
            return uow.flights.manifest_conflict_page(query)

    def resolve_manifest_conflict(
        self, conflict_id: str, side: ConflictSide, actor: Principal | None = None
    ) -> ManifestConflict:
        """Keep the details in force, or apply the proposed ones; audited (the event names
        the document, the carriers and the side, never the details)."""
        if side not in (ConflictSide.KEPT, ConflictSide.PROPOSED):
            raise InvalidInputError("a conflict is resolved by keeping or applying its details")
        if len(conflict_id) > MAX_ID_LENGTH:
            raise NotFoundError("no open manifest conflict has this id")

        def resolve(uow: UnitOfWork) -> ManifestConflict:
            conflict = uow.flights.resolve_manifest_conflict(conflict_id, side, self._clock())
            self._audit.record(
                uow,
                "manifest conflict resolve",
                "ok",
                actor,
                "manifest_conflict",
                conflict_id,
                {
                    "applied": side.value,
                    "document_id": conflict.document_id,
                    "proposed_by": conflict.proposed_by,
                    "held_by": conflict.held_by or "",
                },
            )
            if side is ConflictSide.PROPOSED and conflict.traveler_id:
                drop_citizens_prints(
                    uow,
                    [conflict.traveler_id],
                    self._home_state,
                    self._audit,
                    actor,
                    "manifest conflict",
                )
            if conflict.traveler_id and self._policies is not None:
                # The agency has decided which details stand: prints the policy takes no
                # more from them (an age or class now in force) go in this transaction.
                now = self._clock()
                drop_exempt_prints(
                    uow,
                    [conflict.traveler_id],
                    self._policies.in_force(now).fingerprints,
                    now.date(),
                    self._audit,
                    actor,
                    "manifest conflict",
                    agency_decided=True,
                )
            return conflict

        return in_transaction(self._uow, resolve)


def _details_by(actor: Principal | None) -> str:
    """Who sets the details of documents an upload is the first to name."""
    return actor.carrier if actor is not None and actor.carrier is not None else AGENCY


def _stage(
    flight_id: str,
    upload_id: str,
    batch: list[ManifestTraveler],
    now: datetime,
    details_by: str | None,
    uow: UnitOfWork,
) -> None:
    uow.flights.stage_manifest_batch(flight_id, upload_id, batch, now, details_by)


@dataclass(frozen=True, slots=True)
class _InProcess:
    """Reads and stages manifests in the calling thread (no worker processes: tests over
    in-memory storage, an in-memory database)."""

    uow: UnitOfWorkFactory
    batch: int
    pause: float
    sleep: Callable[[float], None]

    def stage(self, upload: ManifestUpload) -> StagedManifest:
        return stage_manifest(
            self.uow, upload, batch=self.batch, pause=self.pause, sleep=self.sleep
        )
