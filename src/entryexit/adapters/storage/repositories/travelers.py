"""Travelers, their documents (found by keyed digest, details sealed) and reference templates."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import BindParameter, Select, String, and_, bindparam, case, delete, or_, select
from sqlalchemy.orm import Session

from entryexit.adapters.crypto.envelope import DecryptionError
from entryexit.adapters.storage.sealing import (
    Sealer,
    reference_photo_context,
    template_context,
)
from entryexit.adapters.storage.tables import (
    DataKeyRow,
    DocumentRow,
    FlightRow,
    ManifestConflictRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
    TravelerRow,
    in_force,
)
from entryexit.domain.model import (
    AGENCY,
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    Flight,
    PhotoSource,
)
from entryexit.services.ports import StatedDetails, StoredTemplate, TravelerProfile

logger = logging.getLogger(__name__)


def new_id() -> str:
    return str(uuid.uuid4())


def optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# The documents whose issue by the home state shows their holder to be its citizen: its
# passport, and its national identity card (issued to nationals only, review L1); a visa or
# a residence card it issued shows the opposite.
CITIZENSHIP_EVIDENCE = (DocumentType.PASSPORT.value, DocumentType.ID_CARD.value)


def citizen_travelers(home_state: str, *, carrier_word: bool = False) -> Select[str]:
    """The one definition of a citizen on clear columns: the travelers any stored document
    shows to be citizens, holding a passport ``home_state`` issued, or of the citizen class
    as the agency stated it (or as it was stored before documents recorded who set them).
    A national identity card ``home_state`` issued counts as its passport does.
    Any of the traveler's documents counts, whatever their others say (review L11).

    A carrier's word alone deletes no prints (review H1: a desk key re-sending its manifest
    could erase an enrolment): the purge and the manifest's swap ask without
    ``carrier_word``. Every comparison asks with it: a class a carrier stated refuses the
    prints until the agency confirms. Clear columns only: a nationality is sealed, so a
    citizen by nationality alone is not found here (the travelers' ``citizens`` adds it)."""
    stated = DocumentRow.citizenship_class == CitizenshipClass.CITIZEN.value
    if not carrier_word:
        stated = and_(
            stated, or_(DocumentRow.details_by.is_(None), DocumentRow.details_by == AGENCY)
        )
    return select(DocumentRow.traveler_id).where(
        or_(
            stated,
            and_(
                DocumentRow.document_type.in_(CITIZENSHIP_EVIDENCE),
                DocumentRow.issuing_state == home_state,
            ),
        )
    )


def _flight_class() -> Select[str | None, bytes | None, DataKeyRow | None]:
    """:meth:`SqlTravelerRepository.citizenship_class` with a flight, built once (a capture's
    hot path: building the statement cost more than running it). The class in force, and
    where a rival carrier (neither the agency nor the flight's own) holds the details, the
    flight's carrier's sealed copy from the manifest version in force, with the data key to
    open it; the document on the flight's manifest first."""
    entry = ManifestEntryRow
    flight_id: BindParameter[str] = bindparam("flight_id", type_=String())
    rival = and_(
        DocumentRow.details_by.is_not(None),
        DocumentRow.details_by.not_in((AGENCY, bindparam("carrier", type_=String()))),
        entry.sent.is_not(None),
    )
    in_force_of_flight = (
        select(FlightRow.manifest_version).where(FlightRow.id == flight_id).scalar_subquery()
    )
    return (
        select(DocumentRow.citizenship_class, case((rival, entry.sent)), DataKeyRow)
        .select_from(DocumentRow)
        .outerjoin(
            entry,
            and_(
                entry.document_id == DocumentRow.id,
                entry.flight_id == flight_id,
                entry.upload_id == in_force_of_flight,
            ),
        )
        .outerjoin(DataKeyRow, and_(DataKeyRow.traveler_id == DocumentRow.traveler_id, rival))
        .where(DocumentRow.traveler_id == bindparam("traveler_id", type_=String()))
        .where(DocumentRow.citizenship_class.is_not(None))
        .order_by(entry.id.is_(None))
        .limit(1)
    )


_FLIGHT_CLASS = _flight_class()


def document_for(session: Session, sealer: Sealer, key: DocumentKey, now: datetime) -> DocumentRow:
    """The document row for ``key``, creating it (and a new traveler) when first seen."""
    digest = sealer.digest(key)
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
    data_key = sealer.data_key(session, traveler.id, now)
    row = DocumentRow(
        id=new_id(),
        traveler_id=traveler.id,
        issuing_state=key.issuing_state,
        number_digest=digest,
        personal=sealer.seal_personal(data_key, traveler.id, {"number": key.number}),
    )
    session.add(row)
    session.flush()
    return row


class SqlTravelerRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def traveler_for_document(self, document: DocumentKey) -> str | None:
        return self._session.scalar(
            select(DocumentRow.traveler_id).where(
                DocumentRow.issuing_state == document.issuing_state,
                DocumentRow.number_digest == self._sealer.digest(document),
            )
        )

    def profile(self, traveler_id: str) -> TravelerProfile:
        """What retention and participation rules need: class and birth date, from the
        traveler's described document (none yet, or key shredded: unknown)."""
        row = self._session.execute(
            select(DocumentRow, DataKeyRow)
            .outerjoin(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
            .where(DocumentRow.traveler_id == traveler_id)
            .where(DocumentRow.citizenship_class.is_not(None))
            .limit(1)
        ).first()
        if row is None:
            return TravelerProfile(None, None)
        document, data_key = row
        personal = self._sealer.open_personal(document, data_key)
        passport_states = self._session.scalars(
            select(DocumentRow.issuing_state)
            .where(DocumentRow.traveler_id == traveler_id)
            .where(DocumentRow.document_type.in_(CITIZENSHIP_EVIDENCE))
        )
        return TravelerProfile(
            CitizenshipClass(str(document.citizenship_class)),
            optional_date(personal.get("date_of_birth")),
            personal.get("nationality"),
            frozenset(passport_states),
        )

    def citizens(
        self, traveler_ids: Collection[str], home_state: str, *, sealed: bool = True
    ) -> frozenset[str]:
        """Those of ``traveler_ids`` who are citizens, as every comparison refuses them: shown
        by any stored document on clear columns (:func:`citizen_travelers`, a carrier's word
        included), in one query for the whole batch; then, with ``sealed``, a national of
        ``home_state`` among the rest, whose described documents are opened (one query, one
        data-key unwrap each). Without ``sealed`` nothing is opened (review L10)."""
        wanted = set(traveler_ids)
        if not wanted:
            return frozenset()
        found = set(
            self._session.scalars(
                citizen_travelers(home_state, carrier_word=True).where(
                    DocumentRow.traveler_id.in_(wanted)
                )
            )
        )
        rest = wanted - found
        if sealed and rest:
            unwrapped: dict[str, bytes] = {}
            for document, data_key in self._session.execute(
                select(DocumentRow, DataKeyRow)
                .outerjoin(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
                .where(DocumentRow.traveler_id.in_(rest))
                .where(DocumentRow.citizenship_class.is_not(None))
            ):
                if document.traveler_id in found:
                    continue
                personal = self._sealer.open_personal(document, data_key, unwrapped)
                if personal.get("nationality") == home_state:
                    found.add(document.traveler_id)
        return frozenset(found)

    def stated_details(
        self, traveler_ids: Collection[str], *, sealed: bool = True, proposed: bool = False
    ) -> list[StatedDetails]:
        """The details in force of the travelers' described documents, and (``proposed``)
        those open conflicts propose for documents the agency did not set: one query for the
        documents, and with ``proposed`` one for their open conflicts; with ``sealed``, each
        traveler's data key is unwrapped once to open the birth dates (a proposal sealed under
        an earlier key, or one that does not open, has no birth date: its class still
        counts)."""
        wanted = set(traveler_ids)
        if not wanted:
            return []
        if not sealed and not proposed:
            # Clear columns only, nothing else loaded (a flight search asks for every
            # enrolled traveler of the flight).
            return [
                StatedDetails(traveler, CitizenshipClass(str(stated)), None, by)
                for traveler, stated, by in self._session.execute(
                    select(
                        DocumentRow.traveler_id,
                        DocumentRow.citizenship_class,
                        DocumentRow.details_by,
                    )
                    .where(DocumentRow.traveler_id.in_(wanted))
                    .where(DocumentRow.citizenship_class.is_not(None))
                )
            ]
        rows = self._session.execute(
            select(DocumentRow, DataKeyRow)
            .outerjoin(DataKeyRow, DataKeyRow.traveler_id == DocumentRow.traveler_id)
            .where(DocumentRow.traveler_id.in_(wanted))
            .where(DocumentRow.citizenship_class.is_not(None))
        ).all()
        conflicts = (
            self._session.scalars(
                select(ManifestConflictRow)
                .where(ManifestConflictRow.document_id.in_([d.id for d, _ in rows]))
                .where(ManifestConflictRow.resolved_at.is_(None))
                .order_by(ManifestConflictRow.created_at, ManifestConflictRow.id)
            ).all()
            if rows and proposed
            else []
        )
        unwrapped: dict[str, bytes] = {}
        found: list[StatedDetails] = []
        keys: dict[str, DataKeyRow | None] = {}
        for document, data_key in rows:
            keys[document.id] = data_key
            born = None
            if sealed:
                born = optional_date(
                    self._sealer.open_personal(document, data_key, unwrapped).get("date_of_birth")
                )
            found.append(
                StatedDetails(
                    document.traveler_id,
                    CitizenshipClass(str(document.citizenship_class)),
                    born,
                    document.details_by,
                )
            )
        if proposed:
            agency_set = {d.id for d, _ in rows if d.details_by == AGENCY}
            for conflict in conflicts:
                if conflict.document_id in agency_set:
                    continue
                born = None
                if sealed:
                    born = optional_date(
                        self._proposal(conflict, keys.get(conflict.document_id), unwrapped).get(
                            "date_of_birth"
                        )
                    )
                found.append(
                    StatedDetails(
                        conflict.traveler_id,
                        None
                        if conflict.citizenship_class is None
                        else CitizenshipClass(str(conflict.citizenship_class)),
                        born,
                        conflict.proposed_by,
                        conflict.id,
                    )
                )
        return found

    def _proposal(
        self, row: ManifestConflictRow, key_row: DataKeyRow | None, unwrapped: dict[str, bytes]
    ) -> dict[str, str]:
        """A conflict's proposed details, opened; empty when the traveler's key is not the one
        they were sealed under, or they do not open (as the flights repository reads them)."""
        if key_row is None or (
            row.sealed_under is not None and row.sealed_under != key_row.created_at
        ):
            return {}
        try:
            return self._sealer.open_personal(
                DocumentRow(traveler_id=row.traveler_id, personal=row.personal),
                key_row,
                unwrapped,
            )
        except DecryptionError:
            return {}

    def citizenship_class(
        self, traveler_id: str, flight: Flight | None = None
    ) -> CitizenshipClass | None:
        """:meth:`profile`'s class alone: one column, nothing opened (a capture's write).

        With ``flight``, the class that flight decides by, as its gallery staging does
        (``manifest_status`` with the flight's carrier): where a rival carrier holds the
        document's details, what the flight's own carrier sent for it (probe P4: a carrier
        that listed the traveler first must not set the retention of another carrier's
        encounters); details the agency set govern every flight. One indexed statement; the
        carrier's sealed copy is read, and the data key joined, only in that rival case."""
        if flight is None:
            value = self._session.execute(
                select(DocumentRow.citizenship_class)
                .where(DocumentRow.traveler_id == traveler_id)
                .where(DocumentRow.citizenship_class.is_not(None))
                .limit(1)
            ).scalar()
            return None if value is None else CitizenshipClass(str(value))
        row = self._session.execute(
            _FLIGHT_CLASS,
            {"traveler_id": traveler_id, "flight_id": flight.id, "carrier": flight.carrier},
        ).first()
        if row is None:
            return None
        value, sent, data_key = row
        if sent is not None and data_key is not None:
            try:
                own = self._sealer.open_personal(
                    DocumentRow(traveler_id=traveler_id, personal=sent), data_key
                )
            except DecryptionError:  # sealed under a key shredded since: the details in force
                own = {}
            if own.get("citizenship_class"):
                value = own["citizenship_class"]
        return CitizenshipClass(str(value))

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
        row = document_for(self._session, self._sealer, document, now)
        template_id = new_id()
        data_key = self._sealer.data_key(self._session, row.traveler_id, now)
        sealed = self._sealer.seal_with(
            data_key, vector, template_context(template_id, row.traveler_id, model)
        )
        sealed_image = (
            None
            if image is None
            else self._sealer.seal_with(
                data_key, image, reference_photo_context(template_id, row.traveler_id)
            )
        )
        self._session.add(
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

    def gallery_templates(
        self, flight_id: str, model: str, unopenable: set[str] | None = None
    ) -> list[StoredTemplate]:
        """The flight's templates, opened. Templates whose data key was shredded are gone for
        good and are simply not returned; a traveler whose data key or any template does not
        open is left out whole and named in ``unopenable``."""
        rows = self._session.execute(
            select(ReferenceTemplateRow, DataKeyRow)
            .join(
                ManifestEntryRow,
                ManifestEntryRow.traveler_id == ReferenceTemplateRow.traveler_id,
            )
            .join(DataKeyRow, DataKeyRow.traveler_id == ReferenceTemplateRow.traveler_id)
            .where(ManifestEntryRow.flight_id == flight_id, in_force())
            .where(ReferenceTemplateRow.model == model)
            .order_by(ReferenceTemplateRow.traveler_id, ReferenceTemplateRow.created_at)
        ).all()
        keys: dict[str, bytes] = {}
        broken: set[str] = set()
        result = []
        for template, data_key in rows:
            traveler_id = template.traveler_id
            if traveler_id in broken:
                continue
            try:
                if traveler_id not in keys:
                    keys[traveler_id] = self._sealer.unwrap(data_key)
                vector = self._sealer.open_with(
                    keys[traveler_id],
                    template.vector,
                    template_context(template.id, traveler_id, template.model),
                )
            except DecryptionError:
                broken.add(traveler_id)
                continue
            result.append(StoredTemplate(traveler_id, vector, model))
        if broken:
            logger.error(
                "%d traveler(s) of flight %s have sealed rows that do not open (moved or altered"
                " without the keys): left out of the gallery",
                len(broken),
                flight_id,
            )
            if unopenable is not None:
                unopenable.update(broken)
        return [stored for stored in result if stored.traveler_id not in broken]

    def reference_photo(self, traveler_id: str) -> bytes | None:
        """The traveler's newest enrolled photo, opened; None if none is kept."""
        found = self._session.execute(
            select(ReferenceTemplateRow, DataKeyRow)
            .join(DataKeyRow, DataKeyRow.traveler_id == ReferenceTemplateRow.traveler_id)
            .where(ReferenceTemplateRow.traveler_id == traveler_id)
            .where(ReferenceTemplateRow.image.is_not(None))
            .order_by(ReferenceTemplateRow.created_at.desc())
            .limit(1)
        ).first()
        if found is None:
            return None
        template, data_key = found
        assert template.image is not None
        return self._sealer.open_with(
            self._sealer.unwrap(data_key),
            template.image,
            reference_photo_context(template.id, traveler_id),
        )

    def shred(self, traveler_id: str) -> int:
        """Crypto-shred: delete the traveler's data key (every sealed copy, backups included,
        becomes unreadable) and then the sealed templates themselves. Returns how many."""
        templates = self._session.execute(
            delete(ReferenceTemplateRow).where(ReferenceTemplateRow.traveler_id == traveler_id)
        )
        self._session.execute(delete(DataKeyRow).where(DataKeyRow.traveler_id == traveler_id))
        return int(getattr(templates, "rowcount", 0) or 0)
