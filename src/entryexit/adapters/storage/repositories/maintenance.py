"""Retention (the purge) and key-encryption-key rotation: housekeeping over every aggregate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, text, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from entryexit.adapters.storage.repositories.captures import capture_owner
from entryexit.adapters.storage.repositories.fingerprints import citizen_travelers
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    AdmissionRow,
    AlertRow,
    Base,
    CaptureIdempotencyRow,
    CaptureRow,
    CaseFingerprintRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FingerprintTemplateRow,
    FlightRow,
    ManifestConflictRow,
    ManifestEntryRow,
    OutboxRow,
    ReferenceTemplateRow,
    TravelerRow,
    WatchlistEntryRow,
)
from entryexit.domain.model import CitizenshipClass
from entryexit.domain.policy import DataKind, Policy
from entryexit.services.ports import TravelerErasure

# A column of a mapped table, or an expression over some.
SqlValue = ColumnElement[Any] | InstrumentedAttribute[Any]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _per_class(
    kind: DataKind,
    policy: Policy,
    now: datetime,
    class_of: SqlValue,
    due: Callable[[datetime], ColumnElement[bool]],
) -> ColumnElement[bool]:
    """``due(cutoff)`` with each traveler class's cutoff under ``policy``; data whose class is
    unknown gets the shortest period of any class (no class's limit is exceeded)."""
    cases = [
        and_(class_of == klass.value, due(now - policy.retention(kind, klass)))
        for klass in CitizenshipClass
    ]
    cases.append(and_(class_of.is_(None), due(now - policy.retention(kind, None))))
    return or_(*cases)


def _document_class(traveler: SqlValue) -> ColumnElement[Any]:
    return (
        select(DocumentRow.citizenship_class)
        .where(DocumentRow.traveler_id == traveler, DocumentRow.citizenship_class.is_not(None))
        .limit(1)
        .scalar_subquery()
    )


def _nothing_else_of(traveler: SqlValue) -> ColumnElement[bool]:
    """No record of the traveler is left that their documents would name for an officer."""
    return and_(
        ~select(ManifestEntryRow.id).where(ManifestEntryRow.traveler_id == traveler).exists(),
        ~select(ReferenceTemplateRow.id)
        .where(ReferenceTemplateRow.traveler_id == traveler)
        .exists(),
        ~select(EncounterRow.id).where(EncounterRow.traveler_id == traveler).exists(),
        ~select(FingerprintTemplateRow.id)
        .where(FingerprintTemplateRow.traveler_id == traveler)
        .exists(),
        ~select(AdmissionRow.id)
        .where(or_(AdmissionRow.traveler_id == traveler, AdmissionRow.exit_traveler_id == traveler))
        .exists(),
    )


def expired_manifest_entries(policy: Policy, now: datetime) -> ColumnElement[bool]:
    """Manifest entries past their retention after the flight's scheduled departure."""
    departure = (
        select(FlightRow.scheduled_departure)
        .where(FlightRow.id == ManifestEntryRow.flight_id)
        .scalar_subquery()
    )
    document_class = (
        select(DocumentRow.citizenship_class)
        .where(DocumentRow.id == ManifestEntryRow.document_id)
        .scalar_subquery()
    )
    # Only flights old enough for the shortest retention can hold a due entry: found through
    # the departure index, so a large manifest of a flight still to come is not read at all.
    shortest = min(
        policy.retention(DataKind.MANIFEST_ENTRIES, klass) for klass in (*CitizenshipClass, None)
    )
    old_enough = select(FlightRow.id).where(FlightRow.scheduled_departure <= now - shortest)
    return and_(
        ManifestEntryRow.flight_id.in_(old_enough),
        _per_class(
            DataKind.MANIFEST_ENTRIES, policy, now, document_class, lambda cut: departure <= cut
        ),
    )


def expired_admissions(policy: Policy, now: datetime) -> ColumnElement[bool]:
    """Closed stays (and exits without an entry) past their retention after the exit; an
    open stay is never due, whatever its age, so that an overstay is still found."""
    traveler = func.coalesce(AdmissionRow.traveler_id, AdmissionRow.exit_traveler_id)
    return and_(
        AdmissionRow.exited_on.is_not(None),
        # The exit's time of day is not kept: count from the end of its day.
        _per_class(
            DataKind.ADMISSIONS,
            policy,
            now,
            _document_class(traveler),
            lambda cut: AdmissionRow.exited_on < cut.date(),
        ),
    )


def expired_documents(policy: Policy, now: datetime) -> ColumnElement[bool]:
    """Documents past their retention after the traveler was first recorded, of travelers of
    whom nothing else remains."""
    first_recorded = (
        select(TravelerRow.created_at)
        .where(TravelerRow.id == DocumentRow.traveler_id)
        .scalar_subquery()
    )
    return and_(
        _nothing_else_of(DocumentRow.traveler_id),
        _per_class(
            DataKind.TRAVELER_DOCUMENTS,
            policy,
            now,
            DocumentRow.citizenship_class,
            lambda cut: first_recorded <= cut,
        ),
    )


def unused_data_keys() -> ColumnElement[bool]:
    """A data key that seals neither a template nor a document protects nothing."""
    return and_(
        ~select(ReferenceTemplateRow.id)
        .where(ReferenceTemplateRow.traveler_id == DataKeyRow.traveler_id)
        .exists(),
        ~select(DocumentRow.id).where(DocumentRow.traveler_id == DataKeyRow.traveler_id).exists(),
    )


def orphaned_conflicts() -> ColumnElement[bool]:
    """Manifest conflicts whose document is gone (purged): they held details a carrier
    proposed for it, and go with it."""
    return ~select(DocumentRow.id).where(DocumentRow.id == ManifestConflictRow.document_id).exists()


def citizens_prints(home_state: str) -> ColumnElement[bool]:
    """Enrolled fingers of a traveler whom a stored document shows to be a citizen (enrolled
    before the citizen rule, or before the class changed)."""
    return FingerprintTemplateRow.traveler_id.in_(citizen_travelers(home_state))


def _orphaned(traveler: SqlValue) -> tuple[ColumnElement[bool], ...]:
    """Nothing of the traveler is left: no record that names them, no document, no data key."""
    return (
        _nothing_else_of(traveler),
        ~select(DocumentRow.id).where(DocumentRow.traveler_id == traveler).exists(),
        ~select(DataKeyRow.traveler_id).where(DataKeyRow.traveler_id == traveler).exists(),
    )


# The tables the purge reads and deletes from.
PURGED_TABLES = (
    CaptureRow,
    CaptureIdempotencyRow,
    ReferenceTemplateRow,
    FingerprintTemplateRow,
    CaseFingerprintRow,
    EncounterRow,
    ManifestEntryRow,
    AdmissionRow,
    DocumentRow,
    DataKeyRow,
    TravelerRow,
    FlightRow,
)


class SqlRetentionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _without_jit(self) -> None:
        """PostgreSQL: no JIT compilation in this transaction. The purge's correlated
        subqueries look costly to the planner (their estimate ignores the ``LIMIT``), so it
        compiled each batch's statements, 0.2 s of compiling for 20 ms of work (seconds a
        batch on a loaded machine, with the write lock held)."""
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(text("SET LOCAL jit = off"))

    def refresh_statistics(self) -> list[str]:
        """PostgreSQL: ``ANALYZE`` those of the purge's tables never analyzed, or that changed
        more since their last analysis than autovacuum's own threshold (50 rows and 10%),
        i.e. that autovacuum has not caught up with yet. Right after a bulk manifest import
        the planner otherwise plans the purge's anti-joins for empty tables (seconds a batch
        instead of a fraction of a second). Returns the tables analyzed; SQLite: none (its
        plans do not depend on statistics that go stale this way)."""
        if self._session.get_bind().dialect.name != "postgresql":
            return []
        names = [table.__tablename__ for table in PURGED_TABLES]
        stale = list(
            self._session.scalars(
                text(
                    "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) AND"
                    " (n_mod_since_analyze > 50 + 0.1 * n_live_tup OR coalesce(last_analyze,"
                    " last_autoanalyze) IS NULL) ORDER BY relname"
                ),
                {"names": names},
            )
        )
        for name in stale:
            self._session.execute(text(f'ANALYZE "{name}"'))
        return stale

    def _delete(self, table: Any, *conditions: ColumnElement[bool]) -> int:
        return _rowcount(self._session.execute(delete(table).where(*conditions)))

    def purge_expired(
        self, now: datetime, policy: Policy, limit: int | None = None
    ) -> dict[str, int]:
        """Delete everything whose time is up (running it again deletes nothing more). The
        biographic kinds go last: a document outlives every record that names its traveler.

        With ``limit`` (a batch): at most that many rows of each kind whose expiry is
        stamped, and the biographic kinds only of the travelers those rows named (found by
        key, not by reading every document); :meth:`biographic_due` and
        :meth:`purge_travelers` find and delete the rest."""
        self._without_jit()
        if limit is None:
            return self._purge_all(now, policy)
        session = self._session
        counts = {
            "capture_images": _rowcount(
                session.execute(
                    update(CaptureRow)
                    .where(
                        CaptureRow.id.in_(
                            select(CaptureRow.id)
                            .where(
                                CaptureRow.image.is_not(None), CaptureRow.image_expires_at <= now
                            )
                            .limit(limit)
                        )
                    )
                    .values(image=None, wrapped_key=None, kek_id=None, image_expires_at=None)
                )
            )
        }
        picked_keys = session.execute(
            select(CaptureIdempotencyRow.scope, CaptureIdempotencyRow.key)
            .where(CaptureIdempotencyRow.expires_at <= now)
            .limit(limit)
        ).all()
        counts["idempotency_keys"] = (
            self._delete(
                CaptureIdempotencyRow,
                tuple_(CaptureIdempotencyRow.scope, CaptureIdempotencyRow.key).in_(
                    [tuple(row) for row in picked_keys]
                ),
            )
            if picked_keys
            else 0
        )
        named: set[str] = set()
        stamped: tuple[tuple[str, Any], ...] = (
            ("capture_records", CaptureRow),
            ("reference_templates", ReferenceTemplateRow),
            ("fingerprint_templates", FingerprintTemplateRow),
            ("case_fingerprints", CaseFingerprintRow),
            ("encounter_records", EncounterRow),
        )
        for kind, table, travelers, due in (
            *(
                (kind, table, (table.traveler_id,), table.expires_at <= now)
                for kind, table in stamped
            ),
            (
                "manifest_entries",
                ManifestEntryRow,
                (ManifestEntryRow.traveler_id,),
                expired_manifest_entries(policy, now),
            ),
            (
                "admissions",
                AdmissionRow,
                (AdmissionRow.traveler_id, AdmissionRow.exit_traveler_id),
                expired_admissions(policy, now),
            ),
        ):
            picked = session.execute(select(table.id, *travelers).where(due).limit(limit)).all()
            counts[kind] = (
                self._delete(table, table.id.in_([row[0] for row in picked])) if picked else 0
            )
            named.update(str(name) for row in picked for name in row[1:] if name is not None)
        counts.update(self.purge_travelers(now, policy, sorted(named)))
        # Conflicts whose document an earlier purge deleted (before conflicts went with
        # their documents): no batch names their traveler any more.
        orphans = list(
            session.scalars(select(ManifestConflictRow.id).where(orphaned_conflicts()).limit(limit))
        )
        if orphans:
            counts["manifest_conflicts"] += self._delete(
                ManifestConflictRow, ManifestConflictRow.id.in_(orphans)
            )
        counts["staged_galleries"] = self._expire_galleries(now)
        return counts

    def purge_citizens_prints(self, home_state: str, limit: int | None = None) -> int:
        """Delete (at most ``limit``) enrolled fingers of travelers who are citizens: prints
        are never kept of a citizen, whatever their expiry."""
        self._without_jit()
        due = citizens_prints(home_state)
        if limit is None:
            return self._delete(FingerprintTemplateRow, due)
        picked = list(
            self._session.scalars(select(FingerprintTemplateRow.id).where(due).limit(limit))
        )
        return (
            self._delete(FingerprintTemplateRow, FingerprintTemplateRow.id.in_(picked))
            if picked
            else 0
        )

    def biographic_due(self, now: datetime, policy: Policy, limit: int) -> list[str]:
        """Up to ``limit`` travelers with a document, a data key or the traveler record itself
        due (the reads a batch leaves out; made outside any write transaction)."""
        self._without_jit()
        session = self._session
        found: set[str] = set()
        for query in (
            select(DocumentRow.traveler_id).where(expired_documents(policy, now)),
            select(DataKeyRow.traveler_id).where(unused_data_keys()),
            select(TravelerRow.id).where(*_orphaned(TravelerRow.id)),
        ):
            found.update(session.scalars(query.limit(limit - len(found))))
            if len(found) >= limit:
                break
        return sorted(found)

    def purge_travelers(
        self, now: datetime, policy: Policy, traveler_ids: Sequence[str]
    ) -> dict[str, int]:
        """The biographic kinds of ``traveler_ids`` that are due (each condition checked
        again here): documents, then data keys (crypto-shredding), then traveler records."""
        if not traveler_ids:
            return dict.fromkeys(
                ("traveler_documents", "manifest_conflicts", "data_keys", "travelers"), 0
            )
        self._without_jit()
        ids = list(traveler_ids)
        return {
            "traveler_documents": self._delete(
                DocumentRow, DocumentRow.traveler_id.in_(ids), expired_documents(policy, now)
            ),
            "manifest_conflicts": self._delete(
                ManifestConflictRow,
                ManifestConflictRow.traveler_id.in_(ids),
                orphaned_conflicts(),
            ),
            "data_keys": self._delete(
                DataKeyRow, DataKeyRow.traveler_id.in_(ids), unused_data_keys()
            ),
            "travelers": self._delete(
                TravelerRow, TravelerRow.id.in_(ids), *_orphaned(TravelerRow.id)
            ),
        }

    def _expire_galleries(self, now: datetime) -> int:
        return _rowcount(
            self._session.execute(
                update(FlightRow)
                .where(FlightRow.gallery_version > 0, FlightRow.gallery_expires_at <= now)
                .values(gallery_version=0, gallery_expires_at=None)
            )
        )

    def _purge_all(self, now: datetime, policy: Policy) -> dict[str, int]:
        session = self._session
        counts = {
            "capture_images": _rowcount(
                session.execute(
                    update(CaptureRow)
                    .where(CaptureRow.image.is_not(None), CaptureRow.image_expires_at <= now)
                    .values(image=None, wrapped_key=None, kek_id=None, image_expires_at=None)
                )
            )
        }
        for kind, table in (
            ("idempotency_keys", CaptureIdempotencyRow),
            ("capture_records", CaptureRow),
            ("reference_templates", ReferenceTemplateRow),
            ("fingerprint_templates", FingerprintTemplateRow),
            ("case_fingerprints", CaseFingerprintRow),
            ("encounter_records", EncounterRow),
        ):
            counts[kind] = self._delete(table, table.expires_at <= now)
        counts["manifest_entries"] = self._delete(
            ManifestEntryRow, expired_manifest_entries(policy, now)
        )
        counts["admissions"] = self._delete(AdmissionRow, expired_admissions(policy, now))
        counts["traveler_documents"] = self._delete(DocumentRow, expired_documents(policy, now))
        counts["manifest_conflicts"] = self._delete(ManifestConflictRow, orphaned_conflicts())
        # Crypto-shredding: with the key goes every sealed copy, backups and replicas included.
        counts["data_keys"] = self._delete(DataKeyRow, unused_data_keys())
        counts["travelers"] = self._delete(TravelerRow, *_orphaned(TravelerRow.id))
        counts["staged_galleries"] = self._expire_galleries(now)
        return counts

    def erase_traveler(self, traveler_id: str) -> TravelerErasure:
        """Everything of one traveler, their data key and traveler row last."""
        session = self._session
        staged = tuple(
            sorted(
                session.scalars(
                    select(ManifestEntryRow.flight_id)
                    .join(FlightRow, FlightRow.id == ManifestEntryRow.flight_id)
                    .where(ManifestEntryRow.traveler_id == traveler_id)
                    .where(ManifestEntryRow.upload_id == FlightRow.manifest_version)
                    .where(FlightRow.gallery_version > 0)
                    .distinct()
                )
            )
        )
        theirs = CaptureRow.traveler_id == traveler_id
        images = int(
            session.scalar(select(func.count()).where(theirs, CaptureRow.image.is_not(None))) or 0
        )
        counts = {
            "capture_images": images,
            # Before the captures: a gate's idempotency record keeps the decision it was
            # given, with the traveler's id and score (a retry then runs as a new capture).
            "idempotency_keys": self._delete(
                CaptureIdempotencyRow,
                _idempotency_naming(traveler_id, select(CaptureRow.id).where(theirs)),
            ),
            "capture_records": self._delete(CaptureRow, theirs),
            "encounter_records": self._delete(
                EncounterRow, EncounterRow.traveler_id == traveler_id
            ),
            # Every version of every manifest: in force, superseded, or an upload under way
            # (which is then refused at its swap, one row short, and sent again).
            "manifest_entries": self._delete(
                ManifestEntryRow, ManifestEntryRow.traveler_id == traveler_id
            ),
            "reference_templates": self._delete(
                ReferenceTemplateRow, ReferenceTemplateRow.traveler_id == traveler_id
            ),
            "admissions": self._delete(
                AdmissionRow,
                or_(
                    AdmissionRow.traveler_id == traveler_id,
                    AdmissionRow.exit_traveler_id == traveler_id,
                ),
            ),
            "fingerprint_templates": self._delete(
                FingerprintTemplateRow, FingerprintTemplateRow.traveler_id == traveler_id
            ),
            "case_fingerprints": self._delete(
                CaseFingerprintRow, CaseFingerprintRow.traveler_id == traveler_id
            ),
            "alerts": self._delete(AlertRow, AlertRow.traveler_id == traveler_id),
            # Details a carrier proposed for their document (sealed; the rows name them).
            "manifest_conflicts": self._delete(
                ManifestConflictRow, ManifestConflictRow.traveler_id == traveler_id
            ),
            # Admission work still queued for them (the payload names the traveler by id).
            "queued_work": self._delete(
                OutboxRow, OutboxRow.payload.contains(f'"traveler_id": "{traveler_id}"')
            ),
            "traveler_documents": self._delete(DocumentRow, DocumentRow.traveler_id == traveler_id),
            "data_keys": self._delete(DataKeyRow, DataKeyRow.traveler_id == traveler_id),
            "travelers": self._delete(TravelerRow, TravelerRow.id == traveler_id),
        }
        return TravelerErasure(counts, staged)

    def forget_opted_out(
        self, traveler_id: str, flight_id: str, now: datetime, capture_id: str | None = None
    ) -> dict[str, int]:
        """The traveler declined the photo on ``flight_id``: their enrolled templates go,
        unless a flight still to depart lists them (that flight's decision is its own) by a
        listing not in dispute with this flight's carrier (:meth:`listings_after`), and no
        image of their captures on this flight is kept. ``kept_reference_templates`` counts
        the templates kept (only when some are)."""
        counted, _ = self.listings_after(traveler_id, flight_id, now)
        templates = 0
        if not counted:
            templates = self._delete(
                ReferenceTemplateRow, ReferenceTemplateRow.traveler_id == traveler_id
            )
        kept = (
            int(
                self._session.scalar(
                    select(func.count()).where(ReferenceTemplateRow.traveler_id == traveler_id)
                )
                or 0
            )
            if counted
            else 0
        )
        on_this_flight = select(CaptureRow.id).where(
            CaptureRow.flight_id == flight_id,
            or_(CaptureRow.traveler_id == traveler_id, CaptureRow.id == capture_id),
        )
        idempotency = self._delete(
            CaptureIdempotencyRow,
            and_(
                CaptureIdempotencyRow.flight_id == flight_id,
                _idempotency_naming(traveler_id, on_this_flight),
            ),
        )
        images = _rowcount(
            self._session.execute(
                update(CaptureRow)
                .where(
                    CaptureRow.flight_id == flight_id,
                    or_(CaptureRow.traveler_id == traveler_id, CaptureRow.id == capture_id),
                    CaptureRow.image.is_not(None),
                )
                .values(image=None, wrapped_key=None, kek_id=None, image_expires_at=None)
            )
        )
        return {
            "reference_templates": templates,
            "capture_images": images,
            "idempotency_keys": idempotency,
            **({"kept_reference_templates": kept} if kept else {}),
        }

    def listings_after(
        self, traveler_id: str, flight_id: str, now: datetime
    ) -> tuple[list[str], list[str]]:
        """The other flights still to depart whose manifest in force lists the traveler: those
        that keep his templates after an opt-out on ``flight_id``, and those that do not
        because their listing is in dispute with ``flight_id``'s carrier (another carrier's
        listing whose details were refused, an open conflict of its carrier on the document,
        or details it holds that ``flight_id``'s carrier disputes, an open conflict of that
        carrier): a carrier cannot keep a traveler's templates by listing his passport."""
        session = self._session
        opting = session.scalar(select(FlightRow.carrier).where(FlightRow.id == flight_id))
        listings = session.execute(
            select(
                ManifestEntryRow.flight_id,
                FlightRow.carrier,
                DocumentRow.id,
                DocumentRow.details_by,
            )
            .join(FlightRow, FlightRow.id == ManifestEntryRow.flight_id)
            .join(DocumentRow, DocumentRow.id == ManifestEntryRow.document_id)
            .where(ManifestEntryRow.traveler_id == traveler_id)
            .where(ManifestEntryRow.flight_id != flight_id)
            .where(ManifestEntryRow.upload_id == FlightRow.manifest_version)  # in force
            .where(FlightRow.scheduled_departure > now)
            .order_by(ManifestEntryRow.flight_id)
        ).all()
        disputing: dict[str, set[str]] = {}
        for document_id, carrier in session.execute(
            select(ManifestConflictRow.document_id, ManifestConflictRow.proposed_by).where(
                ManifestConflictRow.traveler_id == traveler_id,
                ManifestConflictRow.resolved_at.is_(None),
            )
        ).all():
            disputing.setdefault(document_id, set()).add(carrier)
        counted: list[str] = []
        disputed: list[str] = []
        for other, carrier, document_id, details_by in listings:
            open_by = disputing.get(document_id, set())
            in_dispute = carrier != opting and (
                carrier in open_by or (details_by == carrier and opting in open_by)
            )
            (disputed if in_dispute else counted).append(other)
        return counted, disputed


def _idempotency_naming(traveler_id: str, captures: Any) -> ColumnElement[bool]:
    """Idempotency records of the traveler's captures, or whose stored outcome names them."""
    return or_(
        CaptureIdempotencyRow.capture_id.in_(captures),
        CaptureIdempotencyRow.outcome.contains(traveler_id),
    )


# Every table that keeps a key wrapped by a key-encryption key, and the owner name it was
# wrapped under. A test derives the list of such tables from the schema (a ``kek_id``
# column), so a new sealed column cannot be left out of rotation.
SEALED_ITEMS: dict[type[Base], Callable[[Any], str]] = {
    DataKeyRow: lambda row: str(row.traveler_id),
    CaptureRow: lambda row: capture_owner(row.id),
    AdmissionRow: lambda row: f"admission:{row.id}",
    WatchlistEntryRow: lambda row: f"watchlist:{row.id}",
    OutboxRow: lambda row: f"outbox:{row.id}",
}


class SqlDataKeyRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def rotate_batch(self, batch_size: int) -> int:
        """Re-wrap up to ``batch_size`` keys of each sealed table that are not under the
        current KEK."""
        current_id = self._sealer.current_kek_id()
        rewrapped = 0
        for table, owner in SEALED_ITEMS.items():
            kek_column = table.kek_id  # type: ignore[attr-defined]
            rows: Sequence[Any] = self._session.scalars(
                select(table)
                .where(kek_column.is_not(None), kek_column != current_id)
                .limit(batch_size)
            ).all()
            for row in rows:
                if not row.wrapped_key:
                    # Erased (a removed watchlist entry): no key left to re-wrap.
                    row.kek_id = current_id
                    rewrapped += 1
                    continue
                moved = self._sealer.rewrap_item(owner(row), row.wrapped_key, row.kek_id)
                if moved is not None:
                    row.wrapped_key, row.kek_id = moved
                    rewrapped += 1
        return rewrapped

    def counts_by_kek(self) -> dict[str, int]:
        """How many wrapped keys each KEK holds, over every sealed table (a KEK may be
        retired only when it holds none)."""
        counts: dict[str, int] = {}
        for table in SEALED_ITEMS:
            kek_column = table.kek_id  # type: ignore[attr-defined]
            query = (
                select(kek_column, func.count()).where(kek_column.is_not(None)).group_by(kek_column)
            )
            for kek_id, count in self._session.execute(query).all():
                counts[str(kek_id)] = counts.get(str(kek_id), 0) + int(count)
        return counts
