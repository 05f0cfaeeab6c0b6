"""An in-memory implementation of the unit-of-work port (``services.unit_of_work``).

State lives in one :class:`FakeDatabase`. Entering a :class:`FakeUnitOfWork` takes a private
deep copy of the committed tables; ``commit()`` publishes that copy in one assignment; leaving
the ``with`` block without committing throws it away. ``after_commit`` callbacks run right
after a successful publish, in the order they were registered, and never otherwise. A
``read_only=True`` unit of work raises ``AssertionError`` on any write.

Concurrency: a writing unit of work that commits changes after another writer has committed
since it began raises :class:`~entryexit.errors.TransactionConflictError` (optimistic
concurrency; set ``detect_conflicts=False`` to let the last writer win). A service that opens a
second writing unit of work while its first is still open will therefore see a conflict: on
SQLite the same code would wait on its own write lock.

Sealing is not simulated: biometric values are kept as the bytes they were given. Data keys
and key-encryption-key ids are modelled (shredding makes a traveler's details unreadable;
rotation re-labels keys under the current KEK) so that privacy code paths behave as in SQL.

Every repository method mirrors the SQL store's semantics (``adapters.storage.store`` and its
query mixins), including its ordering and ``NULL`` behaviour where it matters.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar

from entryexit.domain.access import Role, StoredApiKey
from entryexit.domain.admission import Admission, ExitLink
from entryexit.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    chain,
    head_problem,
    sign_head,
    with_mac,
)
from entryexit.domain.conflicts import ConflictCursor, ConflictPage, ConflictQuery, ConflictStatus
from entryexit.domain.kiosk import KioskDevice, KioskOptOutRequest, LaneAssignment
from entryexit.domain.model import (
    AGENCY,
    CitizenshipClass,
    ConflictSide,
    Direction,
    DocumentKey,
    DocumentType,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestConflict,
    ManifestTraveler,
    PhotoSource,
)
from entryexit.domain.policy import DataKind, Policy
from entryexit.errors import (
    AuditLogUntrustedError,
    ConflictError,
    NotFoundError,
    StorageUnavailableError,
    TransactionConflictError,
)
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
from entryexit.services.unit_of_work import (
    AccessRepository,
    AdmissionRepository,
    AuditRepository,
    BoardQueries,
    CacheGenerations,
    CaptureRepository,
    CaseRepository,
    DataKeyRepository,
    FingerprintRepository,
    FlightRepository,
    KioskRepository,
    OutboxMessage,
    OutboxRepository,
    ParkedWork,
    PolicyRepository,
    ReportQueries,
    RetentionRepository,
    TravelerRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    WatchlistRepository,
)

# The same audit key as ``tests.fakes.StaticKeyProvider.audit_key()``, so that
# ``services.audit`` verifies the fake's chain with that key provider.
TEST_AUDIT_KEY = b"\x02" * 32
TEST_KEK_ID = "k1"
ERASED = "(erased)"  # as adapters.storage.store.ERASED
OPEN_CASE_DECISIONS = ("no_match", "manual")

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def new_id() -> str:
    return str(uuid.uuid4())


class FakeIntegrityError(Exception):
    """A write the SQL schema would refuse (duplicate primary or unique key): in the fake it
    means the test or the service did something the database would not allow."""


class InjectedCommitError(RuntimeError):
    """The default error of :meth:`FakeUnitOfWorkFactory.fail_commit_after`."""


class DatabaseUnreachableError(ConnectionError):
    """Raised by :meth:`FakeUnitOfWorkFactory.ping` when ``reachable`` is False."""


# --- rows --------------------------------------------------------------------------------


@dataclass
class DocumentRow:
    """A travel document. ``details`` are what the last manifest declared (None: only the
    number is known, from an enrolment); they are readable only while the traveler's data key
    is the one they were sealed under (``sealed_under``)."""

    id: str
    traveler_id: str
    key: DocumentKey
    sealed_under: str
    details: ManifestTraveler | None = None
    # Who set the details (a carrier, AGENCY; None: not recorded), as documents.details_by.
    details_by: str | None = None


@dataclass
class ConflictRow:
    """A manifest conflict: details a carrier proposed for a document another one set."""

    id: str
    document: DocumentKey
    traveler_id: str
    sealed_under: str
    flight_id: str
    proposed_by: str
    held_by: str | None
    proposed: ManifestTraveler
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: ConflictSide | None = None


@dataclass
class DataKeyRow:
    id: str
    kek_id: str
    created_at: datetime


@dataclass
class ManifestEntryRow:
    document_id: str
    traveler_id: str
    added_at: datetime
    # What a carrier's upload itself sent, and the data key id it is "sealed" under.
    sent: ManifestTraveler | None = None
    sent_under: str | None = None


@dataclass(frozen=True)
class TemplateRow:
    id: str
    document_id: str
    traveler_id: str
    source: PhotoSource
    model: str
    vector: bytes
    created_at: datetime
    expires_at: datetime | None
    image: bytes | None


@dataclass
class CaptureRow:
    record: CaptureRecord
    image: bytes | None
    image_expires_at: datetime | None
    kek_id: str | None
    resolution: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None


@dataclass
class PolicyRow:
    policy: StoredPolicy
    effective_from: datetime
    loaded_at: datetime


@dataclass(frozen=True)
class AuditHeadRow:
    sequence: int
    hash: str
    signature: str


@dataclass
class AdmissionRow:
    id: str
    traveler_id: str | None
    admission_class: str
    created_at: datetime
    admitted_on: date | None = None
    admitted_until: date | None = None
    entry_encounter_id: str | None = None
    entry_flight_id: str | None = None
    exit_encounter_id: str | None = None
    exit_flight_id: str | None = None
    exit_traveler_id: str | None = None
    exited_on: date | None = None
    link: ExitLink | None = None
    link_score: float | None = None
    template: bytes | None = None
    template_model: str | None = None
    template_photos: int | None = None
    kek_id: str | None = None

    def admission(self) -> Admission:
        return Admission(
            id=self.id,
            traveler_id=self.traveler_id,
            admission_class=self.admission_class,
            admitted_on=self.admitted_on,
            admitted_until=self.admitted_until,
            entry_flight_id=self.entry_flight_id,
            exit_flight_id=self.exit_flight_id,
            exited_on=self.exited_on,
            link=self.link,
            link_score=self.link_score,
        )


@dataclass
class WatchlistRow:
    entry: WatchlistEntry
    template: bytes
    kek_id: str
    removed_at: datetime | None = None


@dataclass
class UserRow:
    id: str
    username: str
    password_hash: str
    role: Role
    created_at: datetime
    failed_attempts: int = 0
    locked_until: datetime | None = None
    disabled_at: datetime | None = None

    def user(self) -> ConsoleUser:
        return ConsoleUser(
            id=self.id,
            username=self.username,
            password_hash=self.password_hash,
            role=self.role,
            failed_attempts=self.failed_attempts,
            locked_until=self.locked_until,
            disabled=self.disabled_at is not None,
        )


@dataclass
class FakeTables:
    """Every table, keyed as the SQL schema's primary (or unique) keys. Dicts keep insertion
    order, which stands in for the database's order where SQL leaves ties unordered."""

    api_keys: dict[str, StoredApiKey] = field(default_factory=dict)  # by prefix
    flights: dict[str, Flight] = field(default_factory=dict)
    travelers: dict[str, datetime] = field(default_factory=dict)  # id -> created_at
    documents: dict[DocumentKey, DocumentRow] = field(default_factory=dict)
    data_keys: dict[str, DataKeyRow] = field(default_factory=dict)  # by traveler id
    manifests: dict[str, dict[DocumentKey, ManifestEntryRow]] = field(default_factory=dict)
    # upload id -> (flight id, staged_at, the travelers staged so far)
    manifest_staging: dict[str, tuple[str, datetime, list[ManifestTraveler]]] = field(
        default_factory=dict
    )
    manifest_conflicts: dict[str, ConflictRow] = field(default_factory=dict)
    templates: dict[str, TemplateRow] = field(default_factory=dict)
    captures: dict[str, CaptureRow] = field(default_factory=dict)
    encounters: dict[str, Encounter] = field(default_factory=dict)
    policies: dict[str, PolicyRow] = field(default_factory=dict)
    audit_events: list[AuditEvent] = field(default_factory=list)
    audit_head: AuditHeadRow | None = None
    admissions: dict[str, AdmissionRow] = field(default_factory=dict)
    watchlist: dict[str, WatchlistRow] = field(default_factory=dict)
    alerts: dict[str, AlertRecord] = field(default_factory=dict)
    users: dict[str, UserRow] = field(default_factory=dict)
    sessions: dict[str, ConsoleSession] = field(default_factory=dict)  # by token hash
    # (user id, source key) -> failed sign-ins from that address
    sign_in_failures: dict[tuple[str, str], SignInFailures] = field(default_factory=dict)
    outbox: dict[str, OutboxMessage] = field(default_factory=dict)
    outbox_attempts: dict[str, int] = field(default_factory=dict)
    outbox_parked: set[str] = field(default_factory=set)
    outbox_parked_at: dict[str, datetime] = field(default_factory=dict)
    # (traveler id, finger, engine) -> (id, template, quality, created_at, expires_at)
    fingerprints: dict[tuple[str, int, str], FingerprintRow] = field(default_factory=dict)
    # Live prints kept on console cases, by id (the image kept in clear: a fake has no seal).
    case_prints: dict[str, CasePrint] = field(default_factory=dict)
    # (scope, key) -> (what the claim stored, expires_at)
    idempotency: dict[tuple[str, str], tuple[StoredIdempotency, datetime | None]] = field(
        default_factory=dict
    )
    generations: dict[str, int] = field(default_factory=dict)
    kiosk_devices: dict[str, KioskDevice] = field(default_factory=dict)
    lane_assignments: dict[tuple[str, str], LaneAssignment] = field(default_factory=dict)
    kiosk_requests: dict[str, KioskOptOutRequest] = field(default_factory=dict)
    # capture id -> (device id, notice version, language)
    kiosk_notices: dict[str, tuple[str, str, str]] = field(default_factory=dict)


@dataclass
class FingerprintRow:
    id: str
    document: DocumentKey
    template: bytes
    quality: int | None
    created_at: datetime
    expires_at: datetime


@dataclass
class FakeDatabase:
    """The committed state (``tables``), a version bumped by every publishing commit, and the
    configuration a real database gets from its key provider."""

    tables: FakeTables = field(default_factory=FakeTables)
    audit_key: bytes = TEST_AUDIT_KEY
    current_kek: str = TEST_KEK_ID
    version: int = 0


# --- shared reads (over any FakeTables: a unit of work's copy or the committed state) ------


def _sent(t: FakeTables, entry: ManifestEntryRow) -> dict[str, str]:
    """What a carrier sent for the entry, as the SQL store opens it (empty if nothing was kept
    or the traveler's key changed since)."""
    data_key = t.data_keys.get(entry.traveler_id)
    if entry.sent is None or data_key is None or data_key.id != entry.sent_under:
        return {}
    shim = DocumentRow(entry.document_id, entry.traveler_id, entry.sent.document, entry.sent_under)
    shim.details = entry.sent
    return _personal(t, shim)


def _shows_citizen(
    key: DocumentKey, doc: DocumentRow, home_state: str, carrier_word: bool = False
) -> bool:
    """As the SQL store's ``citizen_travelers``: a home-state passport, or the citizen class
    as the agency stated it (or as stored before who set it was recorded; with
    ``carrier_word``, whoever stated it)."""
    if doc.details is None:
        return False
    stated = doc.details.citizenship_class is CitizenshipClass.CITIZEN and (
        carrier_word or doc.details_by in (None, AGENCY)
    )
    return stated or (
        doc.details.document_type in (DocumentType.PASSPORT, DocumentType.ID_CARD)
        and key.issuing_state == home_state
    )


def _personal(t: FakeTables, doc: DocumentRow) -> dict[str, str]:
    """A document's details as the SQL store opens them: empty once the key is shredded
    (or replaced), only the number before a manifest described the document."""
    data_key = t.data_keys.get(doc.traveler_id)
    if data_key is None or data_key.id != doc.sealed_under:
        return {}
    if doc.details is None:
        return {"number": doc.key.number}
    d = doc.details
    return {
        "number": d.document.number,
        "surname": d.surname,
        "given_names": d.given_names,
        "date_of_birth": d.date_of_birth.isoformat(),
        "sex": d.sex.value,
        "nationality": d.nationality,
    }


def _optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _due(value: datetime | None, now: datetime) -> bool:
    """SQL's ``expires_at <= now``: NULL (kept until deleted) is never due."""
    return value is not None and value <= now


def _summary(row: CaptureRow) -> CaptureSummary:
    r = row.record
    return CaptureSummary(
        id=r.id,
        flight_id=r.flight_id,
        gate=r.gate,
        received_at=r.received_at,
        decision=r.decision,
        reason=r.reason,
        score=r.score,
        traveler_id=r.traveler_id,
        has_image=row.image is not None,
        resolution=row.resolution,
        resolved_by=row.resolved_by,
    )


def _limited(items: Iterable[T], limit: int | None) -> list[T]:
    found = list(items)
    return found if limit is None else found[: max(limit, 0)]


# --- the unit of work --------------------------------------------------------------------


class FakeUnitOfWork:
    """One transaction over a private copy of the committed tables."""

    def __init__(self, factory: FakeUnitOfWorkFactory, *, read_only: bool = False) -> None:
        self._factory = factory
        self._db = factory.database
        self.read_only = read_only
        self.state = "new"  # new -> active -> committed | failed -> closed
        self.dirty = False
        self.committed = False
        self._tables: FakeTables | None = None
        self._base_version = -1
        self._callbacks: list[Callable[[], object]] = []
        self.flights: FlightRepository = _Flights(self)
        self.travelers: TravelerRepository = _Travelers(self)
        self.captures: CaptureRepository = _Captures(self)
        self.cases: CaseRepository = _Cases(self)
        self.policies: PolicyRepository = _Policies(self)
        self.audit: AuditRepository = _Audit(self)
        self.admissions: AdmissionRepository = _Admissions(self)
        self.watchlist: WatchlistRepository = _Watchlist(self)
        self.access: AccessRepository = _Access(self)
        self.outbox: OutboxRepository = _Outbox(self)
        self.retention: RetentionRepository = _Retention(self)
        self.data_keys: DataKeyRepository = _DataKeys(self)
        self.fingerprints: FingerprintRepository = _Fingerprints(self)
        self.generations: CacheGenerations = _Generations(self)
        self.kiosks: KioskRepository = _Kiosks(self)

    # --- the protocol ----------------------------------------------------------------
    def __enter__(self) -> Self:
        assert self.state == "new", "a unit of work is entered once"
        self._base_version = self._db.version
        self._tables = copy.deepcopy(self._db.tables)
        self.state = "active"
        self._factory.opened.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.committed and self.dirty:
            self._factory.rollbacks += 1
        self._tables = None
        self._callbacks.clear()
        self.state = "closed"

    def commit(self) -> None:
        assert self.state == "active", f"commit() on a {self.state} unit of work"
        if self.read_only:
            self._finish_commit()
            return
        try:
            self._factory._before_commit(self)
            stale = self._db.version != self._base_version
            if self.dirty and self._factory.detect_conflicts and stale:
                self._factory.conflicts += 1
                raise TransactionConflictError(
                    "another unit of work committed since this one began"
                )
        except BaseException:
            self.state = "failed"
            raise
        if self.dirty:
            assert self._tables is not None
            self._db.tables = self._tables  # the publish: one assignment
            self._tables = copy.deepcopy(self._tables)  # later reads must not alias it
            self._db.version += 1
        if not self._factory._seeding:
            self._factory.commits += 1
        self._finish_commit()

    def after_commit(self, callback: Callable[[], object]) -> None:
        assert self.state == "active", f"after_commit() on a {self.state} unit of work"
        self._callbacks.append(callback)

    # --- helpers ---------------------------------------------------------------------
    @property
    def tables(self) -> FakeTables:
        """This unit of work's private copy (for assertions inside the ``with`` block)."""
        return self._read()

    def _finish_commit(self) -> None:
        self.committed = True
        self.state = "committed"
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def _read(self) -> FakeTables:
        assert self.state in ("active", "committed"), (
            f"read through a {self.state} unit of work (use it inside its with block)"
        )
        assert self._tables is not None
        return self._tables

    def _write(self) -> FakeTables:
        assert not self.read_only, "write through a read-only unit of work"
        assert self.state == "active", (
            f"write through a {self.state} unit of work (after commit, or outside its with block)"
        )
        assert self._tables is not None
        self.dirty = True
        return self._tables

    @property
    def audit_key(self) -> bytes:
        return self._db.audit_key

    @property
    def current_kek(self) -> str:
        return self._db.current_kek


class _Repository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def _r(self) -> FakeTables:
        return self._uow._read()

    def _w(self) -> FakeTables:
        return self._uow._write()


def _data_key(t: FakeTables, traveler_id: str, kek_id: str, now: datetime) -> DataKeyRow:
    """The traveler's data key, created on first use (as ``SqlStore._data_key``)."""
    key = t.data_keys.get(traveler_id)
    if key is None:
        key = t.data_keys[traveler_id] = DataKeyRow(new_id(), kek_id, now)
    return key


def _document_for(t: FakeTables, key: DocumentKey, kek_id: str, now: datetime) -> DocumentRow:
    """The document row for ``key``, creating it (and a new traveler) when first seen."""
    row = t.documents.get(key)
    if row is not None:
        return row
    traveler_id = new_id()
    t.travelers[traveler_id] = now
    data_key = _data_key(t, traveler_id, kek_id, now)
    row = t.documents[key] = DocumentRow(new_id(), traveler_id, key, data_key.id)
    return row


class _Flights(_Repository):
    def add(self, flight: Flight) -> None:
        t = self._w()
        if flight.id in t.flights:
            raise FakeIntegrityError(f"flight {flight.id} exists")
        # As the SQL store: a new flight is never staged, whatever the object says.
        t.flights[flight.id] = replace(
            flight, gallery_version=0, gallery_staged_at=None, gallery_expires_at=None
        )

    def get(self, flight_id: str) -> Flight | None:
        return self._r().flights.get(flight_id)

    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        t = self._w()
        flight = t.flights.get(flight_id)
        if flight is None:
            return 0
        t.flights[flight_id] = replace(
            flight,
            gallery_version=flight.gallery_version + 1,
            gallery_staged_at=now,
            gallery_expires_at=expires_at,
        )
        return flight.gallery_version + 1

    def replace_manifest(
        self,
        flight_id: str,
        travelers: list[ManifestTraveler],
        now: datetime,
        uploader_carrier: str | None = None,
        max_conflicts: int | None = None,
        max_open_conflicts: int | None = None,
    ) -> ManifestChange:
        t = self._w()
        existing = t.manifests.get(flight_id, {})
        open_before = sum(
            1
            for c in t.manifest_conflicts.values()
            if c.proposed_by == uploader_carrier and c.resolved_at is None
        )
        opened = 0
        after: dict[DocumentKey, ManifestEntryRow] = {}
        added = updated = 0
        held = (
            set()
            if uploader_carrier is None
            else {
                document
                for other, entries in t.manifests.items()
                if other != flight_id and t.flights[other].carrier != uploader_carrier
                for document in entries
            }
        )
        kept = holding = over_limit = 0
        for traveler in travelers:
            if traveler.document in after:
                # The SQL store inserts the entry twice and the unique constraint refuses it.
                raise FakeIntegrityError(f"{traveler.document} is twice on the manifest")
            document = _document_for(t, traveler.document, self._uow.current_kek, now)
            data_key = _data_key(t, document.traveler_id, self._uow.current_kek, now)
            readable = document.sealed_under == data_key.id
            # The agency's upload makes details a carrier set its own, changed or not.
            claimed = uploader_carrier is None and document.details_by not in (None, AGENCY)
            if document.details != traveler or not readable or claimed:
                by = document.details_by
                if (
                    uploader_carrier is None
                    or by == uploader_carrier
                    or (by is None and traveler.document not in held)
                ):
                    document.details = traveler
                    document.sealed_under = data_key.id
                    document.details_by = uploader_carrier or AGENCY
                    if uploader_carrier is None:
                        for conflict in t.manifest_conflicts.values():
                            if conflict.document == document.key and conflict.resolved_at is None:
                                conflict.resolved_at = now
                                conflict.resolution = ConflictSide.SUPERSEDED
                else:
                    kept += 1
                    room = (max_conflicts is None or holding < max_conflicts) and (
                        max_open_conflicts is None or open_before + opened < max_open_conflicts
                    )
                    result = self._record_conflict(
                        t, document, traveler, flight_id, uploader_carrier, now, room
                    )
                    if result == "over":
                        over_limit += 1
                    else:
                        holding += 1
                        opened += result == "opened"
            sent = (traveler, data_key.id) if uploader_carrier is not None else (None, None)
            if traveler.document in existing:
                after[traveler.document] = replace(
                    existing[traveler.document], sent=sent[0], sent_under=sent[1]
                )
                updated += 1
            else:
                after[traveler.document] = ManifestEntryRow(
                    document.id, document.traveler_id, now, *sent
                )
                added += 1
        removed = len(existing.keys() - after.keys())
        t.manifests[flight_id] = after
        return ManifestChange(
            added=added,
            removed=removed,
            updated=updated,
            total=len(after),
            details_kept=kept,
            conflicts=kept - over_limit,
            conflicts_over_limit=over_limit,
        )

    @staticmethod
    def _record_conflict(
        t: FakeTables,
        document: DocumentRow,
        traveler: ManifestTraveler,
        flight_id: str,
        carrier: str,
        now: datetime,
        room: bool = True,
    ) -> str:
        for conflict in t.manifest_conflicts.values():
            if (
                conflict.document == document.key
                and conflict.proposed_by == carrier
                and conflict.resolved_at is None
            ):
                conflict.proposed, conflict.flight_id = traveler, flight_id
                conflict.held_by = document.details_by
                return "refreshed"
        if not room:
            return "over"
        conflict_id = new_id()
        t.manifest_conflicts[conflict_id] = ConflictRow(
            conflict_id,
            document.key,
            document.traveler_id,
            t.data_keys[document.traveler_id].id,
            flight_id,
            carrier,
            document.details_by,
            traveler,
            now,
        )
        return "opened"

    def manifest_conflict_page(self, query: ConflictQuery) -> ConflictPage:
        status = query.status
        found = sorted(
            (
                c
                for c in self.manifest_conflicts(open_only=status is ConflictStatus.OPEN)
                if (status is not ConflictStatus.RESOLVED or c.resolved_at is not None)
                and query.flight_id in (None, c.flight_id)
                and query.carrier in (None, c.proposed_by)
                and (
                    query.after is None
                    or (c.created_at, c.id) > (query.after.created_at, query.after.id)
                )
            ),
            key=lambda c: (c.created_at, c.id),
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        return ConflictPage(page, ConflictCursor.of(page[-1]) if more else None)

    def manifest_conflicts(
        self, open_only: bool = True, conflict_id: str | None = None
    ) -> list[ManifestConflict]:
        t = self._r()
        found = []
        for row in t.manifest_conflicts.values():
            if (open_only and row.resolved_at is not None) or conflict_id not in (None, row.id):
                continue
            document = t.documents.get(row.document)
            key = t.data_keys.get(row.traveler_id)
            readable = key is not None and key.id == row.sealed_under
            kept = (
                document.details
                if document is not None and "surname" in _personal(t, document)
                else None
            )
            found.append(
                ManifestConflict(
                    id=row.id,
                    document_id=document.id if document is not None else "",
                    flight_id=row.flight_id,
                    proposed_by=row.proposed_by,
                    held_by=row.held_by,
                    kept=kept,
                    proposed=row.proposed if readable else None,
                    created_at=row.created_at,
                    resolved_at=row.resolved_at,
                    resolution=row.resolution,
                    traveler_id=row.traveler_id,
                )
            )
        return found

    def resolve_manifest_conflict(
        self, conflict_id: str, side: ConflictSide, now: datetime
    ) -> ManifestConflict:
        found = self.manifest_conflicts(conflict_id=conflict_id)
        if not found:
            raise NotFoundError("no open manifest conflict has this id")
        t = self._w()
        row = t.manifest_conflicts[conflict_id]
        if side is ConflictSide.PROPOSED:
            document = t.documents.get(row.document)
            if document is None:
                raise ConflictError("the document is gone (purged or erased): keep it instead")
            if found[0].proposed is None:
                raise ConflictError(
                    "the proposed details can no longer be read (the traveler's data key"
                    " changed since they were sealed): keep the details in force instead"
                )
            document.details, document.sealed_under = row.proposed, row.sealed_under
            document.details_by = row.proposed_by
        row.resolved_at, row.resolution = now, side
        return found[0]

    def stage_manifest_batch(
        self,
        flight_id: str,
        upload_id: str,
        travelers: Sequence[ManifestTraveler],
        now: datetime,
        details_by: str | None = None,
    ) -> None:
        t = self._w()
        _, staged_at, staged = t.manifest_staging.get(upload_id, (flight_id, now, []))
        for traveler in travelers:
            if any(s.document == traveler.document for s in staged):
                raise FakeIntegrityError(f"{traveler.document} is twice on the manifest")
            if traveler.document not in t.documents:
                # As the SQL store: a new document gets its details at once (on no manifest).
                document = _document_for(t, traveler.document, self._uow.current_kek, now)
                document.details = traveler
                document.details_by = details_by
            staged.append(traveler)
        t.manifest_staging[upload_id] = (flight_id, staged_at, staged)

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
        t = self._w()
        _, _, staged = t.manifest_staging.get(upload_id, (flight_id, now, []))
        if len(staged) != expected:
            raise ConflictError(f"the upload holds {len(staged)} of {expected} travelers")
        del t.manifest_staging[upload_id]
        return self.replace_manifest(
            flight_id, staged, now, uploader_carrier, max_conflicts, max_open_conflicts
        )

    def discard_manifest_versions(
        self,
        upload_id: str | None = None,
        staged_before: datetime | None = None,
        limit: int | None = None,
        flight_id: str | None = None,
    ) -> int:
        t = self._w()
        gone = [
            key
            for key, (flight, staged_at, _) in t.manifest_staging.items()
            if key == upload_id
            or (
                upload_id is None
                and staged_before is not None
                and staged_at <= staged_before
                and flight_id in (None, flight)
            )
        ]
        for key in gone:
            del t.manifest_staging[key]
        return len(gone)

    def has_traveler(self, flight_id: str, traveler_id: str) -> bool:
        entries = self._r().manifests.get(flight_id, {})
        return any(e.traveler_id == traveler_id for e in entries.values())

    def manifest_status(
        self,
        flight_id: str,
        model: str,
        carrier: str | None = None,
        *,
        own_only: bool = False,
    ) -> list[ManifestStatus]:
        t = self._r()
        entries = t.manifests.get(flight_id, {})
        on_manifest = {e.traveler_id for e in entries.values()}
        with_photo = {r.traveler_id for r in t.templates.values() if r.model == model} & on_manifest
        methods = {
            e.traveler_id: e.method for e in t.encounters.values() if e.flight_id == flight_id
        }
        statuses = []
        for key, entry in entries.items():
            doc = t.documents[key]
            personal = _personal(t, doc)
            details = doc.details
            if (
                carrier is not None
                and doc.details_by != carrier
                and (own_only or doc.details_by not in (None, AGENCY))
            ):
                own = _sent(t, entry)
                if own or own_only:
                    personal, details = own, entry.sent if own else None
            hidden = own_only and not personal
            statuses.append(
                ManifestStatus(
                    traveler_id=entry.traveler_id,
                    document=DocumentKey(
                        key.issuing_state, personal.get("number", "" if hidden else ERASED)
                    ),
                    surname=personal.get("surname", "" if hidden else ERASED),
                    given_names=personal.get("given_names", ""),
                    citizenship_class=details.citizenship_class.value if details else "",
                    has_photo=not own_only and entry.traveler_id in with_photo,
                    processed=entry.traveler_id in methods,
                    date_of_birth=_optional_date(personal.get("date_of_birth")),
                    opted_out=methods.get(entry.traveler_id) is EncounterMethod.OPT_OUT,
                    booking_reference=details.booking_reference if details else None,
                    nationality=personal.get("nationality", ""),
                    document_type=details.document_type.value if details else "",
                )
            )
        statuses.sort(key=lambda s: (s.surname, s.given_names, s.document.number))
        return statuses

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        t = self._r()
        travelers = [
            doc.details
            for key in t.manifests.get(flight_id, {})
            if (doc := t.documents[key]).details is not None and "surname" in _personal(t, doc)
        ]
        travelers.sort(key=lambda m: (m.surname, m.given_names, m.document.number))
        return travelers


class _Travelers(_Repository):
    def traveler_for_document(self, document: DocumentKey) -> str | None:
        row = self._r().documents.get(document)
        return None if row is None else row.traveler_id

    def profile(self, traveler_id: str) -> TravelerProfile:
        t = self._r()
        for doc in t.documents.values():
            if doc.traveler_id == traveler_id and doc.details is not None:
                personal = _personal(t, doc)
                return TravelerProfile(
                    doc.details.citizenship_class,
                    _optional_date(personal.get("date_of_birth")),
                    personal.get("nationality"),
                    frozenset(
                        key.issuing_state
                        for key, other in t.documents.items()
                        if other.traveler_id == traveler_id
                        and other.details is not None
                        and other.details.document_type
                        in (DocumentType.PASSPORT, DocumentType.ID_CARD)
                    ),
                )
        return TravelerProfile(None, None)

    def citizenship_class(
        self, traveler_id: str, flight: Flight | None = None
    ) -> CitizenshipClass | None:
        t = self._r()
        if flight is not None:
            # As the SQL store: the flight's own carrier's copy where a rival holds the details.
            for key, entry in t.manifests.get(flight.id, {}).items():
                doc = t.documents[key]
                if entry.traveler_id != traveler_id or doc.details is None:
                    continue
                if doc.details_by not in (None, AGENCY, flight.carrier) and _sent(t, entry):
                    assert entry.sent is not None
                    return entry.sent.citizenship_class
                return doc.details.citizenship_class
        return self.profile(traveler_id).citizenship_class

    def stated_details(
        self, traveler_ids: Collection[str], *, sealed: bool = True, proposed: bool = False
    ) -> list[StatedDetails]:
        t = self._r()
        wanted = set(traveler_ids)
        found: list[StatedDetails] = []
        for key, doc in t.documents.items():
            if doc.traveler_id not in wanted or doc.details is None:
                continue
            open_conflicts = sorted(
                (
                    c
                    for c in t.manifest_conflicts.values()
                    if c.document == key and c.resolved_at is None
                ),
                key=lambda c: (c.created_at, c.id),
            )
            born = _optional_date(_personal(t, doc).get("date_of_birth")) if sealed else None
            found.append(
                StatedDetails(
                    doc.traveler_id,
                    doc.details.citizenship_class,
                    born,
                    doc.details_by,
                )
            )
            if not proposed or doc.details_by == AGENCY:
                continue
            data_key = t.data_keys.get(doc.traveler_id)
            for c in open_conflicts:
                readable = data_key is not None and data_key.id == c.sealed_under
                found.append(
                    StatedDetails(
                        c.traveler_id,
                        c.proposed.citizenship_class,
                        c.proposed.date_of_birth if sealed and readable else None,
                        c.proposed_by,
                        c.id,
                    )
                )
        return found

    def citizens(
        self, traveler_ids: Collection[str], home_state: str, *, sealed: bool = True
    ) -> frozenset[str]:
        t = self._r()
        wanted = set(traveler_ids)
        found = {
            doc.traveler_id
            for key, doc in t.documents.items()
            if doc.traveler_id in wanted and _shows_citizen(key, doc, home_state, True)
        }
        if sealed:
            for traveler in sorted(wanted - found):
                if any(
                    _personal(t, doc).get("nationality") == home_state
                    for doc in t.documents.values()
                    if doc.traveler_id == traveler and doc.details is not None
                ):
                    found.add(traveler)
        return frozenset(found)

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
        t = self._w()
        row = _document_for(t, document, self._uow.current_kek, now)
        _data_key(t, row.traveler_id, self._uow.current_kek, now)
        template_id = new_id()
        t.templates[template_id] = TemplateRow(
            id=template_id,
            document_id=row.id,
            traveler_id=row.traveler_id,
            source=source,
            model=model,
            vector=bytes(vector),
            created_at=now,
            expires_at=expires_at,
            image=None if image is None else bytes(image),
        )
        return template_id, row.traveler_id

    def gallery_templates(
        self, flight_id: str, model: str, unopenable: set[str] | None = None
    ) -> list[StoredTemplate]:
        t = self._r()
        on_manifest = {e.traveler_id for e in t.manifests.get(flight_id, {}).values()}
        rows = [
            r
            for r in t.templates.values()
            if r.traveler_id in on_manifest and r.model == model and r.traveler_id in t.data_keys
        ]
        rows.sort(key=lambda r: (r.traveler_id, r.created_at))
        return [StoredTemplate(r.traveler_id, r.vector, model) for r in rows]

    def reference_photo(self, traveler_id: str) -> bytes | None:
        t = self._r()
        if traveler_id not in t.data_keys:
            return None
        rows = [
            r for r in t.templates.values() if r.traveler_id == traveler_id and r.image is not None
        ]
        if not rows:
            return None
        return max(rows, key=lambda r: r.created_at).image

    def shred(self, traveler_id: str) -> int:
        t = self._w()
        doomed = [i for i, r in t.templates.items() if r.traveler_id == traveler_id]
        for template_id in doomed:
            del t.templates[template_id]
        t.data_keys.pop(traveler_id, None)
        return len(doomed)


class _Captures(_Repository):
    def add_capture(self, capture: CaptureRecord) -> None:
        t = self._w()
        if capture.id in t.captures:
            raise FakeIntegrityError(f"capture {capture.id} exists")
        image = capture.image
        t.captures[capture.id] = CaptureRow(
            record=capture,
            image=image,
            image_expires_at=capture.image_expires_at if image is not None else None,
            # As the SQL store: a known traveler's image is sealed under their data key.
            kek_id=(
                self._uow.current_kek if image is not None and capture.traveler_id is None else None
            ),
        )

    def add_encounter(self, encounter: Encounter) -> bool:
        t = self._w()
        if encounter.id in t.encounters or any(
            e.flight_id == encounter.flight_id and e.traveler_id == encounter.traveler_id
            for e in t.encounters.values()
        ):
            return False
        t.encounters[encounter.id] = encounter
        return True

    def encounters_of_flight(self, flight_id: str) -> list[Encounter]:
        found = [e for e in self._r().encounters.values() if e.flight_id == flight_id]
        return sorted(found, key=lambda e: e.occurred_at)

    def encounters_of_traveler(self, traveler_id: str) -> list[Encounter]:
        found = [e for e in self._r().encounters.values() if e.traveler_id == traveler_id]
        return sorted(found, key=lambda e: e.occurred_at)

    def find_idempotency(self, scope: str, key: str) -> StoredIdempotency | None:
        found = self._r().idempotency.get((scope, key))
        return None if found is None else found[0]

    def claim_idempotency(self, claim: IdempotencyClaim) -> StoredIdempotency | None:
        found = self._r().idempotency.get((claim.scope, claim.key))
        if found is not None:
            return found[0]
        self._w().idempotency[(claim.scope, claim.key)] = (
            StoredIdempotency(claim.flight_id, claim.request_digest, claim.capture_id, None),
            None,
        )
        return None

    def settle_idempotency(
        self, scope: str, key: str, outcome: str, expires_at: datetime | None
    ) -> None:
        t = self._w()
        stored, _ = t.idempotency[(scope, key)]
        t.idempotency[(scope, key)] = (replace(stored, outcome=outcome), expires_at)


class _Generations(_Repository):
    def bump(self, name: str) -> int:
        t = self._w()
        t.generations[name] = t.generations.get(name, 0) + 1
        return t.generations[name]

    def current(self, name: str) -> int:
        return self._r().generations.get(name, 0)


class _Cases(_Repository):
    def get(self, capture_id: str) -> CaptureSummary | None:
        row = self._r().captures.get(capture_id)
        return None if row is None else _summary(row)

    def capture_image(self, capture_id: str) -> bytes | None:
        row = self._r().captures.get(capture_id)
        return None if row is None else row.image

    def resolve(self, capture_id: str, resolution: str, officer_id: str, now: datetime) -> bool:
        row = self._w().captures.get(capture_id)
        if row is None or row.resolution is not None:
            return False
        row.resolution, row.resolved_at, row.resolved_by = resolution, now, officer_id
        return True


class _Policies(_Repository):
    def add(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool:
        t = self._w()
        existing = t.policies.get(policy.version)
        if existing is not None:
            if existing.policy.sha256 != policy.sha256:
                raise ConflictError(
                    f"policy version {policy.version} is already loaded with different"
                    " content; give the new policy a new version"
                )
            return False
        t.policies[policy.version] = PolicyRow(policy, effective_from, now)
        return True

    def all(self) -> list[StoredPolicy]:
        rows = sorted(self._r().policies.values(), key=lambda p: p.effective_from)
        return [p.policy for p in rows]


def _audit_events(
    t: FakeTables, after_sequence: int, limit: int, action: str | None, actor_key_id: str | None
) -> list[AuditEvent]:
    found = (
        e
        for e in t.audit_events
        if e.sequence > after_sequence
        and (action is None or e.entry.action == action)
        and (actor_key_id is None or e.entry.actor_key_id == actor_key_id)
    )
    return _limited(found, limit)


class _Audit(_Repository):
    def append(self, entry: AuditEntry) -> AuditEvent:
        t = self._w()
        problem = self._problem(t)
        if problem is not None:
            raise AuditLogUntrustedError(f"the audit log cannot be extended: {problem}")
        head = t.audit_head
        sequence = 1 if head is None else head.sequence + 1
        return self._extend(t, entry, sequence, GENESIS_HASH if head is None else head.hash)

    def integrity_problem(self) -> str | None:
        return self._problem(self._r())

    def lock(self) -> None:
        self._w()  # the fake's writing unit of work already runs alone

    def last(self) -> AuditEvent | None:
        events = self._r().audit_events
        return max(events, key=lambda e: e.sequence) if events else None

    def repair(self, entry: AuditEntry) -> AuditEvent:
        t = self._w()
        last = t.audit_events[-1] if t.audit_events else None
        if last is None:
            return self._extend(t, entry, 1, GENESIS_HASH)
        return self._extend(t, entry, last.sequence + 1, last.hash)

    def _problem(self, t: FakeTables) -> str | None:
        head = t.audit_head
        stored = None if head is None else (head.sequence, head.hash, head.signature)
        last = t.audit_events[-1] if t.audit_events else None
        return head_problem(self._uow.audit_key, stored, last)

    def _extend(self, t: FakeTables, entry: AuditEntry, sequence: int, previous: str) -> AuditEvent:
        key = self._uow.audit_key
        event = with_mac(key, chain(entry, sequence, previous))
        t.audit_events.append(event)
        t.audit_head = AuditHeadRow(sequence, event.hash, sign_head(key, sequence, event.hash))
        return event

    def events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        return _audit_events(self._r(), after_sequence, limit, action, actor_key_id)

    def head(self) -> tuple[int, str] | None:
        head = self._r().audit_head
        return None if head is None else (head.sequence, head.signature)


def _open_admission(t: FakeTables, traveler_id: str) -> AdmissionRow | None:
    for row in t.admissions.values():
        if row.traveler_id == traveler_id and row.admitted_on is not None and row.exited_on is None:
            return row
    return None


class _Admissions(_Repository):
    def open(self, new: NewAdmission) -> bool:
        t = self._w()
        if _open_admission(t, new.traveler_id) is not None:
            return False
        if new.id in t.admissions:
            raise FakeIntegrityError(f"admission {new.id} exists")
        t.admissions[new.id] = AdmissionRow(
            id=new.id,
            traveler_id=new.traveler_id,
            admission_class=new.admission_class,
            created_at=new.created_at,
            admitted_on=new.admitted_on,
            admitted_until=new.admitted_until,
            entry_encounter_id=new.entry_encounter_id,
            entry_flight_id=new.entry_flight_id,
            template=new.template,
            template_model=new.template_model,
            template_photos=new.template_photos,
            kek_id=None,  # sealed under the traveler's data key, as the SQL store does
        )
        return True

    def template_photos(self, admission_id: str) -> int | None:
        row = self._r().admissions.get(admission_id)
        return None if row is None else row.template_photos

    def open_of(self, traveler_id: str) -> Admission | None:
        row = _open_admission(self._r(), traveler_id)
        return None if row is None else row.admission()

    def open_templates(
        self, model: str, exclude_traveler: str, limit: int
    ) -> list[tuple[str, bytes]]:
        rows = [
            r
            for r in self._r().admissions.values()
            if r.exited_on is None
            and r.admitted_on is not None
            and r.template is not None
            and r.template_model == model
            # SQL: ``traveler_id != :x`` is never true for a NULL traveler_id.
            and r.traveler_id is not None
            and r.traveler_id != exclude_traveler
        ]
        rows.sort(key=lambda r: r.admitted_on or date.min, reverse=True)
        return [(r.id, r.template) for r in rows[: max(limit, 0)] if r.template is not None]

    def close(
        self,
        admission_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exit_traveler_id: str,
        exited_on: date,
        link: ExitLink,
        score: float | None,
    ) -> bool:
        row = self._w().admissions.get(admission_id)
        if row is None or row.exited_on is not None:
            return False
        row.exit_encounter_id = exit_encounter_id
        row.exit_flight_id = exit_flight_id
        row.exit_traveler_id = exit_traveler_id
        row.exited_on = exited_on
        row.link = link
        row.link_score = score
        row.template = row.kek_id = None
        return True

    def record_exit_without_entry(
        self,
        record_id: str,
        traveler_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exited_on: date,
        now: datetime,
    ) -> None:
        t = self._w()
        if record_id in t.admissions:
            raise FakeIntegrityError(f"admission {record_id} exists")
        t.admissions[record_id] = AdmissionRow(
            id=record_id,
            traveler_id=None,
            admission_class="",
            created_at=now,
            exit_encounter_id=exit_encounter_id,
            exit_flight_id=exit_flight_id,
            exit_traveler_id=traveler_id,
            exited_on=exited_on,
        )

    def update(
        self, admission_id: str, admission_class: str, until: date | None
    ) -> Admission | None:
        row = self._w().admissions.get(admission_id)
        if row is None or row.admitted_on is None:
            return None
        row.admission_class = admission_class
        row.admitted_until = until
        return row.admission()

    def of_traveler(self, traveler_id: str) -> list[Admission]:
        rows = [
            r
            for r in self._r().admissions.values()
            if traveler_id in (r.traveler_id, r.exit_traveler_id)
        ]
        rows.sort(key=lambda r: r.created_at)
        return [r.admission() for r in rows]


class _Watchlist(_Repository):
    def add_entry(self, entry: WatchlistEntry, template: bytes) -> None:
        t = self._w()
        if entry.id in t.watchlist:
            raise FakeIntegrityError(f"watchlist entry {entry.id} exists")
        t.watchlist[entry.id] = WatchlistRow(entry, bytes(template), self._uow.current_kek)

    def remove_entry(self, entry_id: str, now: datetime) -> bool:
        row = self._w().watchlist.get(entry_id)
        if row is None or row.removed_at is not None:
            return False
        row.removed_at = now
        row.template = b""
        return True

    def entries(self) -> list[WatchlistEntry]:
        rows = [r.entry for r in self._r().watchlist.values() if r.removed_at is None]
        return sorted(rows, key=lambda e: e.added_at)

    def templates(self, model: str) -> list[tuple[str, bytes]]:
        rows = [
            r
            for r in self._r().watchlist.values()
            if r.removed_at is None and r.entry.model == model
        ]
        return [(r.entry.id, r.template) for r in sorted(rows, key=lambda r: r.entry.id)]

    def add_alert(self, alert: AlertRecord) -> bool:
        t = self._w()
        for other in t.alerts.values():
            if (
                other.flight_id == alert.flight_id
                and other.watchlist_entry_id == alert.watchlist_entry_id
                and other.source == alert.source
                and other.status == "open"
                and (
                    other.traveler_id == alert.traveler_id
                    if alert.traveler_id is not None
                    # SQL ``capture_id = NULL`` matches nothing: no capture, no dedup.
                    else alert.capture_id is not None and other.capture_id == alert.capture_id
                )
            ):
                return False
        if alert.id in t.alerts:
            raise FakeIntegrityError(f"alert {alert.id} exists")
        # As the SQL store: a new alert carries no disposition, whatever the record says.
        t.alerts[alert.id] = replace(
            alert, disposition_reason=None, dispositioned_by=None, dispositioned_at=None
        )
        return True

    def alerts(self, status: str | None, limit: int) -> list[AlertRecord]:
        rows = [a for a in self._r().alerts.values() if status is None or a.status == status]
        rows.sort(key=lambda a: a.created_at, reverse=True)
        return rows[: max(limit, 0)]

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        return self._r().alerts.get(alert_id)

    def has_open_alert(self, traveler_id: str) -> bool:
        return any(
            a.status == "open" and a.traveler_id == traveler_id for a in self._r().alerts.values()
        )

    def disposition_alert(
        self, alert_id: str, status: str, reason: str, officer_id: str, now: datetime
    ) -> bool:
        t = self._w()
        alert = t.alerts.get(alert_id)
        if alert is None or alert.status != "open":
            return False
        t.alerts[alert_id] = replace(
            alert,
            status=status,
            disposition_reason=reason,
            dispositioned_by=officer_id,
            dispositioned_at=now,
        )
        return True


class _Access(_Repository):
    def count_api_keys(self) -> int:
        return len(self._r().api_keys)

    def add_api_key(self, key: StoredApiKey) -> None:
        t = self._w()
        if key.prefix in t.api_keys or any(
            k.principal.key_id == key.principal.key_id for k in t.api_keys.values()
        ):
            raise FakeIntegrityError(f"an API key with prefix {key.prefix} or its id exists")
        t.api_keys[key.prefix] = key

    def find_api_key(self, prefix: str) -> StoredApiKey | None:
        return self._r().api_keys.get(prefix)

    def api_keys(self, limit: int) -> list[StoredApiKey]:
        keys = self._r().api_keys.values()
        return sorted(keys, key=lambda k: k.created_at, reverse=True)[:limit]

    def add_user(
        self, user_id: str, username: str, password_hash: str, role: Role, now: datetime
    ) -> None:
        t = self._w()
        if user_id in t.users or any(u.username == username for u in t.users.values()):
            raise ConflictError(f"a console user named {username!r} exists already")
        t.users[user_id] = UserRow(user_id, username, password_hash, role, now)

    def find_user(self, username: str) -> ConsoleUser | None:
        for row in self._r().users.values():
            if row.username == username:
                return row.user()
        return None

    def get_user(self, user_id: str) -> ConsoleUser | None:
        row = self._r().users.get(user_id)
        return None if row is None else row.user()

    def record_sign_in(
        self,
        user_id: str,
        succeeded: bool,
        locked_until: datetime | None,
        password_hash: str | None = None,
        failed_attempts: int | None = None,
    ) -> None:
        row = self._w().users.get(user_id)
        if row is None:
            return
        row.locked_until = locked_until
        if succeeded:
            row.failed_attempts = 0
        elif failed_attempts is not None:
            row.failed_attempts = failed_attempts
        else:
            row.failed_attempts = row.failed_attempts + 1
        if password_hash is not None:
            row.password_hash = password_hash

    def disable_user(self, user_id: str, now: datetime) -> None:
        t = self._w()
        row = t.users.get(user_id)
        if row is not None:
            row.disabled_at = now
            t.sessions = {k: v for k, v in t.sessions.items() if v.user_id != user_id}

    def revoke_api_key(self, key_id: str, now: datetime) -> bool:
        t = self._w()
        for prefix, key in t.api_keys.items():
            if key.principal.key_id == key_id and key.revoked_at is None:
                t.api_keys[prefix] = replace(key, revoked_at=now)
                return True
        return False

    def sign_in_failures(self, user_id: str, source_key: str) -> SignInFailures | None:
        return self._r().sign_in_failures.get((user_id, source_key))

    def record_sign_in_failures(
        self, user_id: str, source_key: str, failures: SignInFailures
    ) -> None:
        self._w().sign_in_failures[(user_id, source_key)] = failures

    def clear_sign_in_failures(self, user_id: str, source_key: str) -> None:
        self._w().sign_in_failures.pop((user_id, source_key), None)

    def forget_sign_in_failures(self, before: datetime) -> int:
        t = self._w()
        stale = [
            key
            for key, failures in t.sign_in_failures.items()
            if failures.last_failure_at < before
            and (failures.locked_until is None or failures.locked_until < before)
        ]
        for key in stale:
            del t.sign_in_failures[key]
        return len(stale)

    def add_session(self, record: ConsoleSession) -> None:
        t = self._w()
        if record.token_hash in t.sessions:
            raise FakeIntegrityError("a session with this token hash exists")
        if record.user_id not in t.users:
            raise FakeIntegrityError(f"no console user {record.user_id} (foreign key)")
        t.sessions[record.token_hash] = record

    def get_session(self, token_hash: str) -> ConsoleSession | None:
        return self._r().sessions.get(token_hash)

    def touch_session(self, token_hash: str, now: datetime) -> None:
        t = self._w()
        if (found := t.sessions.get(token_hash)) is not None:
            t.sessions[token_hash] = replace(found, last_seen_at=now)

    def delete_session(self, token_hash: str) -> None:
        self._w().sessions.pop(token_hash, None)

    def delete_expired_sessions(self, now: datetime) -> int:
        t = self._w()
        doomed = [h for h, s in t.sessions.items() if s.expires_at <= now]
        for token_hash in doomed:
            del t.sessions[token_hash]
        return len(doomed)


class _Outbox(_Repository):
    def add(self, message: OutboxMessage) -> None:
        t = self._w()
        if message.id in t.outbox:
            raise FakeIntegrityError(f"outbox message {message.id} exists")
        t.outbox[message.id] = message

    def pending(self, kind: str, limit: int) -> list[OutboxMessage]:
        parked = self._r().outbox_parked
        found = [m for m in self._r().outbox.values() if m.kind == kind and m.id not in parked]
        found.sort(key=lambda m: m.created_at)
        return found[: max(limit, 0)]

    def pending_ids(self, kind: str, limit: int) -> list[str]:
        return [m.id for m in self.pending(kind, limit)]

    def complete(self, message_id: str, now: datetime) -> None:
        self._w().outbox.pop(message_id, None)

    def count_pending(self) -> int:
        t = self._r()
        return len([m for m in t.outbox if m not in t.outbox_parked])

    def record_failure(self, message_id: str, park_after: int, now: datetime) -> bool:
        t = self._w()
        if message_id not in t.outbox:
            return False
        t.outbox_attempts[message_id] = t.outbox_attempts.get(message_id, 0) + 1
        if t.outbox_attempts[message_id] >= park_after:
            t.outbox_parked.add(message_id)
            t.outbox_parked_at.setdefault(message_id, now)
        return message_id in t.outbox_parked

    def count_parked(self) -> int:
        return len(self._r().outbox_parked)

    def parked(self, kind: str, limit: int) -> list[ParkedWork]:
        t = self._r()
        found = [
            ParkedWork(
                m.id,
                m.kind,
                dict(m.payload),
                m.created_at,
                t.outbox_attempts.get(m.id, 0),
                t.outbox_parked_at.get(m.id, m.created_at),
            )
            for m in t.outbox.values()
            if m.kind == kind and m.id in t.outbox_parked
        ]
        found.sort(key=lambda w: w.parked_at, reverse=True)
        return found[: max(limit, 0)]

    def retry(self, message_id: str) -> bool:
        t = self._w()
        if message_id not in t.outbox_parked:
            return False
        t.outbox_parked.discard(message_id)
        t.outbox_attempts[message_id] = 0
        return True


class _Fingerprints(_Repository):
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
        t = self._w()
        row = _document_for(t, document, self._uow.current_kek, now)
        _data_key(t, row.traveler_id, self._uow.current_kek, now)
        template_id = str(uuid.uuid4())
        t.fingerprints[(row.traveler_id, finger, engine)] = FingerprintRow(
            template_id, document, template, quality, now, expires_at
        )
        return template_id, row.traveler_id

    def of_document(self, document: DocumentKey, engine: str) -> list[StoredFingerprint]:
        t = self._r()
        row = t.documents.get(document)
        if row is None or row.traveler_id not in t.data_keys:
            return []
        return [
            StoredFingerprint(
                f.id, traveler, finger, key_engine, f.template, f.quality, f.created_at
            )
            for (traveler, finger, key_engine), f in sorted(t.fingerprints.items())
            if traveler == row.traveler_id and key_engine == engine
        ]

    def enrolled_travelers(self, after: str, limit: int) -> list[str]:
        t = self._r()
        return sorted({traveler for traveler, _, _ in t.fingerprints if traveler > after})[:limit]

    def of_flight(self, flight_id: str, engine: str) -> list[StoredFingerprint]:
        t = self._r()
        aboard = {e.traveler_id for e in t.manifests.get(flight_id, {}).values()}
        return [
            StoredFingerprint(
                f.id, traveler, finger, key_engine, f.template, f.quality, f.created_at
            )
            for (traveler, finger, key_engine), f in sorted(t.fingerprints.items())
            if traveler in aboard and traveler in t.data_keys and key_engine == engine
        ]

    def travelers_enrolled(self, flight_id: str) -> frozenset[str]:
        t = self._r()
        aboard = {e.traveler_id for e in t.manifests.get(flight_id, {}).values()}
        return frozenset(
            traveler
            for (traveler, _, _) in t.fingerprints
            if traveler in aboard and traveler in t.data_keys
        )

    def purge_expired(self, now: datetime) -> int:
        t = self._w()
        due = [key for key, f in t.fingerprints.items() if _due(f.expires_at, now)]
        for key in due:
            del t.fingerprints[key]
        return len(due)

    def citizens_enrolled(self, flight_id: str, home_state: str) -> frozenset[str]:
        t = self._r()
        aboard = {e.traveler_id for e in t.manifests.get(flight_id, {}).values()}
        return frozenset(
            doc.traveler_id
            for key, doc in t.documents.items()
            if doc.traveler_id in aboard
            and any(traveler == doc.traveler_id for traveler, _, _ in t.fingerprints)
            and _shows_citizen(key, doc, home_state)
        )

    def delete_of_traveler(self, traveler_id: str) -> int:
        t = self._w()
        theirs = [key for key in t.fingerprints if key[0] == traveler_id]
        for key in theirs:
            del t.fingerprints[key]
        return len(theirs)

    def of_traveler(self, traveler_id: str, engine: str) -> list[StoredFingerprint]:
        t = self._r()
        if traveler_id not in t.data_keys:
            return []
        return [
            StoredFingerprint(
                f.id, traveler, finger, key_engine, f.template, f.quality, f.created_at
            )
            for (traveler, finger, key_engine), f in sorted(t.fingerprints.items())
            if traveler == traveler_id and key_engine == engine
        ]

    def keep_case_print(self, kept: CasePrint, now: datetime) -> None:
        t = self._w()
        _data_key(t, kept.traveler_id, self._uow.current_kek, now)
        t.case_prints[kept.id] = replace(kept, has_image=kept.image is not None)

    def case_prints(self, capture_id: str) -> list[CasePrint]:
        t = self._r()
        return sorted(
            (
                replace(p, image=None)
                for p in t.case_prints.values()
                if p.capture_id == capture_id and p.traveler_id in t.data_keys
            ),
            key=lambda p: (p.created_at, p.finger),
        )

    def case_print_image(self, print_id: str) -> CasePrint | None:
        t = self._r()
        kept = t.case_prints.get(print_id)
        if kept is None or kept.image is None or kept.traveler_id not in t.data_keys:
            return None
        return kept


def _class_of_document(doc: DocumentRow) -> CitizenshipClass | None:
    return None if doc.details is None else doc.details.citizenship_class


def _class_of_traveler(t: FakeTables, traveler_id: str | None) -> CitizenshipClass | None:
    for doc in t.documents.values():
        if doc.traveler_id == traveler_id and doc.details is not None:
            return doc.details.citizenship_class
    return None


def _retained(policy: Policy, kind: DataKind, klass: CitizenshipClass | None) -> timedelta:
    return policy.retention(kind, klass)


def _anything_else_of(t: FakeTables, traveler_id: str) -> bool:
    """As the SQL store's ``_nothing_else_of``, negated."""
    staged = {
        t.documents[traveler.document].traveler_id
        for _, _, travelers in t.manifest_staging.values()
        for traveler in travelers
        if traveler.document in t.documents
    }
    return (
        any(e.traveler_id == traveler_id for m in t.manifests.values() for e in m.values())
        or traveler_id in staged
        or any(r.traveler_id == traveler_id for r in t.templates.values())
        or any(e.traveler_id == traveler_id for e in t.encounters.values())
        or any(key[0] == traveler_id for key in t.fingerprints)
        or any(traveler_id in (a.traveler_id, a.exit_traveler_id) for a in t.admissions.values())
    )


def _expired_manifest_entries(
    t: FakeTables, policy: Policy, now: datetime
) -> list[tuple[str, DocumentKey]]:
    found = []
    for flight_id, entries in t.manifests.items():
        departure = t.flights[flight_id].scheduled_departure
        for key in entries:
            klass = _class_of_document(t.documents[key])
            if departure <= now - _retained(policy, DataKind.MANIFEST_ENTRIES, klass):
                found.append((flight_id, key))
    return found


def _expired_admissions(t: FakeTables, policy: Policy, now: datetime) -> list[str]:
    found = []
    for row in t.admissions.values():
        if row.exited_on is None:
            continue
        klass = _class_of_traveler(t, row.traveler_id or row.exit_traveler_id)
        if row.exited_on < (now - _retained(policy, DataKind.ADMISSIONS, klass)).date():
            found.append(row.id)
    return found


def _expired_documents(t: FakeTables, policy: Policy, now: datetime) -> list[DocumentKey]:
    return [
        key
        for key, doc in t.documents.items()
        if not _anything_else_of(t, doc.traveler_id)
        and t.travelers[doc.traveler_id]
        <= now - _retained(policy, DataKind.TRAVELER_DOCUMENTS, _class_of_document(doc))
    ]


def _unused_data_keys(t: FakeTables) -> list[str]:
    in_use = {r.traveler_id for r in t.templates.values()} | {
        d.traveler_id for d in t.documents.values()
    }
    return [traveler for traveler in t.data_keys if traveler not in in_use]


def _orphaned_travelers(t: FakeTables) -> list[str]:
    with_documents = {d.traveler_id for d in t.documents.values()}
    return [
        traveler_id
        for traveler_id in t.travelers
        if traveler_id not in with_documents
        and traveler_id not in t.data_keys
        and not _anything_else_of(t, traveler_id)
    ]


def _purge_biographic(
    t: FakeTables,
    policy: Policy,
    now: datetime,
    limit: int | None = None,
    within: set[str] | None = None,
) -> dict[str, int]:
    """Documents, data keys, travelers due: at most ``limit`` of each, of the travelers
    ``within`` only when given."""

    def chosen(due: list[tuple[str, K]]) -> list[K]:
        kept = [key for traveler_id, key in due if within is None or traveler_id in within]
        return kept if limit is None else kept[:limit]

    documents = chosen(
        [(t.documents[key].traveler_id, key) for key in _expired_documents(t, policy, now)]
    )
    for document_key in documents:
        del t.documents[document_key]
    conflicts = chosen(
        [
            (c.traveler_id, key)
            for key, c in t.manifest_conflicts.items()
            if c.document not in t.documents
        ]
    )
    for conflict_id in conflicts:
        del t.manifest_conflicts[conflict_id]
    orphaned = chosen([(key, key) for key in _unused_data_keys(t)])
    for traveler_id in orphaned:
        del t.data_keys[traveler_id]
    gone = chosen([(key, key) for key in _orphaned_travelers(t)])
    for traveler_id in gone:
        del t.travelers[traveler_id]
    return {
        "traveler_documents": len(documents),
        "manifest_conflicts": len(conflicts),
        "data_keys": len(orphaned),
        "travelers": len(gone),
    }


class _Retention(_Repository):
    def purge_expired(
        self, now: datetime, policy: Policy, limit: int | None = None
    ) -> dict[str, int]:
        t = self._w()

        def at_most(due: list[K]) -> list[K]:
            return due if limit is None else due[:limit]

        counts: dict[str, int] = {}
        images = at_most(
            [
                c
                for c in t.captures.values()
                if c.image is not None and _due(c.image_expires_at, now)
            ]
        )
        for capture in images:
            capture.image = capture.image_expires_at = capture.kek_id = None
        counts["capture_images"] = len(images)
        keys = at_most([k for k, (_, expires_at) in t.idempotency.items() if _due(expires_at, now)])
        for key in keys:
            del t.idempotency[key]
        counts["idempotency_keys"] = len(keys)
        captures = at_most([i for i, c in t.captures.items() if _due(c.record.expires_at, now)])
        for capture_id in captures:
            del t.captures[capture_id]
        counts["capture_records"] = len(captures)
        templates = at_most([i for i, r in t.templates.items() if _due(r.expires_at, now)])
        for template_id in templates:
            del t.templates[template_id]
        counts["reference_templates"] = len(templates)
        prints = at_most([key for key, f in t.fingerprints.items() if _due(f.expires_at, now)])
        for print_key in prints:
            del t.fingerprints[print_key]
        counts["fingerprint_templates"] = len(prints)
        kept = at_most([i for i, p in t.case_prints.items() if _due(p.expires_at, now)])
        for print_id in kept:
            del t.case_prints[print_id]
        counts["case_fingerprints"] = len(kept)
        encounters = at_most([i for i, e in t.encounters.items() if _due(e.expires_at, now)])
        for encounter_id in encounters:
            del t.encounters[encounter_id]
        counts["encounter_records"] = len(encounters)
        entries = at_most(_expired_manifest_entries(t, policy, now))
        for flight_id, entry_key in entries:
            del t.manifests[flight_id][entry_key]
        counts["manifest_entries"] = len(entries)
        admissions = at_most(_expired_admissions(t, policy, now))
        for admission_id in admissions:
            del t.admissions[admission_id]
        counts["admissions"] = len(admissions)
        counts.update(_purge_biographic(t, policy, now, limit))
        galleries = [
            f
            for f in t.flights.values()
            if f.gallery_version > 0 and _due(f.gallery_expires_at, now)
        ]
        for flight in galleries:
            t.flights[flight.id] = replace(flight, gallery_version=0, gallery_expires_at=None)
        counts["staged_galleries"] = len(galleries)
        return counts

    def refresh_statistics(self) -> list[str]:
        return []  # no planner here

    def purge_citizens_prints(self, home_state: str, limit: int | None = None) -> int:
        t = self._w()
        citizens = {
            doc.traveler_id
            for key, doc in t.documents.items()
            if _shows_citizen(key, doc, home_state)
        }
        due = [key for key in t.fingerprints if key[0] in citizens]
        due = due if limit is None else due[:limit]
        for key in due:
            del t.fingerprints[key]
        return len(due)

    def biographic_due(self, now: datetime, policy: Policy, limit: int) -> list[str]:
        t = self._r()
        found = {t.documents[key].traveler_id for key in _expired_documents(t, policy, now)}
        found |= set(_unused_data_keys(t)) | set(_orphaned_travelers(t))
        return sorted(found)[:limit]

    def purge_travelers(
        self, now: datetime, policy: Policy, traveler_ids: Sequence[str]
    ) -> dict[str, int]:
        ids = set(traveler_ids)
        t = self._w()
        return _purge_biographic(t, policy, now, within=ids)

    def erase_traveler(self, traveler_id: str) -> TravelerErasure:
        t = self._w()
        staged = tuple(
            sorted(
                flight_id
                for flight_id, entries in t.manifests.items()
                if t.flights[flight_id].gallery_version > 0
                and any(e.traveler_id == traveler_id for e in entries.values())
            )
        )

        def drop(table: dict[K, V], theirs: Callable[[V], bool]) -> int:
            doomed = [key for key, value in table.items() if theirs(value)]
            for key in doomed:
                del table[key]
            return len(doomed)

        images = sum(
            c.record.traveler_id == traveler_id and c.image is not None for c in t.captures.values()
        )
        staging = 0
        for upload_id, (flight_id, staged_at, travelers) in list(t.manifest_staging.items()):
            kept = [
                x
                for x in travelers
                if x.document not in t.documents
                or t.documents[x.document].traveler_id != traveler_id
            ]
            staging += len(travelers) - len(kept)
            t.manifest_staging[upload_id] = (flight_id, staged_at, kept)
        prints = [key for key in t.fingerprints if key[0] == traveler_id]
        for key in prints:
            del t.fingerprints[key]
        their_captures = {
            c.record.id for c in t.captures.values() if c.record.traveler_id == traveler_id
        }
        counts = {
            "capture_images": images,
            "idempotency_keys": drop(
                t.idempotency,
                lambda v: v[0].capture_id in their_captures or traveler_id in (v[0].outcome or ""),
            ),
            "capture_records": drop(t.captures, lambda c: c.record.traveler_id == traveler_id),
            "encounter_records": drop(t.encounters, lambda e: e.traveler_id == traveler_id),
            "manifest_entries": staging
            + sum(
                drop(entries, lambda e: e.traveler_id == traveler_id)
                for entries in t.manifests.values()
            ),
            "reference_templates": drop(t.templates, lambda r: r.traveler_id == traveler_id),
            "admissions": drop(
                t.admissions, lambda a: traveler_id in (a.traveler_id, a.exit_traveler_id)
            ),
            "fingerprint_templates": len(prints),
            "case_fingerprints": drop(t.case_prints, lambda p: p.traveler_id == traveler_id),
            "alerts": drop(t.alerts, lambda a: a.traveler_id == traveler_id),
            "manifest_conflicts": drop(
                t.manifest_conflicts, lambda c: c.traveler_id == traveler_id
            ),
            "queued_work": drop(t.outbox, lambda m: m.payload.get("traveler_id") == traveler_id),
            "traveler_documents": drop(t.documents, lambda d: d.traveler_id == traveler_id),
            "data_keys": int(t.data_keys.pop(traveler_id, None) is not None),
            "travelers": int(t.travelers.pop(traveler_id, None) is not None),
        }
        return TravelerErasure(counts, staged)

    def forget_opted_out(
        self, traveler_id: str, flight_id: str, now: datetime, capture_id: str | None = None
    ) -> dict[str, int]:
        t = self._w()
        still_needed = bool(self.listings_after(traveler_id, flight_id, now)[0])
        templates = kept = 0
        if not still_needed:
            doomed = [i for i, r in t.templates.items() if r.traveler_id == traveler_id]
            for template_id in doomed:
                del t.templates[template_id]
            templates = len(doomed)
        else:
            kept = sum(1 for r in t.templates.values() if r.traveler_id == traveler_id)
        images = 0
        theirs_here = set()
        for capture in t.captures.values():
            record = capture.record
            theirs = record.traveler_id == traveler_id or record.id == capture_id
            if record.flight_id == flight_id and theirs:
                theirs_here.add(record.id)
            if record.flight_id == flight_id and theirs and capture.image is not None:
                capture.image = capture.image_expires_at = capture.kek_id = None
                images += 1
        doomed_keys = [
            key
            for key, (stored, _) in t.idempotency.items()
            if stored.flight_id == flight_id
            and (stored.capture_id in theirs_here or traveler_id in (stored.outcome or ""))
        ]
        for key in doomed_keys:
            del t.idempotency[key]
        return {
            "reference_templates": templates,
            "capture_images": images,
            "idempotency_keys": len(doomed_keys),
            **({"kept_reference_templates": kept} if kept else {}),
        }

    def listings_after(
        self, traveler_id: str, flight_id: str, now: datetime
    ) -> tuple[list[str], list[str]]:
        t = self._r()
        opting = t.flights[flight_id].carrier if flight_id in t.flights else None
        counted: list[str] = []
        disputed: list[str] = []
        for other in sorted(t.manifests):
            flight = t.flights[other]
            if other == flight_id or flight.scheduled_departure <= now:
                continue
            for key, entry in t.manifests[other].items():
                if entry.traveler_id != traveler_id:
                    continue
                open_by = {
                    c.proposed_by
                    for c in t.manifest_conflicts.values()
                    if c.document == key and c.resolved_at is None
                }
                carrier, details_by = flight.carrier, t.documents[key].details_by
                in_dispute = carrier != opting and (
                    carrier in open_by or (details_by == carrier and opting in open_by)
                )
                (disputed if in_dispute else counted).append(other)
        return counted, disputed


class _DataKeys(_Repository):
    def rotate_batch(self, batch_size: int) -> int:
        """As the SQL store's batch: up to ``batch_size`` data keys *and* up to ``batch_size``
        capture image keys, so the result can reach twice ``batch_size``."""
        t = self._w()
        current = self._uow.current_kek
        keys = [k for k in t.data_keys.values() if k.kek_id != current][: max(batch_size, 0)]
        for key in keys:
            key.kek_id = current
        captures = [c for c in t.captures.values() if c.kek_id is not None and c.kek_id != current][
            : max(batch_size, 0)
        ]
        for capture in captures:
            capture.kek_id = current
        return len(keys) + len(captures)

    def counts_by_kek(self) -> dict[str, int]:
        t = self._r()
        counts: dict[str, int] = {}
        for kek_id in [k.kek_id for k in t.data_keys.values()] + [
            c.kek_id for c in t.captures.values() if c.kek_id is not None
        ]:
            counts[kek_id] = counts.get(kek_id, 0) + 1
        return counts


# --- the factory -------------------------------------------------------------------------


class _Kiosks(_Repository):
    def add_device(self, device: KioskDevice) -> None:
        t = self._w()
        if device.id in t.kiosk_devices or any(
            d.token_hash == device.token_hash
            or (device.code_hash is not None and d.code_hash == device.code_hash)
            for d in t.kiosk_devices.values()
        ):
            raise FakeIntegrityError("a kiosk with this id, token or code exists")
        t.kiosk_devices[device.id] = device

    def get_device(self, device_id: str) -> KioskDevice | None:
        return self._r().kiosk_devices.get(device_id)

    def device_by_token(self, token_hash: str) -> KioskDevice | None:
        return next(
            (d for d in self._r().kiosk_devices.values() if d.token_hash == token_hash), None
        )

    def device_by_code(self, code_hash: str) -> KioskDevice | None:
        return next((d for d in self._r().kiosk_devices.values() if d.code_hash == code_hash), None)

    def devices(self) -> list[KioskDevice]:
        paired = [d for d in self._r().kiosk_devices.values() if d.paired_at is not None]
        return sorted(paired, key=lambda d: (-(d.paired_at or d.created_at).timestamp(), d.id))

    def count_waiting(self, now: datetime, network: str | None = None) -> int:
        return sum(
            1
            for d in self._r().kiosk_devices.values()
            if d.paired_at is None
            and d.code_expires_at is not None
            and d.code_expires_at > now
            and (network is None or d.pairing_network == network)
        )

    def waiting(self, now: datetime) -> list[KioskDevice]:
        waiting = [
            d
            for d in self._r().kiosk_devices.values()
            if d.paired_at is None and d.code_expires_at is not None and d.code_expires_at > now
        ]
        return sorted(waiting, key=lambda d: (d.created_at, d.id))

    def delete_waiting(self, device_id: str) -> int:
        t = self._w()
        device = t.kiosk_devices.get(device_id)
        if device is None or device.paired_at is not None:
            return 0
        del t.kiosk_devices[device_id]
        return 1

    def delete_expired_codes(self, now: datetime) -> int:
        t = self._w()
        gone = [
            d.id
            for d in t.kiosk_devices.values()
            if d.paired_at is None and d.code_expires_at is not None and d.code_expires_at <= now
        ]
        for device_id in gone:
            del t.kiosk_devices[device_id]
        return len(gone)

    def _update(self, device_id: str, **values: object) -> None:
        t = self._w()
        device = t.kiosk_devices.get(device_id)
        if device is not None:
            t.kiosk_devices[device_id] = replace(device, **values)  # type: ignore[arg-type]

    def pair(
        self, device_id: str, carrier: str, port: str, lane: str, at: datetime, by: str
    ) -> None:
        self._update(
            device_id,
            carrier=carrier,
            port=port,
            lane=lane,
            paired_at=at,
            paired_by=by,
            code_hash=None,
            code_expires_at=None,
        )

    def issue_session(self, device_id: str, token_hash: str, at: datetime) -> None:
        self._update(device_id, token_hash=token_hash, session_issued_at=at, last_seen_at=at)

    def revoke(self, device_id: str, at: datetime) -> None:
        self._update(device_id, revoked_at=at)

    def touch(self, device_id: str, at: datetime) -> None:
        self._update(device_id, last_seen_at=at)

    def assign_lane(self, assignment: LaneAssignment) -> None:
        t = self._w()
        if assignment.flight_id not in t.flights:
            raise FakeIntegrityError("a lane is assigned a flight that exists")
        t.lane_assignments[(assignment.port, assignment.lane)] = assignment

    def lane_assignment(self, port: str, lane: str) -> LaneAssignment | None:
        return self._r().lane_assignments.get((port, lane))

    def lane_assignments(self) -> list[LaneAssignment]:
        return [a for _, a in sorted(self._r().lane_assignments.items())]

    def add_opt_out_request(self, request: KioskOptOutRequest) -> None:
        self._w().kiosk_requests[request.id] = request

    def opt_out_requests(
        self, pending_only: bool, limit: int | None = None
    ) -> list[KioskOptOutRequest]:
        requests = [
            r for r in self._r().kiosk_requests.values() if not pending_only or r.handled_at is None
        ]
        ordered = sorted(requests, key=lambda r: (-r.requested_at.timestamp(), r.id))
        return ordered if limit is None else ordered[:limit]

    def count_opt_out_requests(self, pending_only: bool, device_id: str | None = None) -> int:
        return sum(
            1
            for r in self._r().kiosk_requests.values()
            if (not pending_only or r.handled_at is None)
            and (device_id is None or r.device_id == device_id)
        )

    def handle_opt_out_request(self, request_id: str, at: datetime, by: str) -> bool:
        t = self._w()
        request = t.kiosk_requests.get(request_id)
        if request is None or request.handled_at is not None:
            return False
        t.kiosk_requests[request_id] = replace(request, handled_at=at, handled_by=by)
        return True

    def record_capture_notice(
        self, capture_id: str, device_id: str, notice_version: str, language: str, at: datetime
    ) -> None:
        self._w().kiosk_notices[capture_id] = (device_id, notice_version, language)

    def capture_notice(self, capture_id: str) -> tuple[str, str] | None:
        found = self._r().kiosk_notices.get(capture_id)
        return None if found is None else (found[1], found[2])


class FakeUnitOfWorkFactory:
    """Makes :class:`FakeUnitOfWork` over one :class:`FakeDatabase` (``database``), counts
    what happens (``commits``, ``rollbacks``, ``conflicts``, ``opened``) and injects
    failures. Only commits of *writing* units of work count for injection."""

    def __init__(
        self,
        database: FakeDatabase | None = None,
        *,
        audit_key: bytes = TEST_AUDIT_KEY,
        current_kek: str = TEST_KEK_ID,
        detect_conflicts: bool = True,
    ) -> None:
        self.database = database or FakeDatabase(audit_key=audit_key, current_kek=current_kek)
        self.detect_conflicts = detect_conflicts
        self.reachable = True
        self.scrubs = 0
        self.commits = 0  # successful commits of writing units of work (seeding not counted)
        self.rollbacks = 0  # units of work that wrote and were left without committing
        self.conflicts = 0  # TransactionConflictError raised (injected or detected)
        self.write_commit_attempts = 0  # commit() calls of writing units of work
        self.opened: list[FakeUnitOfWork] = []  # every unit of work entered, in order
        self._fail_at: int | None = None
        self._fail_error: BaseException | None = None
        self._conflicts_left = 0
        self._seeding = False

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only=read_only)

    def ping(self) -> None:
        if not self.reachable:
            raise DatabaseUnreachableError("the fake database is unreachable")

    def probe_write(self, now: datetime) -> None:
        if not self.reachable:
            raise StorageUnavailableError("the fake database cannot write")

    def scrub(self) -> None:
        """Nothing to overwrite in memory; counted, so a test can see that a use case asks."""
        self.scrubs += 1

    # --- assertions --------------------------------------------------------------------
    @property
    def tables(self) -> FakeTables:
        """The committed state (read it; don't change it behind the units of work's back,
        or use :meth:`seed`)."""
        return self.database.tables

    def seed(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run ``work`` in a writing unit of work and commit, without counting it and without
        triggering injected failures: for arranging a test."""
        self._seeding = True
        try:
            with self() as uow:
                result = work(uow)
                uow.commit()
                return result
        finally:
            self._seeding = False

    # --- failure injection -------------------------------------------------------------
    def fail_commit_after(self, n: int, error: BaseException | None = None) -> None:
        """Let the next ``n`` writing commits succeed, then make the one after raise ``error``
        (default :class:`InjectedCommitError`) and publish nothing. One-shot.
        ``fail_commit_after(0)`` fails the very next writing commit."""
        assert n >= 0
        self._fail_at = self.write_commit_attempts + n + 1
        self._fail_error = error

    def conflict_on_commit(self, times: int = 1) -> None:
        """Make the next ``times`` writing commits raise ``TransactionConflictError``, as when
        another writer moved a row (the audit head) first; nothing is published."""
        assert times >= 0
        self._conflicts_left = times

    def _before_commit(self, uow: FakeUnitOfWork) -> None:
        if self._seeding:
            return
        self.write_commit_attempts += 1
        if self._conflicts_left > 0:
            self._conflicts_left -= 1
            self.conflicts += 1
            raise TransactionConflictError("injected: another writer got there first")
        if self._fail_at is not None and self.write_commit_attempts == self._fail_at:
            self._fail_at = None
            error, self._fail_error = self._fail_error, None
            raise error if error is not None else InjectedCommitError("injected commit failure")


# --- read models -------------------------------------------------------------------------


class FakeReportQueries:
    """:class:`~entryexit.services.unit_of_work.ReportQueries` over the committed state."""

    def __init__(self, database: FakeDatabase) -> None:
        self._db = database

    def in_country_overstays(self, before: date, limit: int | None = None) -> list[Admission]:
        rows = [
            r
            for r in self._db.tables.admissions.values()
            if r.exited_on is None
            and r.admitted_on is not None
            and r.admitted_until is not None
            and r.admitted_until < before
        ]
        rows.sort(key=lambda r: r.admitted_until or date.min)
        return _limited((r.admission() for r in rows), limit)

    def out_of_country_overstays(
        self, since: date, until: date, limit: int | None = None
    ) -> list[Admission]:
        rows = [
            r
            for r in self._db.tables.admissions.values()
            if r.exited_on is not None
            and since <= r.exited_on <= until
            and r.admitted_on is not None
            and r.admitted_until is not None
            and r.exited_on > r.admitted_until
        ]
        rows.sort(key=lambda r: r.exited_on or date.min)
        return _limited((r.admission() for r in rows), limit)

    def exits_without_entry(self, since: date, until: date) -> list[tuple[str, date, str]]:
        rows = [
            r
            for r in self._db.tables.admissions.values()
            if r.admitted_on is None and r.exited_on is not None and since <= r.exited_on <= until
        ]
        rows.sort(key=lambda r: r.exited_on or date.min)
        return [
            (str(r.exit_traveler_id), r.exited_on, str(r.exit_flight_id))
            for r in rows
            if r.exited_on is not None
        ]

    def exit_confirmations(self, since: datetime, until: datetime) -> list[ExitConfirmation]:
        t = self._db.tables
        flights = [
            f
            for f in t.flights.values()
            if f.direction is Direction.EXIT and since <= f.scheduled_departure < until
        ]
        flights.sort(key=lambda f: f.scheduled_departure)
        return [
            ExitConfirmation(
                f.id,
                f.carrier,
                f.number,
                f.origin,
                f.scheduled_departure,
                len(t.manifests.get(f.id, {})),
                sum(1 for e in t.encounters.values() if e.flight_id == f.id),
            )
            for f in flights
        ]

    def traveler_identities(self, traveler_ids: list[str]) -> dict[str, TravelerIdentity]:
        t = self._db.tables
        wanted = set(traveler_ids)
        docs = [d for d in t.documents.values() if d.traveler_id in wanted]
        # The SQL store orders by expiry and keeps the last: on SQLite NULL sorts first.
        docs.sort(
            key=lambda d: (
                d.traveler_id,
                d.details is not None,
                d.details.document_expiry if d.details else date.min,
            )
        )
        found: dict[str, TravelerIdentity] = {}
        for doc in docs:
            personal = _personal(t, doc)
            found[doc.traveler_id] = TravelerIdentity(
                traveler_id=doc.traveler_id,
                surname=personal.get("surname", ERASED),
                given_names=personal.get("given_names", ""),
                nationality=personal.get("nationality", ""),
                document=DocumentKey(doc.key.issuing_state, personal.get("number", ERASED)),
            )
        return found

    def retention_counts(self, now: datetime, policy: Policy) -> dict[str, dict[str, int]]:
        t = self._db.tables
        captures = list(t.captures.values())
        images = [c for c in captures if c.image is not None]
        templates = list(t.templates.values())
        encounters = list(t.encounters.values())
        staged = [f for f in t.flights.values() if f.gallery_version > 0]
        return {
            "capture_images": {
                "held": len(images),
                "overdue": sum(_due(c.image_expires_at, now) for c in images),
            },
            "capture_records": {
                "held": len(captures),
                "overdue": sum(_due(c.record.expires_at, now) for c in captures),
            },
            "reference_templates": {
                "held": len(templates),
                "overdue": sum(_due(r.expires_at, now) for r in templates),
            },
            "fingerprint_templates": {
                "held": len(t.fingerprints),
                "overdue": sum(_due(f.expires_at, now) for f in t.fingerprints.values()),
            },
            "case_fingerprints": {
                "held": len(t.case_prints),
                "overdue": sum(_due(p.expires_at, now) for p in t.case_prints.values()),
            },
            "encounter_records": {
                "held": len(encounters),
                "overdue": sum(_due(e.expires_at, now) for e in encounters),
            },
            "manifest_entries": {
                "held": sum(len(entries) for entries in t.manifests.values()),
                "overdue": len(_expired_manifest_entries(t, policy, now)),
            },
            "admissions": {
                "held": len(t.admissions),
                "overdue": len(_expired_admissions(t, policy, now)),
            },
            "traveler_documents": {
                "held": len(t.documents),
                "overdue": len(_expired_documents(t, policy, now)),
            },
            "data_keys": {"held": len(t.data_keys), "overdue": len(_unused_data_keys(t))},
            "staged_galleries": {
                "held": len(staged),
                "overdue": sum(_due(f.gallery_expires_at, now) for f in staged),
            },
        }

    def oldest_held(self) -> dict[str, datetime | None]:
        t = self._db.tables
        return {
            "reference_templates": min((r.created_at for r in t.templates.values()), default=None),
            "fingerprint_templates": min(
                (f.created_at for f in t.fingerprints.values()), default=None
            ),
            "case_fingerprints": min((p.created_at for p in t.case_prints.values()), default=None),
        }

    def decision_counts(self, since: datetime, until: datetime) -> dict[str, int]:
        t = self._db.tables
        counts: dict[str, int] = {}
        for c in t.captures.values():
            if since <= c.record.received_at <= until:
                name = f"captures_{c.record.decision}"
                counts[name] = counts.get(name, 0) + 1
        for e in t.encounters.values():
            if since <= e.occurred_at <= until:
                name = f"encounters_{e.method.value}"
                counts[name] = counts.get(name, 0) + 1
        return counts

    def outcomes_by_sex(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        t = self._db.tables
        with_photo = {r.traveler_id for r in t.templates.values()}
        methods = {
            (e.flight_id, e.traveler_id): (
                "confirmed_false_non_match"
                if e.method is EncounterMethod.MANUAL_DOCUMENT_CHECK and e.capture_id is not None
                else e.method.value
            )
            for e in t.encounters.values()
        }
        counts: dict[str, dict[str, int]] = {}
        for flight in t.flights.values():
            staged_at = flight.gallery_staged_at
            if staged_at is None or not since <= staged_at <= until:
                continue
            for key, entry in t.manifests.get(flight.id, {}).items():
                method = methods.get((flight.id, entry.traveler_id), "not_processed")
                if entry.traveler_id not in t.data_keys or (
                    entry.traveler_id not in with_photo and method != EncounterMethod.OPT_OUT
                ):
                    continue
                sex = _personal(t, t.documents[key]).get("sex", "unknown")
                tally = counts.setdefault(sex, {})
                tally["travelers_with_photo"] = tally.get("travelers_with_photo", 0) + 1
                tally[method] = tally.get(method, 0) + 1
        return counts


class FakeBoardQueries:
    """:class:`~entryexit.services.unit_of_work.BoardQueries` over the committed state."""

    def __init__(self, database: FakeDatabase) -> None:
        self._db = database

    def flight_board(self, since: datetime, until: datetime) -> list[tuple[Flight, FlightCounts]]:
        t = self._db.tables
        flights = [f for f in t.flights.values() if since <= f.scheduled_departure < until]
        flights.sort(key=lambda f: (f.scheduled_departure, f.carrier, f.number))
        board = []
        for f in flights:
            captures = [c for c in t.captures.values() if c.record.flight_id == f.id]
            methods = [e.method for e in t.encounters.values() if e.flight_id == f.id]
            travelers = len(t.manifests.get(f.id, {}))
            board.append(
                (
                    f,
                    FlightCounts(
                        travelers=travelers,
                        matched=methods.count(EncounterMethod.BIOMETRIC),
                        manual=methods.count(EncounterMethod.MANUAL_DOCUMENT_CHECK),
                        opted_out=methods.count(EncounterMethod.OPT_OUT),
                        recaptures=sum(c.record.decision == "recapture" for c in captures),
                        no_matches=sum(c.record.decision == "no_match" for c in captures),
                        outstanding=max(0, travelers - len(methods)),
                        open_cases=sum(
                            c.record.decision in OPEN_CASE_DECISIONS and c.resolution is None
                            for c in captures
                        ),
                    ),
                )
            )
        return board

    def recent_captures(
        self, flight_id: str | None, limit: int, open_only: bool = False
    ) -> list[CaptureSummary]:
        rows = [
            c
            for c in self._db.tables.captures.values()
            if (flight_id is None or c.record.flight_id == flight_id)
            and (
                not open_only or (c.record.decision in OPEN_CASE_DECISIONS and c.resolution is None)
            )
        ]
        rows.sort(key=lambda c: c.record.received_at, reverse=True)
        return [_summary(c) for c in rows[: max(limit, 0)]]


# --- conformance, checked by mypy ----------------------------------------------------------


def _conforms(factory: FakeUnitOfWorkFactory) -> None:
    """Never called: mypy checks that each fake satisfies its protocol."""
    as_factory: UnitOfWorkFactory = factory
    as_uow: UnitOfWork = factory()
    reports: ReportQueries = FakeReportQueries(factory.database)
    boards: BoardQueries = FakeBoardQueries(factory.database)
    del as_factory, as_uow, reports, boards


__all__ = [
    "ERASED",
    "TEST_AUDIT_KEY",
    "TEST_KEK_ID",
    "AdmissionRow",
    "AuditHeadRow",
    "CaptureRow",
    "DataKeyRow",
    "DatabaseUnreachableError",
    "DocumentRow",
    "FakeBoardQueries",
    "FakeDatabase",
    "FakeIntegrityError",
    "FakeReportQueries",
    "FakeTables",
    "FakeUnitOfWork",
    "FakeUnitOfWorkFactory",
    "InjectedCommitError",
    "ManifestEntryRow",
    "PolicyRow",
    "TemplateRow",
    "UserRow",
    "WatchlistRow",
]
