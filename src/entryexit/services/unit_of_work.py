"""The unit of work: one use case, one transaction, with a small repository per aggregate.

A use case opens a unit of work, reads and writes through its repositories, and commits once::

    with self._uow() as uow:
        uow.captures.add_capture(record)
        self._audit.record(uow, "capture", "ok", actor, "flight", flight.id)
        uow.commit()

Leaving the ``with`` block without ``commit()`` rolls everything back, so a use case's records,
its audit event and any outbox message are written together or not at all. Model work (image
analysis) happens *before* the unit of work opens, so write transactions stay short.

``adapters.storage.unit_of_work.SqlUnitOfWork`` implements this on SQLite and PostgreSQL;
``tests.fakes.FakeUnitOfWork`` in memory. Report queries that read across aggregates
(overstays, privacy, fairness, console boards) are read models (:class:`ReportQueries`,
:class:`BoardQueries`), not repository methods.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

import numpy as np
from numpy.typing import NDArray

from entryexit.domain.access import Role, StoredApiKey
from entryexit.domain.admission import Admission, ExitLink
from entryexit.domain.audit import AuditEntry, AuditEvent
from entryexit.domain.conflicts import ConflictPage, ConflictQuery
from entryexit.domain.kiosk import KioskDevice, KioskOptOutRequest, LaneAssignment
from entryexit.domain.model import (
    CitizenshipClass,
    ConflictSide,
    DocumentKey,
    Encounter,
    Flight,
    ManifestChange,
    ManifestConflict,
    ManifestTraveler,
    PhotoSource,
)
from entryexit.domain.policy import Policy
from entryexit.errors import TransactionConflictError
from entryexit.services.ports import (
    AlertRecord,
    CaptureRecord,
    CaptureSummary,
    CasePrint,
    ConsoleSession,
    ConsoleUser,
    ExitConfirmation,
    FlightCounts,
    IdempotencyClaim,
    ManifestStatus,
    NewAdmission,
    SignInFailures,
    StatedDetails,
    StoredFingerprint,
    StoredIdempotency,
    StoredPolicy,
    StoredTemplate,
    TravelerErasure,
    TravelerIdentity,
    TravelerProfile,
    WatchlistEntry,
)


class FlightRepository(Protocol):
    """Flights and their manifests."""

    def add(self, flight: Flight) -> None: ...
    def get(self, flight_id: str) -> Flight | None: ...
    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        """Bump the flight's gallery version (other processes rebuild theirs); returns it."""
        ...

    def replace_manifest(
        self,
        flight_id: str,
        travelers: list[ManifestTraveler],
        now: datetime,
        uploader_carrier: str | None = None,
    ) -> ManifestChange: ...
    def manifest_status(
        self,
        flight_id: str,
        model: str,
        carrier: str | None = None,
        *,
        own_only: bool = False,
    ) -> list[ManifestStatus]:
        """The flight's travelers; with ``carrier`` (the flight's), a document whose details
        another carrier holds is shown as ``carrier`` sent it for this flight; ``own_only``
        (a key bound to ``carrier``) shows nothing ``carrier`` did not send itself."""
        ...

    def has_traveler(self, flight_id: str, traveler_id: str) -> bool:
        """Whether the traveler is on the flight's (current) manifest."""
        ...

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]: ...
    def stage_manifest_batch(
        self,
        flight_id: str,
        upload_id: str,
        travelers: Sequence[ManifestTraveler],
        now: datetime,
        details_by: str | None = None,
    ) -> None:
        """Add ``travelers`` to manifest version ``upload_id`` of the flight, which no reader
        sees until it is swapped in (documents seen for the first time are created, their
        details set by ``details_by``: a carrier's code or AGENCY)."""
        ...

    def swap_manifest(
        self,
        flight_id: str,
        upload_id: str,
        now: datetime,
        expected: int,
        uploader_carrier: str | None = None,
        max_conflicts: int | None = None,
        max_open_conflicts: int | None = None,
    ) -> ManifestChange:
        """Put version ``upload_id`` in force (details included), in a transaction whose
        length does not grow with the manifest; a version that does not hold exactly
        ``expected`` travelers is refused (ConflictError). The superseded version is then
        dropped with :meth:`discard_manifest_versions`. First carrier wins: with
        ``uploader_carrier`` (a key bound to that carrier sent it), new details for a document
        whose details another carrier or the agency set (or, for one set before that was
        recorded, that is on a manifest in force of another carrier's flight) are not
        applied but recorded as a conflict (counted in ``details_kept`` and ``conflicts``);
        without it (the agency), they are applied and the document's open conflicts are
        closed as superseded. At most ``max_conflicts`` new conflicts are opened, and none that
        would leave the carrier more than ``max_open_conflicts`` open ones in all: further
        disputed entries keep the details in force, counted in ``conflicts_over_limit``."""
        ...

    def manifest_conflicts(
        self, open_only: bool = True, conflict_id: str | None = None
    ) -> list[ManifestConflict]:
        """The conflicts, oldest first, with the details in force and those proposed."""
        ...

    def manifest_conflict_page(self, query: ConflictQuery) -> ConflictPage:
        """One page of :meth:`manifest_conflicts` by keyset, filtered as ``query`` says."""
        ...

    def resolve_manifest_conflict(
        self, conflict_id: str, side: ConflictSide, now: datetime
    ) -> ManifestConflict:
        """Close an open conflict (NotFoundError if there is none): PROPOSED applies its
        details (set by the proposing carrier from then on), KEPT changes nothing else.
        Returns the conflict as it was."""
        ...

    def discard_manifest_versions(
        self,
        upload_id: str | None = None,
        staged_before: datetime | None = None,
        limit: int | None = None,
        flight_id: str | None = None,
    ) -> int:
        """Drop manifest versions not in force: one upload's, or every one staged before a
        time (superseded versions, dead uploads), of one flight or all; at most ``limit``
        rows. Returns how many rows went."""
        ...


class TravelerRepository(Protocol):
    """Travelers, their documents and their enrolled reference templates (sealed)."""

    def traveler_for_document(self, document: DocumentKey) -> str | None: ...
    def profile(self, traveler_id: str) -> TravelerProfile: ...
    def citizens(
        self, traveler_ids: Collection[str], home_state: str, *, sealed: bool = True
    ) -> frozenset[str]:
        """Those of ``traveler_ids`` who are citizens, whose prints are never taken nor kept
        nor compared: shown by any of their stored documents on clear columns (class citizen,
        whoever stated it, or a passport ``home_state`` issued), in one query; with
        ``sealed``, also a national of ``home_state`` among the rest (their sealed details
        opened). The one definition: the purge and a manifest's swap ask the same question
        of the clear columns, without a carrier's word."""
        ...

    def stated_details(
        self, traveler_ids: Collection[str], *, sealed: bool = True, proposed: bool = False
    ) -> list[StatedDetails]:
        """The details in force of every described document of ``traveler_ids`` (one query,
        clear columns; with ``sealed``, birth dates opened); with ``proposed``, also the
        details each open manifest conflict on them proposes (``conflict_id`` set), unless the
        agency set the document's details (they decide alone). Without ``sealed`` and
        ``proposed``: one query on clear columns, nothing opened."""
        ...

    def citizenship_class(
        self, traveler_id: str, flight: Flight | None = None
    ) -> CitizenshipClass | None:
        """The class of the traveler's described document (:meth:`profile`'s), without
        opening anything; with ``flight``, the class that flight decides by (its gallery
        staging's rule: its own carrier's copy where a rival carrier holds the details)."""
        ...

    def add_reference_template(
        self,
        document: DocumentKey,
        source: PhotoSource,
        vector: bytes,
        model: str,
        now: datetime,
        expires_at: datetime | None = None,
        image: bytes | None = None,
    ) -> tuple[str, str]:
        """Returns (template id, traveler id); a document seen for the first time gets a new
        traveler."""
        ...

    def gallery_templates(
        self, flight_id: str, model: str, unopenable: set[str] | None = None
    ) -> list[StoredTemplate]:
        """The flight's templates, opened. A traveler any of whose sealed rows does not open
        (moved or altered by someone without the keys) is left out whole and named in
        ``unopenable``: one tampered traveler must not stop a flight."""
        ...

    def reference_photo(self, traveler_id: str) -> bytes | None: ...
    def shred(self, traveler_id: str) -> int: ...


class CaptureRepository(Protocol):
    """Gate captures and the encounters they (or officers) record."""

    def add_capture(self, capture: CaptureRecord) -> None: ...
    def add_encounter(self, encounter: Encounter) -> bool:
        """``False`` if the traveler already has an encounter on this flight (the rest of the
        unit of work stands)."""
        ...

    def encounters_of_flight(self, flight_id: str) -> list[Encounter]: ...
    def encounters_of_traveler(self, traveler_id: str) -> list[Encounter]: ...
    def find_idempotency(self, scope: str, key: str) -> StoredIdempotency | None: ...
    def claim_idempotency(self, claim: IdempotencyClaim) -> StoredIdempotency | None:
        """Claim the key for this unit of work's capture; if an earlier attempt holds it,
        what that attempt stored (the rest of the unit of work stands). A concurrent claim
        on another connection waits for the first to commit or roll back."""
        ...

    def settle_idempotency(
        self, scope: str, key: str, outcome: str, expires_at: datetime | None
    ) -> None:
        """Store the outcome of the capture that claimed the key (same unit of work)."""
        ...


class CacheGenerations(Protocol):
    """Counters of shared state that processes cache: a writer bumps one in its transaction,
    a reader compares it before trusting its copy."""

    def bump(self, name: str) -> int: ...
    def current(self, name: str) -> int: ...


class CaseRepository(Protocol):
    """The officers' exceptions queue: no-match and manual captures, and their evidence."""

    def get(self, capture_id: str) -> CaptureSummary | None: ...
    def capture_image(self, capture_id: str) -> bytes | None: ...
    def resolve(self, capture_id: str, resolution: str, officer_id: str, now: datetime) -> bool:
        """``False`` if someone resolved it first."""
        ...


class PolicyRepository(Protocol):
    def add(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool: ...
    def all(self) -> list[StoredPolicy]: ...


class AuditRepository(Protocol):
    def append(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` after the last event, MAC it and re-sign the head; raises
        ``AuditLogUntrustedError`` (refusing the whole use case) when the stored head is not
        one the audit key signed for the last event."""
        ...

    def integrity_problem(self) -> str | None:
        """Why :meth:`append` would refuse now, or None."""
        ...

    def lock(self) -> None:
        """Hold the log for the rest of this (writing) transaction: other writers wait, so
        what is read now is what the transaction extends."""
        ...

    def last(self) -> AuditEvent | None:
        """The stored event with the highest sequence."""
        ...

    def repair(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` after the last stored event and sign the head there (the audited
        repair command only)."""
        ...

    def events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]: ...
    def head(self) -> tuple[int, str] | None: ...


class AdmissionRepository(Protocol):
    """Stays opened by entries and closed by exits."""

    def open(self, new: NewAdmission) -> bool: ...
    def open_of(self, traveler_id: str) -> Admission | None: ...
    def open_templates(
        self, model: str, exclude_traveler: str, limit: int
    ) -> list[tuple[str, bytes]]: ...
    def template_photos(self, admission_id: str) -> int | None: ...
    def close(
        self,
        admission_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exit_traveler_id: str,
        exited_on: date,
        link: ExitLink,
        score: float | None,
    ) -> bool: ...
    def record_exit_without_entry(
        self,
        record_id: str,
        traveler_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exited_on: date,
        now: datetime,
    ) -> None: ...
    def update(
        self, admission_id: str, admission_class: str, until: date | None
    ) -> Admission | None: ...
    def of_traveler(self, traveler_id: str) -> list[Admission]: ...


class WatchlistRepository(Protocol):
    """The watchlist (templates sealed each with its own key) and the alerts it raises."""

    def add_entry(self, entry: WatchlistEntry, template: bytes) -> None: ...
    def remove_entry(self, entry_id: str, now: datetime) -> bool: ...
    def entries(self) -> list[WatchlistEntry]: ...
    def templates(self, model: str) -> list[tuple[str, bytes]]: ...
    def add_alert(self, alert: AlertRecord) -> bool: ...
    def alerts(self, status: str | None, limit: int) -> list[AlertRecord]: ...
    def get_alert(self, alert_id: str) -> AlertRecord | None: ...
    def has_open_alert(self, traveler_id: str) -> bool: ...
    def disposition_alert(
        self, alert_id: str, status: str, reason: str, officer_id: str, now: datetime
    ) -> bool: ...


class AccessRepository(Protocol):
    """Machines' API keys, people's console accounts and their sessions."""

    def count_api_keys(self) -> int: ...
    def add_api_key(self, key: StoredApiKey) -> None: ...
    def find_api_key(self, prefix: str) -> StoredApiKey | None: ...
    def api_keys(self, limit: int) -> list[StoredApiKey]:
        """The newest ``limit`` keys, revoked ones too (rows failing their MAC left out)."""
        ...

    def add_user(
        self, user_id: str, username: str, password_hash: str, role: Role, now: datetime
    ) -> None: ...
    def find_user(self, username: str) -> ConsoleUser | None: ...
    def get_user(self, user_id: str) -> ConsoleUser | None: ...
    def record_sign_in(
        self,
        user_id: str,
        succeeded: bool,
        locked_until: datetime | None,
        password_hash: str | None = None,
        failed_attempts: int | None = None,
    ) -> None: ...
    def disable_user(self, user_id: str, now: datetime) -> None:
        """Mark the account disabled and delete its sessions."""
        ...

    def revoke_api_key(self, key_id: str, now: datetime) -> bool:
        """``False`` if there is no such key or it is revoked already."""
        ...

    def sign_in_failures(self, user_id: str, source_key: str) -> SignInFailures | None: ...
    def record_sign_in_failures(
        self, user_id: str, source_key: str, failures: SignInFailures
    ) -> None: ...
    def clear_sign_in_failures(self, user_id: str, source_key: str) -> None: ...
    def forget_sign_in_failures(self, before: datetime) -> int:
        """Delete counts whose last failure is older than ``before`` and that lock nothing."""
        ...

    def add_session(self, record: ConsoleSession) -> None: ...
    def get_session(self, token_hash: str) -> ConsoleSession | None: ...
    def touch_session(self, token_hash: str, now: datetime) -> None: ...
    def delete_session(self, token_hash: str) -> None: ...
    def delete_expired_sessions(self, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """Work handed from a use case to a background worker, written in the use case's own
    transaction so that a crash can delay it but never lose it. ``template`` is biometric
    data: the store seals it."""

    id: str
    kind: str
    payload: dict[str, str]
    created_at: datetime
    template: bytes | None = None


@dataclass(frozen=True, slots=True)
class ParkedWork:
    """A message the worker gave up on, kept for an officer (its template stays sealed)."""

    id: str
    kind: str
    payload: dict[str, str]
    created_at: datetime
    attempts: int
    parked_at: datetime


class OutboxRepository(Protocol):
    def add(self, message: OutboxMessage) -> None: ...
    def pending_ids(self, kind: str, limit: int) -> list[str]:
        """Oldest first, parked ones left out, without opening any sealed template (a
        template that cannot be opened fails the message's own work, not the queue)."""
        ...

    def pending(self, kind: str, limit: int) -> list[OutboxMessage]:
        """Oldest first, parked ones left out; on PostgreSQL, rows another worker holds are
        skipped."""
        ...

    def complete(self, message_id: str, now: datetime) -> None:
        """Remove the message (its effect is committed in the same unit of work)."""
        ...

    def count_pending(self) -> int:
        """Messages still to do (parked ones are not)."""
        ...

    def record_failure(self, message_id: str, park_after: int, now: datetime) -> bool:
        """Count a failed attempt; after ``park_after`` of them the message is parked (kept
        for an operator, skipped by :meth:`pending`). Returns whether it is parked now."""
        ...

    def count_parked(self) -> int: ...
    def parked(self, kind: str, limit: int) -> list[ParkedWork]: ...
    def retry(self, message_id: str) -> bool:
        """Put a parked message back in the queue (attempts from zero); False if it is not
        parked."""
        ...


class RetentionRepository(Protocol):
    def purge_expired(
        self, now: datetime, policy: Policy, limit: int | None = None
    ) -> dict[str, int]:
        """Delete everything whose time is up at ``now``: kinds whose expiry was stamped when
        written, and biographic kinds by ``policy`` (the one in force at ``now``). A traveler
        of whom nothing remains loses their data key (crypto-shredding). Counts per kind.
        ``limit`` (a batch): at most that many rows of each kind whose expiry was stamped,
        and the biographic kinds only of the travelers those rows named; call again until
        nothing is deleted, then sweep the rest with :meth:`biographic_due` and
        :meth:`purge_travelers`."""
        ...

    def refresh_statistics(self) -> list[str]:
        """Bring the database's planner statistics of the purged tables up to date where they
        lag far behind the data (PostgreSQL after a bulk import); the tables refreshed."""
        ...

    def purge_citizens_prints(self, home_state: str, limit: int | None = None) -> int:
        """Delete (at most ``limit``) enrolled fingers of travelers a document shows to be
        citizens (the citizen class, or a passport ``home_state`` issued)."""
        ...

    def biographic_due(self, now: datetime, policy: Policy, limit: int) -> list[str]:
        """Up to ``limit`` travelers with a document, data key or traveler record due at
        ``now`` (a read: made in a read-only unit of work, outside the write lock)."""
        ...

    def purge_travelers(
        self, now: datetime, policy: Policy, traveler_ids: Sequence[str]
    ) -> dict[str, int]:
        """Delete what of the biographic kinds of ``traveler_ids`` is due (checked again):
        documents, data keys, traveler records. Counts per kind."""
        ...

    def erase_traveler(self, traveler_id: str) -> TravelerErasure:
        """Delete everything of one traveler (court order, mistaken enrolment), their data key
        included; counts per kind."""
        ...

    def forget_opted_out(
        self, traveler_id: str, flight_id: str, now: datetime, capture_id: str | None = None
    ) -> dict[str, int]:
        """After an opt-out: delete the traveler's reference templates (unless another flight
        still to depart lists them, by a listing not in dispute: :meth:`listings_after`) and
        the images of their captures on the flight, and of ``capture_id`` (a no-match an
        officer found to be theirs). Counts by kind; ``kept_reference_templates`` when some
        were kept."""
        ...

    def listings_after(
        self, traveler_id: str, flight_id: str, now: datetime
    ) -> tuple[list[str], list[str]]:
        """Other flights still to depart that list the traveler: (those whose listing keeps
        his templates after an opt-out on ``flight_id``, those in dispute with its carrier
        that do not), flight ids sorted."""
        ...


class DataKeyRepository(Protocol):
    def rotate_batch(self, batch_size: int) -> int:
        """Re-wrap up to ``batch_size`` data keys (and capture image keys) not under the
        current key-encryption key; returns how many."""
        ...

    def counts_by_kek(self) -> dict[str, int]: ...


class FingerprintRepository(Protocol):
    """Enrolled fingerprints (templates sealed under the traveler's data key)."""

    def enrol(
        self,
        document: DocumentKey,
        finger: int,
        engine: str,
        template: bytes,
        quality: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> tuple[str, str]:
        """Store one finger for the document's traveler (replacing that finger's earlier
        print by the same engine); returns (template id, traveler id)."""
        ...

    def of_document(self, document: DocumentKey, engine: str) -> list[StoredFingerprint]: ...
    def of_flight(self, flight_id: str, engine: str) -> list[StoredFingerprint]:
        """The enrolled fingers of every traveler on the flight's manifest."""
        ...

    def travelers_enrolled(self, flight_id: str) -> frozenset[str]:
        """The travelers on the flight's manifest with enrolled prints (any engine, still
        openable), without opening any template."""
        ...

    def of_traveler(self, traveler_id: str, engine: str) -> list[StoredFingerprint]:
        """The traveler's enrolled fingers for ``engine`` (none once their key is shredded)."""
        ...

    def purge_expired(self, now: datetime) -> int: ...
    def citizens_enrolled(self, flight_id: str, home_state: str) -> frozenset[str]:
        """The flight's travelers (manifest in force) with prints whom a stored document shows
        to be citizens (class ``citizen``, or a passport ``home_state`` issued); nothing
        sealed is opened."""
        ...

    def enrolled_travelers(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` travelers with enrolled prints, in id order after ``after``."""
        ...

    def delete_of_traveler(self, traveler_id: str) -> int:
        """Delete every enrolled finger of the traveler (any engine); returns how many."""
        ...

    # --- live prints kept on a console case ----------------------------------------------
    def keep_case_print(self, kept: CasePrint, now: datetime) -> None:
        """Seal and store a live print of a case (template, and image when given) under the
        traveler's data key, bound to the case, the finger and the officer."""
        ...

    def case_prints(self, capture_id: str) -> list[CasePrint]:
        """The case's kept prints, templates opened, images not (oldest first); none whose
        traveler's key is shredded."""
        ...

    def case_print_image(self, print_id: str) -> CasePrint | None:
        """One kept print with its image opened; None if it is gone or has no image."""
        ...


class KioskRepository(Protocol):
    """Kiosks (pairing codes, then devices), the flight each lane boards, and the anonymous
    opt-out requests travelers make at a kiosk."""

    def add_device(self, device: KioskDevice) -> None: ...
    def get_device(self, device_id: str) -> KioskDevice | None: ...
    def device_by_token(self, token_hash: str) -> KioskDevice | None: ...
    def device_by_code(self, code_hash: str) -> KioskDevice | None: ...
    def devices(self) -> list[KioskDevice]:
        """Paired and revoked devices, newest first (kiosks still showing a code are not
        devices yet)."""
        ...

    def count_waiting(self, now: datetime, network: str | None = None) -> int:
        """Kiosks showing a code that has not expired (asked from ``network``, if given)."""
        ...

    def waiting(self, now: datetime) -> list[KioskDevice]:
        """Kiosks showing a code that has not expired, oldest first."""
        ...

    def delete_waiting(self, device_id: str) -> int:
        """Forget a kiosk still showing its code (it asks again); 0 if it is paired or gone."""
        ...

    def delete_expired_codes(self, now: datetime) -> int:
        """Forget kiosks whose code expired before anyone paired them."""
        ...

    def pair(
        self, device_id: str, carrier: str, port: str, lane: str, at: datetime, by: str
    ) -> None:
        """Bind the device to its lane and forget its code (a code is used once)."""
        ...

    def issue_session(self, device_id: str, token_hash: str, at: datetime) -> None: ...
    def revoke(self, device_id: str, at: datetime) -> None: ...
    def touch(self, device_id: str, at: datetime) -> None: ...
    def assign_lane(self, assignment: LaneAssignment) -> None:
        """Set (or replace) the flight the lane is boarding."""
        ...

    def lane_assignment(self, port: str, lane: str) -> LaneAssignment | None: ...
    def lane_assignments(self) -> list[LaneAssignment]: ...
    def add_opt_out_request(self, request: KioskOptOutRequest) -> None: ...
    def opt_out_requests(
        self, pending_only: bool, limit: int | None = None
    ) -> list[KioskOptOutRequest]:
        """Newest first; at most ``limit`` (None: all)."""
        ...

    def count_opt_out_requests(self, pending_only: bool, device_id: str | None = None) -> int:
        """How many there are (of one kiosk's, when ``device_id`` is given)."""
        ...

    def handle_opt_out_request(self, request_id: str, at: datetime, by: str) -> bool:
        """Mark a pending request handled; False if it is unknown or was handled already."""
        ...

    def record_capture_notice(
        self, capture_id: str, device_id: str, notice_version: str, language: str, at: datetime
    ) -> None: ...
    def capture_notice(self, capture_id: str) -> tuple[str, str] | None:
        """The (notice version, language) a kiosk showed before this capture."""
        ...


class UnitOfWork(Protocol):
    flights: FlightRepository
    travelers: TravelerRepository
    captures: CaptureRepository
    cases: CaseRepository
    policies: PolicyRepository
    audit: AuditRepository
    admissions: AdmissionRepository
    watchlist: WatchlistRepository
    access: AccessRepository
    outbox: OutboxRepository
    retention: RetentionRepository
    data_keys: DataKeyRepository
    fingerprints: FingerprintRepository
    generations: CacheGenerations
    kiosks: KioskRepository

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None: ...
    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once this unit of work has committed (never if it rolls back)."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work. A writing one takes the database's write lock when it begins
        (SQLite ``BEGIN IMMEDIATE``), so read-then-write can never deadlock; a read-only one
        does not, and must not write."""
        ...

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...

    def probe_write(self, now: datetime) -> None:
        """Raise (``StorageUnavailableError``) if the database cannot store a row now."""
        ...

    def scrub(self) -> None:
        """After personal data was deleted: make sure no copy of the deleted bytes stays in
        the database's own files (SQLite: its write-ahead log, checkpointed and truncated;
        deleted pages are zeroed as they are freed). PostgreSQL relies on crypto-shredding."""
        ...


class ReportQueries(Protocol):
    """Read models for reports that cut across aggregates. Counts and identifiers; the
    overstay report also opens the names officers act on."""

    def in_country_overstays(self, before: date, limit: int | None = None) -> list[Admission]: ...
    def out_of_country_overstays(
        self, since: date, until: date, limit: int | None = None
    ) -> list[Admission]: ...
    def exits_without_entry(self, since: date, until: date) -> list[tuple[str, date, str]]: ...
    def exit_confirmations(self, since: datetime, until: datetime) -> list[ExitConfirmation]: ...
    def traveler_identities(self, traveler_ids: list[str]) -> dict[str, TravelerIdentity]: ...
    def retention_counts(self, now: datetime, policy: Policy) -> dict[str, dict[str, int]]:
        """Per kind: how many items are held, and how many a purge at ``now`` under
        ``policy`` would delete (``overdue``)."""
        ...

    def oldest_held(self) -> dict[str, datetime | None]:
        """Per biometric kind (reference templates, enrolled fingerprints, prints kept on
        console cases): when the oldest item still held was recorded; None if none is."""
        ...

    def decision_counts(self, since: datetime, until: datetime) -> dict[str, int]: ...
    def outcomes_by_sex(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]: ...


class BoardQueries(Protocol):
    """Read models for the console's boards and feeds."""

    def flight_board(
        self, since: datetime, until: datetime
    ) -> list[tuple[Flight, FlightCounts]]: ...
    def recent_captures(
        self, flight_id: str | None, limit: int, open_only: bool = False
    ) -> list[CaptureSummary]: ...


class EncounterHook(Protocol):
    """Called in the unit of work that recorded an encounter, with the live template if any
    and how many frames it fuses."""

    def __call__(
        self,
        uow: UnitOfWork,
        encounter: Encounter,
        flight: Flight,
        live: NDArray[np.float32] | None,
        /,
        frames: int = 1,
    ) -> None: ...


T = TypeVar("T")
ATTEMPTS = 5


def in_transaction(
    factory: UnitOfWorkFactory, work: Callable[[UnitOfWork], T], attempts: int = ATTEMPTS
) -> T:
    """Run ``work`` in a writing unit of work and commit it. When another writer got to a
    shared row first (the audit log's head, most often), the *whole* transaction runs again:
    never half of it."""
    for attempt in range(1, attempts + 1):
        try:
            with factory() as uow:
                result = work(uow)
                uow.commit()
                return result
        except TransactionConflictError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
