"""The relational implementation of the services' :class:`~entryexit.services.ports.Store`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from entryexit.adapters.storage.database import session_factory
from entryexit.adapters.storage.tables import (
    ApiKeyRow,
    CaptureRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
    TravelerRow,
)
from entryexit.domain.access import Principal, Role, StoredApiKey
from entryexit.domain.model import (
    Direction,
    DocumentKey,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestTraveler,
    PhotoSource,
)
from entryexit.services.ports import CaptureRecord, ManifestStatus, StoredTemplate


def new_id() -> str:
    return str(uuid.uuid4())


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions: sessionmaker[Session] = session_factory(engine)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # --- API keys --------------------------------------------------------------------
    def count_api_keys(self) -> int:
        with self._transaction() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)

    def add_api_key(self, key: StoredApiKey) -> None:
        with self._transaction() as session:
            session.add(
                ApiKeyRow(
                    id=key.principal.key_id,
                    name=key.principal.name,
                    role=key.principal.role.value,
                    prefix=key.prefix,
                    secret_hash=key.secret_hash,
                    carrier=key.principal.carrier,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )

    def find_api_key(self, prefix: str) -> StoredApiKey | None:
        with self._transaction() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))
            if row is None:
                return None
            return StoredApiKey(
                principal=Principal(row.id, row.name, Role(row.role), row.carrier),
                prefix=row.prefix,
                secret_hash=row.secret_hash,
                created_at=row.created_at,
                revoked_at=row.revoked_at,
            )

    # --- flights and manifests -------------------------------------------------------
    def add_flight(self, flight: Flight) -> None:
        with self._transaction() as session:
            session.add(
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

    def get_flight(self, flight_id: str) -> Flight | None:
        with self._transaction() as session:
            row = session.get(FlightRow, flight_id)
            return None if row is None else _flight(row)

    def replace_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange:
        """Make the flight's manifest exactly ``travelers``: add the new, drop the absent,
        refresh the details of the rest. One transaction: all of it or none of it."""
        with self._transaction() as session:
            existing = {
                (doc.issuing_state, doc.number): entry
                for entry, doc in session.execute(
                    select(ManifestEntryRow, DocumentRow)
                    .join(DocumentRow, ManifestEntryRow.document_id == DocumentRow.id)
                    .where(ManifestEntryRow.flight_id == flight_id)
                ).all()
            }
            wanted = set()
            added = updated = 0
            for traveler in travelers:
                key = (traveler.document.issuing_state, traveler.document.number)
                wanted.add(key)
                document = _document_for(session, traveler.document, now)
                _apply_details(document, traveler)
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

    def manifest_status(self, flight_id: str, model: str) -> list[ManifestStatus]:
        with self._transaction() as session:
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
            processed = set(
                session.scalars(
                    select(EncounterRow.traveler_id).where(EncounterRow.flight_id == flight_id)
                )
            )
            rows = session.execute(
                select(ManifestEntryRow, DocumentRow)
                .join(DocumentRow, ManifestEntryRow.document_id == DocumentRow.id)
                .where(ManifestEntryRow.flight_id == flight_id)
                .order_by(DocumentRow.surname, DocumentRow.given_names, DocumentRow.number)
            ).all()
            return [
                ManifestStatus(
                    traveler_id=entry.traveler_id,
                    document=DocumentKey(doc.issuing_state, doc.number),
                    surname=doc.surname or "",
                    given_names=doc.given_names or "",
                    citizenship_class=doc.citizenship_class or "",
                    has_photo=entry.traveler_id in with_photo,
                    processed=entry.traveler_id in processed,
                )
                for entry, doc in rows
            ]

    # --- reference photos and galleries ---------------------------------------------
    def add_reference_template(
        self,
        document: DocumentKey,
        source: PhotoSource,
        vector: bytes,
        model: str,
        now: datetime,
    ) -> tuple[str, str]:
        with self._transaction() as session:
            row = _document_for(session, document, now)
            template_id = new_id()
            session.add(
                ReferenceTemplateRow(
                    id=template_id,
                    document_id=row.id,
                    traveler_id=row.traveler_id,
                    source=source.value,
                    model=model,
                    vector=vector,
                    created_at=now,
                )
            )
            return template_id, row.traveler_id

    def gallery_templates(self, flight_id: str, model: str) -> list[StoredTemplate]:
        with self._transaction() as session:
            rows = session.execute(
                select(ReferenceTemplateRow.traveler_id, ReferenceTemplateRow.vector)
                .join(
                    ManifestEntryRow,
                    ManifestEntryRow.traveler_id == ReferenceTemplateRow.traveler_id,
                )
                .where(ManifestEntryRow.flight_id == flight_id)
                .where(ReferenceTemplateRow.model == model)
                .order_by(ReferenceTemplateRow.traveler_id, ReferenceTemplateRow.created_at)
            ).all()
            return [
                StoredTemplate(traveler_id, bytes(vector), model) for traveler_id, vector in rows
            ]

    def mark_gallery_staged(self, flight_id: str, now: datetime) -> int:
        with self._transaction() as session:
            session.execute(
                update(FlightRow)
                .where(FlightRow.id == flight_id)
                .values(gallery_version=FlightRow.gallery_version + 1, gallery_staged_at=now)
            )
            return int(
                session.scalar(select(FlightRow.gallery_version).where(FlightRow.id == flight_id))
                or 0
            )

    # --- captures and encounters -----------------------------------------------------
    def add_capture(self, capture: CaptureRecord) -> None:
        with self._transaction() as session:
            session.add(
                CaptureRow(
                    id=capture.id,
                    flight_id=capture.flight_id,
                    gate=capture.gate,
                    device=capture.device,
                    received_at=capture.received_at,
                    decision=capture.decision,
                    reason=capture.reason,
                    score=capture.score,
                    traveler_id=capture.traveler_id,
                    model=capture.model,
                )
            )

    def add_encounter(self, encounter: Encounter) -> bool:
        """Record the encounter; ``False`` if this traveler already has one on this flight
        (the unique constraint decides, so concurrent gates on any number of processes agree)."""
        try:
            with self._transaction() as session:
                session.add(
                    EncounterRow(
                        id=encounter.id,
                        flight_id=encounter.flight_id,
                        traveler_id=encounter.traveler_id,
                        direction=encounter.direction.value,
                        method=encounter.method.value,
                        gate=encounter.gate,
                        device=encounter.device,
                        occurred_at=encounter.occurred_at,
                        score=encounter.score,
                        model=encounter.model,
                        policy_version=encounter.policy_version,
                        capture_id=encounter.capture_id,
                    )
                )
        except IntegrityError:
            return False
        return True

    def list_encounters(self, flight_id: str) -> list[Encounter]:
        with self._transaction() as session:
            rows = session.scalars(
                select(EncounterRow)
                .where(EncounterRow.flight_id == flight_id)
                .order_by(EncounterRow.occurred_at)
            ).all()
            return [
                Encounter(
                    id=r.id,
                    flight_id=r.flight_id,
                    traveler_id=r.traveler_id,
                    direction=Direction(r.direction),
                    method=EncounterMethod(r.method),
                    gate=r.gate,
                    device=r.device,
                    occurred_at=r.occurred_at,
                    score=r.score,
                    model=r.model,
                    policy_version=r.policy_version,
                    capture_id=r.capture_id,
                )
                for r in rows
            ]


def _flight(row: FlightRow) -> Flight:
    return Flight(
        id=row.id,
        carrier=row.carrier,
        number=row.number,
        scheduled_departure=row.scheduled_departure,
        origin=row.origin,
        destination=row.destination,
        direction=Direction(row.direction),
        created_at=row.created_at,
        gallery_version=row.gallery_version,
        gallery_staged_at=row.gallery_staged_at,
    )


def _document_for(session: Session, key: DocumentKey, now: datetime) -> DocumentRow:
    """The document row for ``key``, creating it (and a new traveler) when first seen."""
    row = session.scalar(
        select(DocumentRow).where(
            DocumentRow.issuing_state == key.issuing_state, DocumentRow.number == key.number
        )
    )
    if row is not None:
        return row
    traveler = TravelerRow(id=new_id(), created_at=now)
    session.add(traveler)
    session.flush()  # no ORM relationship orders the inserts, so write the traveler first
    row = DocumentRow(
        id=new_id(), traveler_id=traveler.id, issuing_state=key.issuing_state, number=key.number
    )
    session.add(row)
    session.flush()
    return row


def _apply_details(row: DocumentRow, traveler: ManifestTraveler) -> None:
    row.document_type = traveler.document_type.value
    row.expiry = traveler.document_expiry
    row.surname = traveler.surname
    row.given_names = traveler.given_names
    row.date_of_birth = traveler.date_of_birth
    row.sex = traveler.sex.value
    row.nationality = traveler.nationality
    row.citizenship_class = traveler.citizenship_class.value
