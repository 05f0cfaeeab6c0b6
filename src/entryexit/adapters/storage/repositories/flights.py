"""Flights and their manifests (the travelers' details sealed under their data keys)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.travelers import document_for, new_id, optional_date
from entryexit.adapters.storage.rows import flight_from_row
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    ManifestStagingRow,
    ReferenceTemplateRow,
    TravelerRow,
)
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestTraveler,
    Sex,
)
from entryexit.services.ports import ManifestStatus

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
        row = self._session.get(FlightRow, flight_id)
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
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange:
        """Make the flight's manifest exactly ``travelers``: add the new, drop the absent,
        refresh the details of the rest."""
        session = self._session
        existing = {
            (doc.issuing_state, doc.number_digest): entry
            for entry, doc in session.execute(
                select(ManifestEntryRow, DocumentRow)
                .join(DocumentRow, ManifestEntryRow.document_id == DocumentRow.id)
                .where(ManifestEntryRow.flight_id == flight_id)
            ).all()
        }
        wanted = set()
        added = updated = 0
        for traveler in travelers:
            key = (traveler.document.issuing_state, self._sealer.digest(traveler.document))
            wanted.add(key)
            document = document_for(session, self._sealer, traveler.document, now)
            data_key = self._sealer.data_key(session, document.traveler_id, now)
            self._apply_details(document, traveler, data_key)
            if key in existing:
                updated += 1
            else:
                session.add(
                    ManifestEntryRow(
                        flight_id=flight_id,
                        document_id=document.id,
                        traveler_id=document.traveler_id,
                        added_at=now,
                    )
                )
                added += 1
        removed = 0
        for key, entry in existing.items():
            if key not in wanted:
                session.delete(entry)
                removed += 1
        return ManifestChange(added=added, removed=removed, updated=updated, total=len(wanted))

    def stage_manifest_batch(
        self,
        flight_id: str,
        upload_id: str,
        travelers: Sequence[ManifestTraveler],
        now: datetime,
    ) -> None:
        """Write ``travelers`` into the staging copy ``upload_id`` (one statement per kind of
        row, whatever the batch size). Documents seen for the first time are created with
        their details (they are on no manifest yet); the new details of known documents wait
        in the staging rows for :meth:`swap_manifest`."""
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
            new_travelers = [TravelerRow(id=new_id(), created_at=now) for _ in fresh]
            session.add_all(new_travelers)
            session.flush()
            new_keys = [self._sealer.new_data_key_row(t.id, now) for t in new_travelers]
            session.add_all([row for row, _ in new_keys])
            session.flush()
            for (key, traveler), traveler_row, (_, data_key) in zip(
                fresh, new_travelers, new_keys, strict=True
            ):
                document = DocumentRow(
                    id=new_id(),
                    traveler_id=traveler_row.id,
                    issuing_state=key[0],
                    number_digest=key[1],
                )
                self._apply_details(document, traveler, data_key)
                session.add(document)
                found[key] = document
                keys_of[traveler_row.id] = data_key
            session.flush()
        known = [
            found[key].traveler_id for key, _ in keyed if found[key].traveler_id not in keys_of
        ]
        if known:
            for key_row in session.scalars(
                select(DataKeyRow).where(DataKeyRow.traveler_id.in_(set(known)))
            ):
                keys_of[key_row.traveler_id] = self._sealer.unwrap(key_row)
        staged: list[dict[str, object]] = []
        fresh_keys = {key for key, _ in fresh}
        for key, traveler in keyed:
            document = found[key]
            row: dict[str, object] = {
                "upload_id": upload_id,
                "flight_id": flight_id,
                "document_id": document.id,
                "traveler_id": document.traveler_id,
                "staged_at": now,
            }
            if key not in fresh_keys:
                known_key = keys_of.get(document.traveler_id)
                if known_key is None:  # shredded meanwhile: a key of its own from now on
                    known_key = self._sealer.data_key(session, document.traveler_id, now)
                    keys_of[document.traveler_id] = known_key
                row.update(
                    personal=self._sealed(document.traveler_id, traveler, known_key),
                    document_type=traveler.document_type.value,
                    expiry=traveler.document_expiry,
                    citizenship_class=traveler.citizenship_class.value,
                )
            staged.append(row)
        session.execute(insert(ManifestStagingRow), staged)

    def swap_manifest(self, flight_id: str, upload_id: str, now: datetime) -> ManifestChange:
        """Make the flight's manifest exactly the staging copy ``upload_id`` and drop the copy:
        a handful of set statements, so the transaction stays short at any manifest size."""
        session = self._session
        staging = ManifestStagingRow
        staged_documents = select(staging.document_id).where(staging.upload_id == upload_id)
        on_manifest = (
            select(ManifestEntryRow.id)
            .where(ManifestEntryRow.flight_id == flight_id)
            .where(ManifestEntryRow.document_id == staging.document_id)
        )
        total, updated = session.execute(
            select(func.count(), func.count().filter(exists(on_manifest))).where(
                staging.upload_id == upload_id
            )
        ).one()
        leaving = (
            ManifestEntryRow.flight_id == flight_id,
            ManifestEntryRow.document_id.not_in(staged_documents),
        )
        removed = session.scalar(select(func.count()).where(*leaving)) or 0
        session.execute(delete(ManifestEntryRow).where(*leaving))
        session.execute(
            insert(ManifestEntryRow).from_select(
                ["flight_id", "document_id", "traveler_id", "added_at"],
                select(
                    literal(flight_id),
                    staging.document_id,
                    staging.traveler_id,
                    literal(now, ManifestEntryRow.added_at.type),
                ).where(staging.upload_id == upload_id, ~exists(on_manifest)),
            )
        )
        session.execute(
            update(DocumentRow)
            .where(
                DocumentRow.id == staging.document_id,
                staging.upload_id == upload_id,
                staging.personal.is_not(None),
            )
            .values(
                personal=staging.personal,
                document_type=staging.document_type,
                expiry=staging.expiry,
                citizenship_class=staging.citizenship_class,
            )
            .execution_options(synchronize_session=False)
        )
        # The spent copy is dropped afterwards, in short batches (discard_manifest_staging).
        return ManifestChange(
            added=total - updated, removed=int(removed), updated=updated, total=total
        )

    def discard_manifest_staging(
        self,
        upload_id: str | None = None,
        staged_before: datetime | None = None,
        limit: int | None = None,
    ) -> int:
        """Drop the staging copy ``upload_id`` (swapped in, or failed), or every copy staged
        before ``staged_before`` (uploads whose process died); at most ``limit`` rows."""
        staging = ManifestStagingRow
        condition = (
            staging.upload_id == upload_id
            if upload_id is not None
            else staging.staged_at < (staged_before or datetime.max)
        )
        ids = list(self._session.scalars(select(staging.id).where(condition).limit(limit)))
        if ids:
            self._session.execute(delete(staging).where(staging.id.in_(ids)))
        return len(ids)

    def _sealed(self, traveler_id: str, traveler: ManifestTraveler, data_key: bytes) -> bytes:
        return self._sealer.seal_personal(
            data_key,
            traveler_id,
            {
                "number": traveler.document.number,
                "surname": traveler.surname,
                "given_names": traveler.given_names,
                "date_of_birth": traveler.date_of_birth.isoformat(),
                "sex": traveler.sex.value,
                "nationality": traveler.nationality,
            },
        )

    def _apply_details(self, row: DocumentRow, traveler: ManifestTraveler, data_key: bytes) -> None:
        row.document_type = traveler.document_type.value
        row.expiry = traveler.document_expiry
        row.citizenship_class = traveler.citizenship_class.value
        row.personal = self._sealed(row.traveler_id, traveler, data_key)

    def has_traveler(self, flight_id: str, traveler_id: str) -> bool:
        return (
            self._session.scalar(
                select(ManifestEntryRow.traveler_id)
                .where(ManifestEntryRow.flight_id == flight_id)
                .where(ManifestEntryRow.traveler_id == traveler_id)
                .limit(1)
            )
            is not None
        )

    def manifest_status(self, flight_id: str, model: str) -> list[ManifestStatus]:
        session = self._session
        with_photo = set(
            session.scalars(
                select(ReferenceTemplateRow.traveler_id)
                .join(
                    ManifestEntryRow,
                    ManifestEntryRow.traveler_id == ReferenceTemplateRow.traveler_id,
                )
                .where(ManifestEntryRow.flight_id == flight_id)
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
            .where(ManifestEntryRow.flight_id == flight_id)
        ).all()
        statuses = []
        for entry, doc, data_key in rows:
            personal = self._sealer.open_personal(doc, data_key)
            statuses.append(
                ManifestStatus(
                    traveler_id=entry.traveler_id,
                    document=DocumentKey(doc.issuing_state, personal.get("number", ERASED)),
                    surname=personal.get("surname", ERASED),
                    given_names=personal.get("given_names", ""),
                    citizenship_class=doc.citizenship_class or "",
                    has_photo=entry.traveler_id in with_photo,
                    processed=entry.traveler_id in methods,
                    date_of_birth=optional_date(personal.get("date_of_birth")),
                    opted_out=methods.get(entry.traveler_id) == EncounterMethod.OPT_OUT.value,
                )
            )
        statuses.sort(key=lambda s: (s.surname, s.given_names, s.document.number))
        return statuses

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        """The manifest as it was sent, opened (travelers whose key was shredded are left
        out: nothing about them can be read)."""
        rows = self._session.execute(
            select(DocumentRow, DataKeyRow)
            .join(ManifestEntryRow, ManifestEntryRow.document_id == DocumentRow.id)
            .join(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
            .where(ManifestEntryRow.flight_id == flight_id)
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
                )
            )
        travelers.sort(key=lambda t: (t.surname, t.given_names, t.document.number))
        return travelers
