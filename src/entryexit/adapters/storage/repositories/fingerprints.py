"""Enrolled fingerprints (minutiae templates sealed under the traveler's data key), and the
live prints an officer submitted on a console case (sealed under the same key, bound to the
case, finger and officer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, select
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories.travelers import (
    citizen_travelers,
    document_for,
    new_id,
)
from entryexit.adapters.storage.sealing import Sealer, fingerprint_context
from entryexit.adapters.storage.tables import (
    CaseFingerprintRow,
    DataKeyRow,
    DocumentRow,
    FingerprintTemplateRow,
    ManifestEntryRow,
    in_force,
)
from entryexit.domain.model import DocumentKey
from entryexit.services.ports import CasePrint, StoredFingerprint

__all__ = ["SqlFingerprintRepository", "case_print_context", "citizen_travelers"]


def case_print_context(row: CaseFingerprintRow, part: str) -> bytes:
    """What a kept case print is bound to: a sealed value copied to another case, finger or
    officer (a database writer granting another officer the view) no longer opens."""
    return (
        f"case-print:{part}:{row.id}:{row.capture_id}:{row.traveler_id}:{row.finger}:"
        f"{row.engine}:{row.officer_id}"
    ).encode()


class SqlFingerprintRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

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
        """Store the finger for the document's traveler, replacing an earlier print of the
        same finger by the same engine; returns (template id, traveler id)."""
        row = document_for(self._session, self._sealer, document, now)
        self._session.execute(
            delete(FingerprintTemplateRow).where(
                FingerprintTemplateRow.traveler_id == row.traveler_id,
                FingerprintTemplateRow.finger == finger,
                FingerprintTemplateRow.engine == engine,
            )
        )
        template_id = new_id()
        data_key = self._sealer.data_key(self._session, row.traveler_id, now)
        self._session.add(
            FingerprintTemplateRow(
                id=template_id,
                document_id=row.id,
                traveler_id=row.traveler_id,
                finger=finger,
                engine=engine,
                template=self._sealer.seal_with(
                    data_key, template, fingerprint_context(template_id, row.traveler_id, engine)
                ),
                quality=quality,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return template_id, row.traveler_id

    def of_document(self, document: DocumentKey, engine: str) -> list[StoredFingerprint]:
        """The document's traveler's enrolled fingers for ``engine``, opened (none once the
        traveler's key is shredded)."""
        digest = self._sealer.digest(document)
        rows = self._session.execute(
            select(FingerprintTemplateRow, DataKeyRow)
            .join(DocumentRow, DocumentRow.traveler_id == FingerprintTemplateRow.traveler_id)
            .join(DataKeyRow, DataKeyRow.traveler_id == FingerprintTemplateRow.traveler_id)
            .where(DocumentRow.issuing_state == document.issuing_state)
            .where(DocumentRow.number_digest == digest)
            .where(FingerprintTemplateRow.engine == engine)
            .order_by(FingerprintTemplateRow.finger)
        ).all()
        return self._opened(rows)

    def _opened(
        self, rows: Sequence[Row[FingerprintTemplateRow, DataKeyRow]]
    ) -> list[StoredFingerprint]:
        found = []
        keys: dict[str, bytes] = {}
        for row, key_row in rows:
            data_key = keys.get(row.traveler_id)
            if data_key is None:
                data_key = keys[row.traveler_id] = self._sealer.unwrap(key_row)
            found.append(
                StoredFingerprint(
                    id=row.id,
                    traveler_id=row.traveler_id,
                    finger=row.finger,
                    engine=row.engine,
                    template=self._sealer.open_with(
                        data_key,
                        row.template,
                        fingerprint_context(row.id, row.traveler_id, row.engine),
                    ),
                    quality=row.quality,
                    created_at=row.created_at,
                )
            )
        return found

    def of_flight(self, flight_id: str, engine: str) -> list[StoredFingerprint]:
        """Every enrolled finger of the travelers on the flight's manifest in force."""
        rows = self._session.execute(
            select(FingerprintTemplateRow, DataKeyRow)
            .join(DataKeyRow, DataKeyRow.traveler_id == FingerprintTemplateRow.traveler_id)
            .where(FingerprintTemplateRow.engine == engine)
            .where(
                FingerprintTemplateRow.traveler_id.in_(
                    select(ManifestEntryRow.traveler_id).where(
                        ManifestEntryRow.flight_id == flight_id, in_force()
                    )
                )
            )
            .order_by(FingerprintTemplateRow.traveler_id, FingerprintTemplateRow.finger)
        ).all()
        return self._opened(rows)

    def travelers_enrolled(self, flight_id: str) -> frozenset[str]:
        """The travelers on the flight's manifest in force with prints whose data key still
        exists (an erased traveler's sealed rows cannot be opened: they do not count)."""
        rows = self._session.scalars(
            select(FingerprintTemplateRow.traveler_id)
            .distinct()
            .join(DataKeyRow, DataKeyRow.traveler_id == FingerprintTemplateRow.traveler_id)
            .where(
                FingerprintTemplateRow.traveler_id.in_(
                    select(ManifestEntryRow.traveler_id).where(
                        ManifestEntryRow.flight_id == flight_id, in_force()
                    )
                )
            )
        )
        return frozenset(rows)

    def citizens_enrolled(self, flight_id: str, home_state: str) -> frozenset[str]:
        """The travelers on the flight's manifest in force with prints whom a stored document
        shows to be citizens (class ``citizen``, or a passport ``home_state`` issued): clear
        columns only, nothing opened (a manifest's swap asks, holding the write lock)."""
        rows = self._session.scalars(
            select(FingerprintTemplateRow.traveler_id)
            .distinct()
            .where(
                FingerprintTemplateRow.traveler_id.in_(
                    select(ManifestEntryRow.traveler_id).where(
                        ManifestEntryRow.flight_id == flight_id, in_force()
                    )
                ),
                FingerprintTemplateRow.traveler_id.in_(citizen_travelers(home_state)),
            )
        )
        return frozenset(rows)

    def of_traveler(self, traveler_id: str, engine: str) -> list[StoredFingerprint]:
        rows = self._session.execute(
            select(FingerprintTemplateRow, DataKeyRow)
            .join(DataKeyRow, DataKeyRow.traveler_id == FingerprintTemplateRow.traveler_id)
            .where(FingerprintTemplateRow.traveler_id == traveler_id)
            .where(FingerprintTemplateRow.engine == engine)
            .order_by(FingerprintTemplateRow.finger)
        ).all()
        return self._opened(rows)

    def enrolled_travelers(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` travelers with enrolled prints, by id, after ``after`` (a page)."""
        return list(
            self._session.scalars(
                select(FingerprintTemplateRow.traveler_id)
                .distinct()
                .where(FingerprintTemplateRow.traveler_id > after)
                .order_by(FingerprintTemplateRow.traveler_id)
                .limit(limit)
            )
        )

    def delete_of_traveler(self, traveler_id: str) -> int:
        """Delete every enrolled finger of the traveler (any engine); returns how many."""
        gone = self._session.execute(
            delete(FingerprintTemplateRow).where(FingerprintTemplateRow.traveler_id == traveler_id)
        )
        return int(getattr(gone, "rowcount", 0) or 0)

    def purge_expired(self, now: datetime) -> int:
        gone = self._session.execute(
            delete(FingerprintTemplateRow).where(FingerprintTemplateRow.expires_at <= now)
        )
        return int(getattr(gone, "rowcount", 0) or 0)

    # --- live prints kept on a console case ----------------------------------------------
    def keep_case_print(self, kept: CasePrint, now: datetime) -> None:
        data_key = self._sealer.data_key(self._session, kept.traveler_id, now)
        row = CaseFingerprintRow(
            id=kept.id,
            capture_id=kept.capture_id,
            traveler_id=kept.traveler_id,
            finger=kept.finger,
            engine=kept.engine,
            officer_id=kept.officer_id,
            score=kept.score,
            created_at=kept.created_at,
            expires_at=kept.expires_at,
        )
        row.template = self._sealer.seal_with(
            data_key, kept.template, case_print_context(row, "template")
        )
        if kept.image is not None:
            row.image = self._sealer.seal_with(
                data_key, kept.image, case_print_context(row, "image")
            )
        self._session.add(row)

    def case_prints(self, capture_id: str) -> list[CasePrint]:
        rows = self._session.execute(
            select(CaseFingerprintRow, DataKeyRow)
            .join(DataKeyRow, DataKeyRow.traveler_id == CaseFingerprintRow.traveler_id)
            .where(CaseFingerprintRow.capture_id == capture_id)
            .order_by(CaseFingerprintRow.created_at, CaseFingerprintRow.finger)
        ).all()
        keys: dict[str, bytes] = {}
        kept = []
        for row, key_row in rows:
            data_key = keys.get(row.traveler_id)
            if data_key is None:
                data_key = keys[row.traveler_id] = self._sealer.unwrap(key_row)
            template = self._sealer.open_with(
                data_key, row.template, case_print_context(row, "template")
            )
            kept.append(_case_print(row, template))
        return kept

    def case_print_image(self, print_id: str) -> CasePrint | None:
        found = self._session.execute(
            select(CaseFingerprintRow, DataKeyRow)
            .join(DataKeyRow, DataKeyRow.traveler_id == CaseFingerprintRow.traveler_id)
            .where(CaseFingerprintRow.id == print_id)
        ).first()
        if found is None:
            return None
        row, key_row = found
        if row.image is None:
            return None
        data_key = self._sealer.unwrap(key_row)
        template = self._sealer.open_with(
            data_key, row.template, case_print_context(row, "template")
        )
        image = self._sealer.open_with(data_key, row.image, case_print_context(row, "image"))
        return _case_print(row, template, image)


def _case_print(row: CaseFingerprintRow, template: bytes, image: bytes | None = None) -> CasePrint:
    return CasePrint(
        id=row.id,
        capture_id=row.capture_id,
        traveler_id=row.traveler_id,
        finger=row.finger,
        engine=row.engine,
        officer_id=row.officer_id,
        score=row.score,
        template=template,
        has_image=row.image is not None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        image=image,
    )
