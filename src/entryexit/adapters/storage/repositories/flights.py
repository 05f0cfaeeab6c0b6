"""Flights and their manifests (the travelers' details sealed under their data keys)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.travelers import document_for, optional_date
from entryexit.adapters.storage.rows import flight_from_row
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
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

    def _apply_details(self, row: DocumentRow, traveler: ManifestTraveler, data_key: bytes) -> None:
        row.document_type = traveler.document_type.value
        row.expiry = traveler.document_expiry
        row.citizenship_class = traveler.citizenship_class.value
        row.personal = self._sealer.seal_personal(
            data_key,
            row.traveler_id,
            {
                "number": traveler.document.number,
                "surname": traveler.surname,
                "given_names": traveler.given_names,
                "date_of_birth": traveler.date_of_birth.isoformat(),
                "sex": traveler.sex.value,
                "nationality": traveler.nationality,
            },
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
