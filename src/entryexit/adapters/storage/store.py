"""The relational implementation of the services' :class:`~entryexit.services.ports.Store`."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from entryexit.adapters.crypto.envelope import (
    new_data_key,
    open_sealed,
    seal,
    unwrap_data_key,
    wrap_data_key,
)
from entryexit.adapters.storage.console_queries import ConsoleQueries, reference_photo_context
from entryexit.adapters.storage.crossing_queries import CrossingQueries
from entryexit.adapters.storage.database import session_factory
from entryexit.adapters.storage.rows import flight_from_row
from entryexit.adapters.storage.tables import (
    ApiKeyRow,
    AuditEventRow,
    AuditHeadRow,
    CaptureRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    PolicyRow,
    ReferenceTemplateRow,
    TravelerRow,
)
from entryexit.domain.access import Principal, Role, StoredApiKey
from entryexit.domain.audit import GENESIS_HASH, AuditEntry, AuditEvent, chain, sign_head
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.errors import ConflictError
from entryexit.services.ports import (
    CaptureRecord,
    KeyProvider,
    ManifestStatus,
    StoredPolicy,
    StoredTemplate,
    TravelerIdentity,
    TravelerProfile,
)

ERASED = "(erased)"


class _HeadMovedError(Exception):
    """Another writer appended to the audit log first."""


def new_id() -> str:
    return str(uuid.uuid4())


class SqlStore(ConsoleQueries, CrossingQueries):
    """Templates are sealed with their traveler's data key before they reach the database;
    the data keys are stored wrapped by the key provider's current KEK."""

    def __init__(self, engine: Engine, keys: KeyProvider) -> None:
        self.engine = engine
        self._keys = keys
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
            return None if row is None else flight_from_row(row)

    def replace_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange:
        """Make the flight's manifest exactly ``travelers``: add the new, drop the absent,
        refresh the details of the rest. One transaction: all of it or none of it."""
        with self._transaction() as session:
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
                key = (traveler.document.issuing_state, self._digest(traveler.document))
                wanted.add(key)
                document = self._document_for(session, traveler.document, now)
                data_key = self._data_key(session, document.traveler_id, now)
                _apply_details(document, traveler, data_key)
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
                personal = self._open_personal(doc, data_key)
                statuses.append(
                    ManifestStatus(
                        traveler_id=entry.traveler_id,
                        document=DocumentKey(doc.issuing_state, personal.get("number", ERASED)),
                        surname=personal.get("surname", ERASED),
                        given_names=personal.get("given_names", ""),
                        citizenship_class=doc.citizenship_class or "",
                        has_photo=entry.traveler_id in with_photo,
                        processed=entry.traveler_id in methods,
                        date_of_birth=_optional_date(personal.get("date_of_birth")),
                        opted_out=methods.get(entry.traveler_id) == EncounterMethod.OPT_OUT.value,
                    )
                )
            statuses.sort(key=lambda s: (s.surname, s.given_names, s.document.number))
            return statuses

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        """The manifest as it was sent, opened (travelers whose key was shredded are left
        out: nothing about them can be read)."""
        with self._transaction() as session:
            rows = session.execute(
                select(DocumentRow, DataKeyRow)
                .join(ManifestEntryRow, ManifestEntryRow.document_id == DocumentRow.id)
                .join(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
                .where(ManifestEntryRow.flight_id == flight_id)
            ).all()
            travelers = []
            for document, data_key in rows:
                personal = self._open_personal(document, data_key)
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

    def outcomes_by_sex(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per sex (from the sealed manifest details), for flights staged in the period:
        travelers on their manifests with a reference photo, and how each was processed.
        Counts only."""
        with self._transaction() as session:
            rows = session.execute(
                select(ManifestEntryRow, DocumentRow, DataKeyRow, FlightRow)
                .join(FlightRow, FlightRow.id == ManifestEntryRow.flight_id)
                .join(DocumentRow, DocumentRow.id == ManifestEntryRow.document_id)
                .join(DataKeyRow, DataKeyRow.traveler_id == ManifestEntryRow.traveler_id)
                .where(FlightRow.gallery_staged_at >= since)
                .where(FlightRow.gallery_staged_at <= until)
            ).all()
            with_photo = set(session.scalars(select(ReferenceTemplateRow.traveler_id)))
            methods = {
                (flight_id, traveler_id): (
                    # A document check that resolved a gate no-match: an officer confirmed
                    # that the camera failed someone who was on the manifest.
                    "confirmed_false_non_match"
                    if method == EncounterMethod.MANUAL_DOCUMENT_CHECK.value
                    and capture_id is not None
                    else method
                )
                for flight_id, traveler_id, method, capture_id in session.execute(
                    select(
                        EncounterRow.flight_id,
                        EncounterRow.traveler_id,
                        EncounterRow.method,
                        EncounterRow.capture_id,
                    )
                )
            }
            counts: dict[str, dict[str, int]] = {}
            for entry, document, data_key, flight in rows:
                if entry.traveler_id not in with_photo:
                    continue
                sex = self._open_personal(document, data_key).get("sex", "unknown")
                method = methods.get((flight.id, entry.traveler_id), "not_processed")
                tally = counts.setdefault(sex, {})
                tally["travelers_with_photo"] = tally.get("travelers_with_photo", 0) + 1
                tally[method] = tally.get(method, 0) + 1
            return counts

    def _digest(self, document: DocumentKey) -> str:
        """The keyed digest by which a document is found without storing its number."""
        message = f"{document.issuing_state}:{document.number}".encode()
        return hmac.new(self._keys.index_key(), message, hashlib.sha256).hexdigest()

    def _document_for(self, session: Session, key: DocumentKey, now: datetime) -> DocumentRow:
        """The document row for ``key``, creating it (and a new traveler) when first seen."""
        digest = self._digest(key)
        row = session.scalar(
            select(DocumentRow).where(
                DocumentRow.issuing_state == key.issuing_state, DocumentRow.number_digest == digest
            )
        )
        if row is not None:
            return row
        traveler = TravelerRow(id=new_id(), created_at=now)
        session.add(traveler)
        session.flush()  # no ORM relationship orders the inserts, so write the traveler first
        data_key = self._data_key(session, traveler.id, now)
        row = DocumentRow(
            id=new_id(),
            traveler_id=traveler.id,
            issuing_state=key.issuing_state,
            number_digest=digest,
            personal=_seal_personal(data_key, traveler.id, {"number": key.number}),
        )
        session.add(row)
        session.flush()
        return row

    def _open_personal(
        self,
        doc: DocumentRow,
        data_key: DataKeyRow | None,
        unwrapped: dict[str, bytes] | None = None,
    ) -> dict[str, str]:
        """A document's sealed details; empty once the traveler's key is shredded.
        ``unwrapped`` caches data keys across the documents of one traveler."""
        if data_key is None or doc.personal is None:
            return {}
        key = unwrapped.get(doc.traveler_id) if unwrapped is not None else None
        if key is None:
            key = unwrap_data_key(
                self._keys.kek(data_key.kek_id), data_key.wrapped_key, doc.traveler_id
            )
            if unwrapped is not None:
                unwrapped[doc.traveler_id] = key
        opened = open_sealed(key, doc.personal, f"personal:{doc.traveler_id}".encode())
        details: dict[str, str] = json.loads(opened)
        return details

    def traveler_identities(self, traveler_ids: list[str]) -> dict[str, TravelerIdentity]:
        """Name, nationality and latest document of each traveler (for an officer's report),
        read in batches; travelers without a document are left out."""
        found: dict[str, TravelerIdentity] = {}
        unique = sorted(set(traveler_ids))
        with self._transaction() as session:
            for start in range(0, len(unique), 500):
                batch = unique[start : start + 500]
                rows = session.execute(
                    select(DocumentRow, DataKeyRow)
                    .outerjoin(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
                    .where(DocumentRow.traveler_id.in_(batch))
                    .order_by(DocumentRow.traveler_id, DocumentRow.expiry)
                ).all()
                keys: dict[str, bytes] = {}
                for doc, data_key in rows:
                    personal = self._open_personal(doc, data_key, keys)
                    # Ordered by expiry: the last one written is the newest document.
                    found[doc.traveler_id] = TravelerIdentity(
                        traveler_id=doc.traveler_id,
                        surname=personal.get("surname", ERASED),
                        given_names=personal.get("given_names", ""),
                        nationality=personal.get("nationality", ""),
                        document=DocumentKey(doc.issuing_state, personal.get("number", ERASED)),
                    )
        return found

    def encounters_of(self, traveler_id: str) -> list[Encounter]:
        with self._transaction() as session:
            rows = session.scalars(
                select(EncounterRow)
                .where(EncounterRow.traveler_id == traveler_id)
                .order_by(EncounterRow.occurred_at)
            ).all()
            return [_encounter(row) for row in rows]

    # --- reference photos and galleries ---------------------------------------------
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
        with self._transaction() as session:
            row = self._document_for(session, document, now)
            template_id = new_id()
            data_key = self._data_key(session, row.traveler_id, now)
            sealed = seal(data_key, vector, _template_context(template_id, row.traveler_id, model))
            sealed_image = (
                None
                if image is None
                else seal(data_key, image, reference_photo_context(template_id, row.traveler_id))
            )
            session.add(
                ReferenceTemplateRow(
                    id=template_id,
                    document_id=row.id,
                    traveler_id=row.traveler_id,
                    source=source.value,
                    model=model,
                    vector=sealed,
                    created_at=now,
                    expires_at=expires_at,
                    image=sealed_image,
                )
            )
            return template_id, row.traveler_id

    def traveler_for_document(self, document: DocumentKey) -> str | None:
        with self._transaction() as session:
            return session.scalar(
                select(DocumentRow.traveler_id).where(
                    DocumentRow.issuing_state == document.issuing_state,
                    DocumentRow.number_digest == self._digest(document),
                )
            )

    def traveler_profile(self, traveler_id: str) -> TravelerProfile:
        """What retention and participation rules need: class and birth date, from the
        traveler's described document (none yet, or key shredded: unknown)."""
        with self._transaction() as session:
            row = session.execute(
                select(DocumentRow, DataKeyRow)
                .outerjoin(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
                .where(DocumentRow.traveler_id == traveler_id)
                .where(DocumentRow.citizenship_class.is_not(None))
                .limit(1)
            ).first()
            if row is None:
                return TravelerProfile(None, None)
            document, data_key = row
            personal = self._open_personal(document, data_key)
            return TravelerProfile(
                CitizenshipClass(str(document.citizenship_class)),
                _optional_date(personal.get("date_of_birth")),
            )

    def _data_key(self, session: Session, traveler_id: str, now: datetime) -> bytes:
        """The traveler's data key, created (and wrapped by the current KEK) on first use."""
        stored = session.get(DataKeyRow, traveler_id)
        if stored is not None:
            return unwrap_data_key(self._keys.kek(stored.kek_id), stored.wrapped_key, traveler_id)
        kek_id, kek = self._keys.current_kek()
        data_key = new_data_key()
        session.add(
            DataKeyRow(
                traveler_id=traveler_id,
                kek_id=kek_id,
                wrapped_key=wrap_data_key(kek, data_key, traveler_id),
                created_at=now,
            )
        )
        session.flush()
        return data_key

    def gallery_templates(self, flight_id: str, model: str) -> list[StoredTemplate]:
        """The flight's templates, opened. Templates whose data key was shredded are gone for
        good and are simply not returned."""
        with self._transaction() as session:
            rows = session.execute(
                select(ReferenceTemplateRow, DataKeyRow)
                .join(
                    ManifestEntryRow,
                    ManifestEntryRow.traveler_id == ReferenceTemplateRow.traveler_id,
                )
                .join(DataKeyRow, DataKeyRow.traveler_id == ReferenceTemplateRow.traveler_id)
                .where(ManifestEntryRow.flight_id == flight_id)
                .where(ReferenceTemplateRow.model == model)
                .order_by(ReferenceTemplateRow.traveler_id, ReferenceTemplateRow.created_at)
            ).all()
            keys: dict[str, bytes] = {}
            result = []
            for template, data_key in rows:
                if template.traveler_id not in keys:
                    keys[template.traveler_id] = unwrap_data_key(
                        self._keys.kek(data_key.kek_id), data_key.wrapped_key, template.traveler_id
                    )
                vector = open_sealed(
                    keys[template.traveler_id],
                    template.vector,
                    _template_context(template.id, template.traveler_id, template.model),
                )
                result.append(StoredTemplate(template.traveler_id, vector, model))
            return result

    # --- keys: shredding and rotation ------------------------------------------------
    def shred_traveler(self, traveler_id: str) -> int:
        """Crypto-shred: delete the traveler's data key (every sealed copy, backups included,
        becomes unreadable) and then the sealed templates themselves. Returns how many."""
        with self._transaction() as session:
            templates = session.execute(
                delete(ReferenceTemplateRow).where(ReferenceTemplateRow.traveler_id == traveler_id)
            )
            session.execute(delete(DataKeyRow).where(DataKeyRow.traveler_id == traveler_id))
            return int(getattr(templates, "rowcount", 0) or 0)

    def rotate_data_keys(self, batch_size: int = 500) -> int:
        """Re-wrap every data key not under the current KEK, a batch per transaction, so the
        service keeps running (each row is always readable with the key it names)."""
        current_id, current = self._keys.current_kek()
        rewrapped = 0
        while True:
            with self._transaction() as session:
                rows = session.scalars(
                    select(DataKeyRow).where(DataKeyRow.kek_id != current_id).limit(batch_size)
                ).all()
                for row in rows:
                    data_key = unwrap_data_key(
                        self._keys.kek(row.kek_id), row.wrapped_key, row.traveler_id
                    )
                    row.wrapped_key = wrap_data_key(current, data_key, row.traveler_id)
                    row.kek_id = current_id
                captures = session.scalars(
                    select(CaptureRow)
                    .where(CaptureRow.kek_id.is_not(None), CaptureRow.kek_id != current_id)
                    .limit(batch_size)
                ).all()
                for capture in captures:
                    if capture.kek_id is None or capture.wrapped_key is None:
                        continue
                    owner = f"capture:{capture.id}"
                    image_key = unwrap_data_key(
                        self._keys.kek(capture.kek_id), capture.wrapped_key, owner
                    )
                    capture.wrapped_key = wrap_data_key(current, image_key, owner)
                    capture.kek_id = current_id
                rewrapped += len(rows) + len(captures)
            if len(rows) < batch_size and len(captures) < batch_size:
                return rewrapped

    def data_keys_by_kek(self) -> dict[str, int]:
        with self._transaction() as session:
            counts: dict[str, int] = {}
            for query in (
                select(DataKeyRow.kek_id, func.count()).group_by(DataKeyRow.kek_id),
                select(CaptureRow.kek_id, func.count())
                .where(CaptureRow.kek_id.is_not(None))
                .group_by(CaptureRow.kek_id),
            ):
                for kek_id, count in session.execute(query).all():
                    counts[str(kek_id)] = counts.get(str(kek_id), 0) + int(count)
            return counts

    def capture_image(self, capture_id: str) -> bytes | None:
        """The sealed review image of a capture, opened; ``None`` once purged."""
        with self._transaction() as session:
            row = session.get(CaptureRow, capture_id)
            if row is None or row.image is None or row.wrapped_key is None or row.kek_id is None:
                return None
            owner = f"capture:{capture_id}"
            image_key = unwrap_data_key(self._keys.kek(row.kek_id), row.wrapped_key, owner)
            return open_sealed(image_key, row.image, f"capture-image:{capture_id}".encode())

    # --- policies, retention ----------------------------------------------------------
    def add_policy(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool:
        """Store a policy version; ``False`` if this exact file was loaded before. A version
        cannot be changed once loaded (history is kept, not rewritten)."""
        with self._transaction() as session:
            existing = session.get(PolicyRow, policy.version)
            if existing is not None:
                if existing.sha256 != policy.sha256:
                    raise ConflictError(
                        f"policy version {policy.version} is already loaded with different"
                        " content; give the new policy a new version"
                    )
                return False
            session.add(
                PolicyRow(
                    version=policy.version,
                    effective_from=effective_from,
                    source=policy.source,
                    sha256=policy.sha256,
                    loaded_at=now,
                )
            )
            return True

    def policies(self) -> list[StoredPolicy]:
        with self._transaction() as session:
            rows = session.scalars(select(PolicyRow).order_by(PolicyRow.effective_from)).all()
            return [StoredPolicy(r.version, r.source, r.sha256) for r in rows]

    def purge_expired(self, now: datetime) -> dict[str, int]:
        """Delete everything whose time is up, one kind per transaction: interrupting it
        loses nothing and running it again deletes nothing more."""
        counts: dict[str, int] = {}
        with self._transaction() as session:
            result = session.execute(
                update(CaptureRow)
                .where(CaptureRow.image.is_not(None), CaptureRow.image_expires_at <= now)
                .values(image=None, wrapped_key=None, kek_id=None, image_expires_at=None)
            )
            counts["capture_images"] = int(getattr(result, "rowcount", 0) or 0)
        for kind, table in (
            ("capture_records", CaptureRow),
            ("reference_templates", ReferenceTemplateRow),
            ("encounter_records", EncounterRow),
        ):
            with self._transaction() as session:
                result = session.execute(delete(table).where(table.expires_at <= now))
                counts[kind] = int(getattr(result, "rowcount", 0) or 0)
        with self._transaction() as session:
            # A data key that seals neither a template nor a document protects nothing.
            orphaned = session.execute(
                delete(DataKeyRow).where(
                    ~select(ReferenceTemplateRow.id)
                    .where(ReferenceTemplateRow.traveler_id == DataKeyRow.traveler_id)
                    .exists(),
                    ~select(DocumentRow.id)
                    .where(DocumentRow.traveler_id == DataKeyRow.traveler_id)
                    .exists(),
                )
            )
            counts["data_keys"] = int(getattr(orphaned, "rowcount", 0) or 0)
        with self._transaction() as session:
            result = session.execute(
                update(FlightRow)
                .where(FlightRow.gallery_version > 0, FlightRow.gallery_expires_at <= now)
                .values(gallery_version=0, gallery_expires_at=None)
            )
            counts["staged_galleries"] = int(getattr(result, "rowcount", 0) or 0)
        return counts

    def retention_counts(self, now: datetime) -> dict[str, dict[str, int]]:
        """Per kind: how many items are held and how many are past their expiry."""
        with self._transaction() as session:

            def count(*conditions: Any) -> int:
                return int(session.scalar(select(func.count()).where(*conditions)) or 0)

            return {
                "capture_images": {
                    "held": count(CaptureRow.image.is_not(None)),
                    "overdue": count(
                        CaptureRow.image.is_not(None), CaptureRow.image_expires_at <= now
                    ),
                },
                "capture_records": {
                    "held": count(CaptureRow.id.is_not(None)),
                    "overdue": count(CaptureRow.expires_at <= now),
                },
                "reference_templates": {
                    "held": count(ReferenceTemplateRow.id.is_not(None)),
                    "overdue": count(ReferenceTemplateRow.expires_at <= now),
                },
                "encounter_records": {
                    "held": count(EncounterRow.id.is_not(None)),
                    "overdue": count(EncounterRow.expires_at <= now),
                },
                "staged_galleries": {
                    "held": count(FlightRow.gallery_version > 0),
                    "overdue": count(
                        FlightRow.gallery_version > 0, FlightRow.gallery_expires_at <= now
                    ),
                },
            }

    def decision_counts(self, since: datetime, until: datetime) -> dict[str, int]:
        with self._transaction() as session:
            counts: dict[str, int] = {}
            for decision, number in session.execute(
                select(CaptureRow.decision, func.count())
                .where(CaptureRow.received_at >= since, CaptureRow.received_at <= until)
                .group_by(CaptureRow.decision)
            ).all():
                counts[f"captures_{decision}"] = int(number)
            for method, number in session.execute(
                select(EncounterRow.method, func.count())
                .where(EncounterRow.occurred_at >= since, EncounterRow.occurred_at <= until)
                .group_by(EncounterRow.method)
            ).all():
                counts[f"encounters_{method}"] = int(number)
            return counts

    # --- audit log -------------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditEvent:
        """Chain ``entry`` after the last event and re-sign the head, atomically. Concurrent
        writers collide on the sequence number (or the head row) and retry."""
        for _ in range(50):
            try:
                with self._transaction() as session:
                    head = session.get(AuditHeadRow, 1)
                    sequence = 1 if head is None else head.sequence + 1
                    previous = GENESIS_HASH if head is None else head.hash
                    event = chain(entry, sequence, previous)
                    session.add(_audit_row(event))
                    signature = sign_head(self._keys.audit_key(), sequence, event.hash)
                    if head is None:
                        session.add(
                            AuditHeadRow(
                                id=1, sequence=sequence, hash=event.hash, signature=signature
                            )
                        )
                        session.flush()
                    else:
                        moved = session.execute(
                            update(AuditHeadRow)
                            .where(AuditHeadRow.id == 1, AuditHeadRow.sequence == head.sequence)
                            .values(sequence=sequence, hash=event.hash, signature=signature)
                        )
                        if getattr(moved, "rowcount", 0) != 1:
                            raise _HeadMovedError
                return event
            except (IntegrityError, _HeadMovedError):
                continue
        raise ConflictError("the audit log is too busy; the action was not recorded")

    def audit_events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        with self._transaction() as session:
            query = (
                select(AuditEventRow)
                .where(AuditEventRow.sequence > after_sequence)
                .order_by(AuditEventRow.sequence)
                .limit(limit)
            )
            if action is not None:
                query = query.where(AuditEventRow.action == action)
            if actor_key_id is not None:
                query = query.where(AuditEventRow.actor_key_id == actor_key_id)
            return [_audit_event(row) for row in session.scalars(query)]

    def audit_head(self) -> tuple[int, str] | None:
        with self._transaction() as session:
            head = session.get(AuditHeadRow, 1)
            return None if head is None else (head.sequence, head.signature)

    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        with self._transaction() as session:
            session.execute(
                update(FlightRow)
                .where(FlightRow.id == flight_id)
                .values(
                    gallery_version=FlightRow.gallery_version + 1,
                    gallery_staged_at=now,
                    gallery_expires_at=expires_at,
                )
            )
            return int(
                session.scalar(select(FlightRow.gallery_version).where(FlightRow.id == flight_id))
                or 0
            )

    # --- captures and encounters -----------------------------------------------------
    def add_capture(self, capture: CaptureRecord) -> None:
        with self._transaction() as session:
            sealed = wrapped = kek_id = None
            if capture.image is not None:
                kek_id, kek = self._keys.current_kek()
                image_key = new_data_key()
                wrapped = wrap_data_key(kek, image_key, f"capture:{capture.id}")
                sealed = seal(image_key, capture.image, f"capture-image:{capture.id}".encode())
            session.add(
                CaptureRow(
                    policy_version=capture.policy_version,
                    expires_at=capture.expires_at,
                    image=sealed,
                    image_expires_at=capture.image_expires_at if sealed else None,
                    wrapped_key=wrapped,
                    kek_id=kek_id,
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
                        expires_at=encounter.expires_at,
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
            return [_encounter(r) for r in rows]


def _encounter(r: EncounterRow) -> Encounter:
    return Encounter(
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
        expires_at=r.expires_at,
    )


def _template_context(template_id: str, traveler_id: str, model: str) -> bytes:
    return f"template:{template_id}:{traveler_id}:{model}".encode()


def _audit_row(event: AuditEvent) -> AuditEventRow:
    entry = event.entry
    return AuditEventRow(
        sequence=event.sequence,
        occurred_at=entry.occurred_at,
        action=entry.action,
        outcome=entry.outcome,
        actor_key_id=entry.actor_key_id,
        actor_role=entry.actor_role,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        policy_version=entry.policy_version,
        details=json.dumps(dict(entry.details), sort_keys=True),
        previous_hash=event.previous_hash,
        hash=event.hash,
    )


def _audit_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        sequence=row.sequence,
        entry=AuditEntry(
            occurred_at=row.occurred_at,
            action=row.action,
            outcome=row.outcome,
            actor_key_id=row.actor_key_id,
            actor_role=row.actor_role,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            policy_version=row.policy_version,
            details=json.loads(row.details),
        ),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


def _apply_details(row: DocumentRow, traveler: ManifestTraveler, data_key: bytes) -> None:
    row.document_type = traveler.document_type.value
    row.expiry = traveler.document_expiry
    row.citizenship_class = traveler.citizenship_class.value
    row.personal = _seal_personal(
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


def _seal_personal(data_key: bytes, traveler_id: str, details: dict[str, str]) -> bytes:
    return seal(data_key, json.dumps(details).encode(), f"personal:{traveler_id}".encode())


def _optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
