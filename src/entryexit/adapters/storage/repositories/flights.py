"""Flights and their manifests (the travelers' details sealed under their data keys)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from entryexit.adapters.crypto.envelope import DecryptionError
from entryexit.adapters.storage.repositories import core
from entryexit.adapters.storage.repositories.travelers import new_id, optional_date
from entryexit.adapters.storage.rows import flight_from_row
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestConflictRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
    TravelerRow,
    in_force,
)
from entryexit.domain.conflicts import ConflictCursor, ConflictPage, ConflictQuery, ConflictStatus
from entryexit.domain.model import (
    AGENCY,
    CitizenshipClass,
    ConflictSide,
    DocumentKey,
    DocumentType,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestConflict,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import ConflictError, NotFoundError
from entryexit.services.ports import ManifestStatus

_FLIGHTS = cast(Table, FlightRow.__table__)
_ConflictSelect = Select[ManifestConflictRow, DocumentRow, DataKeyRow]
# Read by every capture (its carrier and its gallery's version).
_FLIGHT = select(*_FLIGHTS.c).where(_FLIGHTS.c.id == bindparam("id"))

ERASED = "(erased)"


class SqlFlightRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add(self, flight: Flight) -> None:
        self._session.add(
            FlightRow(
                id=flight.id,
                carrier=flight.carrier,
                number=flight.number,
                scheduled_departure=flight.scheduled_departure,
                origin=flight.origin,
                destination=flight.destination,
                direction=flight.direction.value,
                created_at=flight.created_at,
                gallery_version=0,
            )
        )

    def get(self, flight_id: str) -> Flight | None:
        row = core.run(self._session, _FLIGHT, {"id": flight_id}).first()
        return None if row is None else flight_from_row(row)

    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        self._session.execute(
            update(FlightRow)
            .where(FlightRow.id == flight_id)
            .values(
                gallery_version=FlightRow.gallery_version + 1,
                gallery_staged_at=now,
                gallery_expires_at=expires_at,
            )
        )
        return int(
            self._session.scalar(select(FlightRow.gallery_version).where(FlightRow.id == flight_id))
            or 0
        )

    def replace_manifest(
        self,
        flight_id: str,
        travelers: list[ManifestTraveler],
        now: datetime,
        uploader_carrier: str | None = None,
    ) -> ManifestChange:
        """Make the flight's manifest exactly ``travelers`` in this one transaction (small
        manifests and tests; the service writes large ones in batches)."""
        upload_id = new_id()
        self.stage_manifest_batch(
            flight_id, upload_id, travelers, now, details_by=uploader_carrier or AGENCY
        )
        change = self.swap_manifest(
            flight_id, upload_id, now, len(travelers), uploader_carrier=uploader_carrier
        )
        self.discard_manifest_versions(flight_id=flight_id, staged_before=now)
        return change

    def stage_manifest_batch(
        self,
        flight_id: str,
        upload_id: str,
        travelers: Sequence[ManifestTraveler],
        now: datetime,
        details_by: str | None = None,
    ) -> None:
        """Write ``travelers`` into manifest version ``upload_id``, which no reader sees until
        :meth:`swap_manifest` (one statement per kind of row, whatever the batch size).
        Documents seen for the first time are created with their details (they are on no
        manifest yet), set by ``details_by`` (the uploader's carrier, or AGENCY); a known
        document whose details changed keeps the new ones on its entry until the swap."""
        session = self._session
        keyed = [
            ((t.document.issuing_state, self._sealer.digest(t.document)), t) for t in travelers
        ]
        found = {
            (row.issuing_state, row.number_digest): row
            for row in session.scalars(
                select(DocumentRow).where(DocumentRow.number_digest.in_([k[1] for k, _ in keyed]))
            )
        }
        fresh = [(key, t) for key, t in keyed if key not in found]
        keys_of: dict[str, bytes] = {}
        if fresh:
            # Plain inserts, not ORM objects: a third of the time, and this transaction holds
            # the write lock that gates wait for.
            travelers_rows, key_rows, document_rows = [], [], []
            for key, traveler in fresh:
                traveler_id = new_id()
                key_values, data_key = self._sealer.new_data_key_values(traveler_id, now)
                travelers_rows.append({"id": traveler_id, "created_at": now})
                key_rows.append(key_values)
                document = DocumentRow(
                    id=new_id(),
                    traveler_id=traveler_id,
                    issuing_state=key[0],
                    number_digest=key[1],
                )
                self._apply_details(document, traveler, data_key)
                document_rows.append(
                    {
                        "id": document.id,
                        "traveler_id": traveler_id,
                        "issuing_state": key[0],
                        "number_digest": key[1],
                        "personal": document.personal,
                        "document_type": document.document_type,
                        "expiry": document.expiry,
                        "citizenship_class": document.citizenship_class,
                        "details_by": details_by,
                    }
                )
                found[key] = document
                keys_of[traveler_id] = data_key
            session.execute(insert(TravelerRow), travelers_rows)
            session.execute(insert(DataKeyRow), key_rows)
            session.execute(insert(DocumentRow), document_rows)
        known_keys = {
            row.traveler_id: row
            for row in session.scalars(
                select(DataKeyRow).where(
                    DataKeyRow.traveler_id.in_(
                        {found[key].traveler_id for key, _ in keyed} - keys_of.keys()
                    )
                )
            )
        }
        fresh_keys = {key for key, _ in fresh}
        # A carrier's upload keeps its own copy of every traveler's details on the entry
        # (the agency's details apply everywhere: nothing to keep).
        keep_sent = details_by is not None and details_by != AGENCY

        def claims(document: DocumentRow) -> bool:
            """The agency's upload makes details a carrier set its own, changed or not: what
            the agency states is its statement (a citizen's prints then go at the swap)."""
            return details_by == AGENCY and document.details_by not in (None, AGENCY)

        entries: list[dict[str, object]] = []

        def key_of(traveler_id: str) -> bytes:
            cached = keys_of.get(traveler_id)
            key_row = known_keys.get(traveler_id)
            if cached is not None:
                data_key = cached
            elif key_row is not None:
                data_key = self._sealer.unwrap(key_row)
            else:  # shredded meanwhile: a key of its own from now on
                data_key = self._sealer.data_key(session, traveler_id, now)
            keys_of[traveler_id] = data_key
            return data_key

        for key, traveler in keyed:
            document = found[key]
            entry: dict[str, object] = {
                "upload_id": upload_id,
                "flight_id": flight_id,
                "document_id": document.id,
                "traveler_id": document.traveler_id,
                "added_at": now,
            }
            if keep_sent:
                entry["sent"] = self._sealer.seal_personal(
                    key_of(document.traveler_id), document.traveler_id, _sent(traveler)
                )
            if key not in fresh_keys and (
                claims(document)
                or self._details_changed(document, known_keys.get(document.traveler_id), traveler)
            ):
                data_key = key_of(document.traveler_id)
                entry.update(
                    personal=self._sealed(document.traveler_id, traveler, data_key),
                    document_type=traveler.document_type.value,
                    expiry=traveler.document_expiry,
                    citizenship_class=traveler.citizenship_class.value,
                )
            entries.append(entry)
        if entries:
            session.execute(insert(ManifestEntryRow), entries)

    def _details_changed(
        self, document: DocumentRow, key_row: DataKeyRow | None, traveler: ManifestTraveler
    ) -> bool:
        """Whether the manifest brings details other than the document's (a re-upload of the
        same manifest changes nothing, so its swap rewrites no document)."""
        if (
            key_row is None
            or document.document_type != traveler.document_type.value
            or document.expiry != traveler.document_expiry
            or document.citizenship_class != traveler.citizenship_class.value
        ):
            return True
        return self._sealer.open_personal(document, key_row) != _personal(traveler)

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
        """Put manifest version ``upload_id`` in force: one flight row changes, plus the
        documents whose details changed, so the transaction stays short at any manifest size.
        Refuses a version that does not hold exactly ``expected`` travelers (rows lost
        meanwhile): the version in force stays. The upload holds at most ``max_conflicts``
        conflicts, new or brought up to date, and opens none that would leave its carrier more
        than ``max_open_conflicts`` open in all (the other disputed entries keep the details in
        force too; counted as over the limit)."""
        session = self._session
        previous = session.scalar(
            select(FlightRow.manifest_version).where(FlightRow.id == flight_id)
        )
        new = ManifestEntryRow.upload_id == upload_id
        total = int(session.scalar(select(func.count()).where(new)) or 0)
        if total != expected:
            raise ConflictError(
                f"the manifest upload holds {total} of its {expected} travelers "
                "(changed meanwhile); nothing was replaced, send it again"
            )
        old = aliased(ManifestEntryRow)
        updated = before = 0
        if previous is not None:
            before = int(
                session.scalar(select(func.count()).where(ManifestEntryRow.upload_id == previous))
                or 0
            )
            updated = int(
                session.scalar(
                    select(func.count())
                    .select_from(ManifestEntryRow)
                    .join(
                        old,
                        (old.upload_id == previous)
                        & (old.document_id == ManifestEntryRow.document_id),
                    )
                    .where(new)
                )
                or 0
            )
        session.execute(
            update(FlightRow).where(FlightRow.id == flight_id).values(manifest_version=upload_id)
        )
        entry = ManifestEntryRow
        with_details = (new, entry.personal.is_not(None))
        changed = session.execute(
            select(
                entry.document_id,
                entry.traveler_id,
                entry.personal,
                entry.document_type,
                entry.expiry,
                entry.citizenship_class,
                DocumentRow.details_by,
            )
            .join(DocumentRow, DocumentRow.id == entry.document_id)
            .where(*with_details)
        ).all()
        # Documents set before who set them was recorded: as before, they yield to a manifest
        # in force of another carrier's flight.
        held = (
            self._held_by_other_carriers(flight_id, upload_id, uploader_carrier)
            if uploader_carrier is not None and any(row.details_by is None for row in changed)
            else set()
        )
        applied: list[dict[str, object]] = []
        disputed: list[Any] = []  # rows of ``changed``
        for row in changed:
            if (
                uploader_carrier is None
                or row.details_by == uploader_carrier
                or (row.details_by is None and row.document_id not in held)
            ):
                applied.append(
                    {
                        "id": row.document_id,
                        "personal": row.personal,
                        "document_type": row.document_type,
                        "expiry": row.expiry,
                        "citizenship_class": row.citizenship_class,
                        "details_by": uploader_carrier or AGENCY,
                    }
                )
            else:
                disputed.append(row)
        # Statements for the whole upload, not one per traveler: this transaction holds the
        # write lock gates wait for (ORM updates one by one grew with the square of the count).
        if applied:
            session.execute(update(DocumentRow), applied)
        if uploader_carrier is None and applied:
            self._supersede_conflicts(upload_id, now)
        over_limit = 0
        if disputed:
            assert uploader_carrier is not None
            over_limit = self._record_conflicts(
                disputed, flight_id, uploader_carrier, now, max_conflicts, max_open_conflicts
            )
        session.execute(
            update(entry)
            .where(*with_details)
            .values(personal=None, document_type=None, expiry=None, citizenship_class=None)
            .execution_options(synchronize_session=False)
        )
        return ManifestChange(
            added=total - updated,
            removed=before - updated,
            updated=updated,
            total=total,
            details_kept=len(disputed),
            conflicts=len(disputed) - over_limit,
            conflicts_over_limit=over_limit,
        )

    def _supersede_conflicts(self, upload_id: str, now: datetime) -> None:
        """The agency set the details of the upload's changed documents: their open conflicts
        are settled (run before the entries' details are cleared)."""
        self._session.execute(
            update(ManifestConflictRow)
            .where(
                ManifestConflictRow.resolved_at.is_(None),
                ManifestConflictRow.document_id.in_(
                    select(ManifestEntryRow.document_id).where(
                        ManifestEntryRow.upload_id == upload_id,
                        ManifestEntryRow.personal.is_not(None),
                    )
                ),
            )
            .values(resolved_at=now, resolution=ConflictSide.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )

    def _record_conflicts(
        self,
        rows: list[Any],
        flight_id: str,
        carrier: str,
        now: datetime,
        limit: int | None = None,
        carrier_limit: int | None = None,
    ) -> int:
        """One open conflict per document and challenging carrier: a later manifest of that
        carrier brings its details up to date. The upload holds at most ``limit`` conflicts:
        its open ones are brought up to date, new ones opened (in document order) only while
        the two together stay within it, and while the carrier's open conflicts in all stay
        within ``carrier_limit``. Returns how many it did not open."""
        session = self._session
        # (A result is not a mapping for dict(): its rows, as a list.)
        open_ids = dict(
            session.execute(
                select(ManifestConflictRow.document_id, ManifestConflictRow.id).where(
                    ManifestConflictRow.proposed_by == carrier,
                    ManifestConflictRow.resolved_at.is_(None),
                )
            ).all()
        )
        # The keys the entries' details were sealed under (at staging, in this upload).
        sealed_under = dict(
            session.execute(
                select(DataKeyRow.traveler_id, DataKeyRow.created_at).where(
                    DataKeyRow.traveler_id.in_({row.traveler_id for row in rows})
                )
            ).all()
        )
        fresh: list[dict[str, object]] = []
        refreshed: list[dict[str, object]] = []
        over_limit = 0
        rooms = []
        if limit is not None:
            rooms.append(max(0, limit - sum(1 for row in rows if row.document_id in open_ids)))
        if carrier_limit is not None:
            rooms.append(max(0, carrier_limit - len(open_ids)))
        room = min(rooms) if rooms else None
        for row in sorted(rows, key=lambda row: str(row.document_id)):
            values: dict[str, object] = {
                "flight_id": flight_id,
                "held_by": row.details_by,
                "personal": row.personal,
                "sealed_under": sealed_under.get(row.traveler_id),
                "document_type": row.document_type,
                "expiry": row.expiry,
                "citizenship_class": row.citizenship_class,
            }
            known = open_ids.get(row.document_id)
            if known is not None:
                refreshed.append({"id": known, **values})
            elif room is not None and len(fresh) >= room:
                over_limit += 1
            else:
                fresh.append(
                    {
                        "id": new_id(),
                        "document_id": row.document_id,
                        "traveler_id": row.traveler_id,
                        "proposed_by": carrier,
                        "created_at": now,
                        **values,
                    }
                )
        if refreshed:
            session.execute(update(ManifestConflictRow), refreshed)
        if fresh:
            session.execute(insert(ManifestConflictRow), fresh)
        return over_limit

    def manifest_conflicts(
        self, open_only: bool = True, conflict_id: str | None = None
    ) -> list[ManifestConflict]:
        """The conflicts (open ones only, by default), oldest first, with both sides opened."""
        query = _conflicts_query()
        if open_only:
            query = query.where(ManifestConflictRow.resolved_at.is_(None))
        if conflict_id is not None:
            query = query.where(ManifestConflictRow.id == conflict_id)
        return self._opened_conflicts(query)

    def manifest_conflict_page(self, query: ConflictQuery) -> ConflictPage:
        """One page of conflicts by keyset (creation time, id), oldest first: only the page's
        rows are read and opened (one more is looked at to know whether a next page exists).
        """
        conflict = ManifestConflictRow
        statement = _conflicts_query()
        if query.status is ConflictStatus.OPEN:
            statement = statement.where(conflict.resolved_at.is_(None))
        elif query.status is ConflictStatus.RESOLVED:
            statement = statement.where(conflict.resolved_at.is_not(None))
        if query.flight_id is not None:
            statement = statement.where(conflict.flight_id == query.flight_id)
        if query.carrier is not None:
            statement = statement.where(conflict.proposed_by == query.carrier)
        if query.after is not None:
            after = query.after
            statement = statement.where(
                or_(
                    conflict.created_at > after.created_at,
                    and_(conflict.created_at == after.created_at, conflict.id > after.id),
                )
            )
        found = self._opened_conflicts(statement.limit(query.limit + 1))
        page = found[: query.limit]
        more = len(found) > query.limit
        return ConflictPage(page, ConflictCursor.of(page[-1]) if more else None)

    def _opened_conflicts(self, query: _ConflictSelect) -> list[ManifestConflict]:
        unwrapped: dict[str, bytes] = {}
        conflicts = []
        for row, document, key_row in self._session.execute(query).all():
            state = document.issuing_state if document is not None else ""
            kept = (
                None
                if document is None
                else _traveler(
                    state,
                    self._sealer.open_personal(document, key_row, unwrapped),
                    document.document_type,
                    document.expiry,
                    document.citizenship_class,
                )
            )
            proposed_personal = self._proposal(row, key_row, unwrapped)
            conflicts.append(
                ManifestConflict(
                    id=row.id,
                    document_id=row.document_id,
                    flight_id=row.flight_id,
                    proposed_by=row.proposed_by,
                    held_by=row.held_by,
                    kept=kept,
                    proposed=_traveler(
                        state,
                        proposed_personal,
                        row.document_type,
                        row.expiry,
                        row.citizenship_class,
                    ),
                    created_at=row.created_at,
                    resolved_at=row.resolved_at,
                    resolution=ConflictSide(row.resolution) if row.resolution else None,
                    traveler_id=row.traveler_id,
                )
            )
        return conflicts

    def _proposal(
        self, row: ManifestConflictRow, key_row: DataKeyRow | None, unwrapped: dict[str, bytes]
    ) -> dict[str, str]:
        """The proposed details, opened; empty (unreadable) when the traveler's key is not the
        one they were sealed under (shredded, or shredded and made anew). A row from before
        the key was recorded is opened if it still can be."""
        if key_row is None or (
            row.sealed_under is not None and row.sealed_under != key_row.created_at
        ):
            return {}
        sealed = DocumentRow(traveler_id=row.traveler_id, personal=row.personal)
        if row.sealed_under is not None:
            return self._sealer.open_personal(sealed, key_row, unwrapped)
        try:
            return self._sealer.open_personal(sealed, key_row, unwrapped)
        except DecryptionError:
            return {}

    def resolve_manifest_conflict(
        self, conflict_id: str, side: ConflictSide, now: datetime
    ) -> ManifestConflict:
        """Close an open conflict: PROPOSED puts its details in force (set by the carrier that
        proposed them, whose later manifests may then correct them), KEPT leaves the details
        in force. Returns the conflict as it was before (both sides)."""
        found = self.manifest_conflicts(conflict_id=conflict_id)
        row = self._session.get(ManifestConflictRow, conflict_id, with_for_update=True)
        if not found or row is None or row.resolved_at is not None:
            raise NotFoundError("no open manifest conflict has this id")
        if side is ConflictSide.PROPOSED:
            if self._session.get(DocumentRow, row.document_id) is None:
                raise ConflictError("the document is gone (purged or erased): keep it instead")
            if found[0].proposed is None:
                raise ConflictError(
                    "the proposed details can no longer be read (the traveler's data key"
                    " changed since they were sealed): keep the details in force instead"
                )
            self._session.execute(
                update(DocumentRow)
                .where(DocumentRow.id == row.document_id)
                .values(
                    personal=row.personal,
                    document_type=row.document_type,
                    expiry=row.expiry,
                    citizenship_class=row.citizenship_class,
                    details_by=row.proposed_by,
                )
                .execution_options(synchronize_session=False)
            )
        elif side is not ConflictSide.KEPT:
            raise ConflictError("a conflict is resolved by keeping or applying its details")
        row.resolved_at = now
        row.resolution = side.value
        return found[0]

    def _held_by_other_carriers(self, flight_id: str, upload_id: str, carrier: str) -> set[str]:
        """The documents of upload ``upload_id`` with new details that are on a manifest in
        force of a flight another carrier operates (for documents whose ``details_by`` was
        not recorded)."""
        mine = aliased(ManifestEntryRow)
        theirs = aliased(ManifestEntryRow)
        return set(
            self._session.scalars(
                select(mine.document_id)
                .distinct()
                .join(theirs, theirs.document_id == mine.document_id)
                .join(
                    FlightRow,
                    (FlightRow.id == theirs.flight_id)
                    & (FlightRow.manifest_version == theirs.upload_id),
                )
                .where(
                    mine.upload_id == upload_id,
                    mine.personal.is_not(None),
                    FlightRow.id != flight_id,
                    FlightRow.carrier != carrier,
                )
            )
        )

    def discard_manifest_versions(
        self,
        upload_id: str | None = None,
        staged_before: datetime | None = None,
        limit: int | None = None,
        flight_id: str | None = None,
    ) -> int:
        """Drop manifest entries not in force: those of version ``upload_id`` (a failed
        upload), or of every version staged before ``staged_before`` (superseded ones, and
        uploads whose process died), of one flight or all; at most ``limit`` rows. The
        version in force is never touched."""
        entry = ManifestEntryRow
        condition = (
            entry.upload_id == upload_id
            if upload_id is not None
            else entry.added_at <= (staged_before or datetime.max)
        )
        query = select(entry.id).where(condition, ~in_force())
        if flight_id is not None:
            query = query.where(entry.flight_id == flight_id)
        ids = list(self._session.scalars(query.limit(limit)))
        if ids:
            self._session.execute(delete(entry).where(entry.id.in_(ids)))
        return len(ids)

    def _sealed(self, traveler_id: str, traveler: ManifestTraveler, data_key: bytes) -> bytes:
        return self._sealer.seal_personal(data_key, traveler_id, _personal(traveler))

    def _apply_details(self, row: DocumentRow, traveler: ManifestTraveler, data_key: bytes) -> None:
        row.document_type = traveler.document_type.value
        row.expiry = traveler.document_expiry
        row.citizenship_class = traveler.citizenship_class.value
        row.personal = self._sealed(row.traveler_id, traveler, data_key)

    def has_traveler(self, flight_id: str, traveler_id: str) -> bool:
        return (
            self._session.scalar(
                select(ManifestEntryRow.traveler_id)
                .where(ManifestEntryRow.flight_id == flight_id, in_force())
                .where(ManifestEntryRow.traveler_id == traveler_id)
                .limit(1)
            )
            is not None
        )

    def manifest_status(
        self,
        flight_id: str,
        model: str,
        carrier: str | None = None,
        *,
        own_only: bool = False,
    ) -> list[ManifestStatus]:
        """The flight's travelers with the details in force, except: with ``carrier`` (the
        flight's carrier), a traveler whose document's details another carrier holds is shown
        with what ``carrier`` itself sent for this flight (the agency's details still govern);
        with ``own_only`` as well (a key bound to ``carrier``), every traveler whose details
        ``carrier`` does not hold is shown with its own copy, or with empty personal fields if
        it has none readable, and no one's ``has_photo`` (an agency enrolment) is told."""
        session = self._session
        with_photo = set(
            session.scalars(
                select(ReferenceTemplateRow.traveler_id)
                .join(
                    ManifestEntryRow,
                    ManifestEntryRow.traveler_id == ReferenceTemplateRow.traveler_id,
                )
                .where(ManifestEntryRow.flight_id == flight_id, in_force())
                .where(ReferenceTemplateRow.model == model)
            )
        )
        methods = dict(
            session.execute(
                select(EncounterRow.traveler_id, EncounterRow.method).where(
                    EncounterRow.flight_id == flight_id
                )
            ).all()
        )
        rows = session.execute(
            select(ManifestEntryRow, DocumentRow, DataKeyRow)
            .join(DocumentRow, ManifestEntryRow.document_id == DocumentRow.id)
            .outerjoin(DataKeyRow, DataKeyRow.traveler_id == ManifestEntryRow.traveler_id)
            .where(ManifestEntryRow.flight_id == flight_id, in_force())
        ).all()
        statuses = []
        unwrapped: dict[str, bytes] = {}
        for entry, doc, data_key in rows:
            if carrier is None or doc.details_by == carrier:
                personal = self._sealer.open_personal(doc, data_key, unwrapped)
                klass, document_type = doc.citizenship_class or "", doc.document_type or ""
            elif own_only or doc.details_by not in (None, AGENCY):
                personal = self._sent(entry, data_key, unwrapped)
                if not personal and not own_only:  # nothing of its own: the details in force
                    personal = self._sealer.open_personal(doc, data_key, unwrapped)
                    klass, document_type = doc.citizenship_class or "", doc.document_type or ""
                else:
                    klass = personal.get("citizenship_class", "")
                    document_type = personal.get("document_type", "")
            else:
                personal = self._sealer.open_personal(doc, data_key, unwrapped)
                klass, document_type = doc.citizenship_class or "", doc.document_type or ""
            hidden = own_only and not personal
            statuses.append(
                ManifestStatus(
                    traveler_id=entry.traveler_id,
                    document=DocumentKey(
                        doc.issuing_state, personal.get("number", "" if hidden else ERASED)
                    ),
                    surname=personal.get("surname", "" if hidden else ERASED),
                    given_names=personal.get("given_names", ""),
                    citizenship_class=klass,
                    has_photo=not own_only and entry.traveler_id in with_photo,
                    processed=entry.traveler_id in methods,
                    date_of_birth=optional_date(personal.get("date_of_birth")),
                    opted_out=methods.get(entry.traveler_id) == EncounterMethod.OPT_OUT.value,
                    booking_reference=personal.get("booking_reference"),
                    nationality=personal.get("nationality", ""),
                    document_type=document_type,
                )
            )
        statuses.sort(key=lambda s: (s.surname, s.given_names, s.document.number))
        return statuses

    def _sent(
        self, entry: ManifestEntryRow, key_row: DataKeyRow | None, unwrapped: dict[str, bytes]
    ) -> dict[str, str]:
        """What the uploading carrier sent for this entry, opened; empty if nothing was kept
        or it no longer opens (the traveler's key shredded, or shredded and made anew)."""
        if entry.sent is None or key_row is None:
            return {}
        sealed = DocumentRow(traveler_id=entry.traveler_id, personal=entry.sent)
        try:
            return self._sealer.open_personal(sealed, key_row, unwrapped)
        except DecryptionError:
            return {}

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        """The manifest as it was sent, opened (travelers whose key was shredded are left
        out: nothing about them can be read)."""
        rows = self._session.execute(
            select(DocumentRow, DataKeyRow)
            .join(ManifestEntryRow, ManifestEntryRow.document_id == DocumentRow.id)
            .join(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
            .where(ManifestEntryRow.flight_id == flight_id, in_force())
        ).all()
        travelers = []
        for document, data_key in rows:
            personal = self._sealer.open_personal(document, data_key)
            if "surname" not in personal or document.expiry is None:
                continue
            travelers.append(
                ManifestTraveler(
                    surname=personal["surname"],
                    given_names=personal.get("given_names", ""),
                    date_of_birth=date.fromisoformat(personal["date_of_birth"]),
                    sex=Sex(personal["sex"]),
                    nationality=personal["nationality"],
                    citizenship_class=CitizenshipClass(str(document.citizenship_class)),
                    document_type=DocumentType(str(document.document_type)),
                    document=DocumentKey(document.issuing_state, personal["number"]),
                    document_expiry=document.expiry,
                    booking_reference=personal.get("booking_reference"),
                )
            )
        travelers.sort(key=lambda t: (t.surname, t.given_names, t.document.number))
        return travelers


def _conflicts_query() -> _ConflictSelect:
    """Conflicts with their document and the traveler's data key, oldest first."""
    return (
        select(ManifestConflictRow, DocumentRow, DataKeyRow)
        .outerjoin(DocumentRow, DocumentRow.id == ManifestConflictRow.document_id)
        .outerjoin(DataKeyRow, DataKeyRow.traveler_id == ManifestConflictRow.traveler_id)
        .order_by(ManifestConflictRow.created_at, ManifestConflictRow.id)
    )


def _traveler(
    issuing_state: str,
    personal: dict[str, str],
    document_type: str | None,
    expiry: date | None,
    citizenship_class: str | None,
) -> ManifestTraveler | None:
    """Details as a manifest states them; None if they cannot be read (a shredded key)."""
    if "surname" not in personal or expiry is None or document_type is None:
        return None
    return ManifestTraveler(
        surname=personal["surname"],
        given_names=personal.get("given_names", ""),
        date_of_birth=date.fromisoformat(personal["date_of_birth"]),
        sex=Sex(personal["sex"]),
        nationality=personal["nationality"],
        citizenship_class=CitizenshipClass(str(citizenship_class)),
        document_type=DocumentType(document_type),
        document=DocumentKey(issuing_state, personal["number"]),
        document_expiry=expiry,
        booking_reference=personal.get("booking_reference"),
    )


def _sent(traveler: ManifestTraveler) -> dict[str, str]:
    """A carrier's own copy of what it sent: the details and the document's clear columns."""
    return {
        **_personal(traveler),
        "citizenship_class": traveler.citizenship_class.value,
        "document_type": traveler.document_type.value,
        "expiry": traveler.document_expiry.isoformat(),
    }


def _personal(traveler: ManifestTraveler) -> dict[str, str]:
    """The details sealed under the traveler's data key."""
    return {
        "number": traveler.document.number,
        "surname": traveler.surname,
        "given_names": traveler.given_names,
        "date_of_birth": traveler.date_of_birth.isoformat(),
        "sex": traveler.sex.value,
        "nationality": traveler.nationality,
        **(
            {"booking_reference": traveler.booking_reference}
            if traveler.booking_reference is not None
            else {}
        ),
    }
