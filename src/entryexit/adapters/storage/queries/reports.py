"""Read models for the reports: overstays, the privacy report and the live fairness report.
Each query is one read-only transaction of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from entryexit.adapters.storage.database import READ_ONLY_TRANSACTION
from entryexit.adapters.storage.repositories.admissions import admission_from_row
from entryexit.adapters.storage.repositories.flights import ERASED
from entryexit.adapters.storage.repositories.maintenance import (
    expired_admissions,
    expired_documents,
    expired_manifest_entries,
    unused_data_keys,
)
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    AdmissionRow,
    CaptureRow,
    CaseFingerprintRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FingerprintTemplateRow,
    FlightRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
    in_force,
)
from entryexit.domain.admission import Admission
from entryexit.domain.model import DocumentKey, EncounterMethod
from entryexit.domain.policy import Policy
from entryexit.services.ports import ExitConfirmation, TravelerIdentity


class SqlReportQueries:
    def __init__(self, sessions: sessionmaker[Session], sealer: Sealer) -> None:
        self._sessions = sessions
        self._sealer = sealer

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """Read-only, enforced by the database: reports may run on a replica
        (``ENTRYEXIT_READ_DATABASE_URL``), and must not write on the primary either."""
        with self._sessions.begin() as session:
            connection = session.connection(execution_options={READ_ONLY_TRANSACTION: True})
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield session

    def in_country_overstays(self, before: date, limit: int | None = None) -> list[Admission]:
        """Open stays whose admitted-until is before ``before`` (as-of minus grace)."""
        with self._transaction() as session:
            query = (
                select(AdmissionRow)
                .where(AdmissionRow.exited_on.is_(None))
                .where(AdmissionRow.admitted_until < before)
                .where(AdmissionRow.admitted_on.is_not(None))
                .order_by(AdmissionRow.admitted_until)
            )
            if limit is not None:
                query = query.limit(limit)
            return [admission_from_row(row) for row in session.scalars(query)]

    def out_of_country_overstays(
        self, since: date, until: date, limit: int | None = None
    ) -> list[Admission]:
        """Stays closed in [since, until] by an exit after their admitted-until date."""
        with self._transaction() as session:
            query = (
                select(AdmissionRow)
                .where(AdmissionRow.exited_on >= since)
                .where(AdmissionRow.exited_on <= until)
                .where(AdmissionRow.admitted_on.is_not(None))
                .where(AdmissionRow.exited_on > AdmissionRow.admitted_until)
                .order_by(AdmissionRow.exited_on)
            )
            if limit is not None:
                query = query.limit(limit)
            return [admission_from_row(row) for row in session.scalars(query)]

    def exits_without_entry(self, since: date, until: date) -> list[tuple[str, date, str]]:
        """(traveler id, exit date, exit flight) of exits no stay could be found for."""
        with self._transaction() as session:
            rows = session.execute(
                select(
                    AdmissionRow.exit_traveler_id,
                    AdmissionRow.exited_on,
                    AdmissionRow.exit_flight_id,
                )
                .where(AdmissionRow.admitted_on.is_(None))
                .where(AdmissionRow.exited_on >= since)
                .where(AdmissionRow.exited_on <= until)
                .order_by(AdmissionRow.exited_on)
            ).all()
            return [(str(t), d, str(f)) for t, d, f in rows if d is not None]

    def exit_confirmations(self, since: datetime, until: datetime) -> list[ExitConfirmation]:
        """Per exit flight departing in [since, until): travelers on the manifest and
        travelers whose exit was recorded (any method)."""
        with self._transaction() as session:
            window = (
                select(FlightRow.id)
                .where(FlightRow.direction == "exit")
                .where(
                    and_(
                        FlightRow.scheduled_departure >= since,
                        FlightRow.scheduled_departure < until,
                    )
                )
            )
            manifest = (
                select(ManifestEntryRow.flight_id, func.count().label("travelers"))
                .where(ManifestEntryRow.flight_id.in_(window), in_force())
                .group_by(ManifestEntryRow.flight_id)
                .subquery()
            )
            confirmed = (
                select(EncounterRow.flight_id, func.count().label("confirmed"))
                .where(EncounterRow.flight_id.in_(window))
                .group_by(EncounterRow.flight_id)
                .subquery()
            )
            rows = session.execute(
                select(
                    FlightRow.id,
                    FlightRow.carrier,
                    FlightRow.number,
                    FlightRow.origin,
                    FlightRow.scheduled_departure,
                    func.coalesce(manifest.c.travelers, 0),
                    func.coalesce(confirmed.c.confirmed, 0),
                )
                .outerjoin(manifest, manifest.c.flight_id == FlightRow.id)
                .outerjoin(confirmed, confirmed.c.flight_id == FlightRow.id)
                .where(FlightRow.id.in_(window))
                .order_by(FlightRow.scheduled_departure)
            ).all()
            return [
                ExitConfirmation(fid, carrier, number, port, when, int(total), int(done))
                for fid, carrier, number, port, when, total, done in rows
            ]

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
                    personal = self._sealer.open_personal(doc, data_key, keys)
                    # Ordered by expiry: the last one written is the newest document.
                    found[doc.traveler_id] = TravelerIdentity(
                        traveler_id=doc.traveler_id,
                        surname=personal.get("surname", ERASED),
                        given_names=personal.get("given_names", ""),
                        nationality=personal.get("nationality", ""),
                        document=DocumentKey(doc.issuing_state, personal.get("number", ERASED)),
                    )
        return found

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
                .where(ManifestEntryRow.upload_id == FlightRow.manifest_version)
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
                method = methods.get((flight.id, entry.traveler_id), "not_processed")
                # An opt-out deletes the traveler's photo at once; they had one all the same.
                if entry.traveler_id not in with_photo and method != EncounterMethod.OPT_OUT:
                    continue
                sex = self._sealer.open_personal(document, data_key).get("sex", "unknown")
                tally = counts.setdefault(sex, {})
                tally["travelers_with_photo"] = tally.get("travelers_with_photo", 0) + 1
                tally[method] = tally.get(method, 0) + 1
            return counts

    def retention_counts(self, now: datetime, policy: Policy) -> dict[str, dict[str, int]]:
        """Per kind: how many items are held and how many are past their expiry (for the
        biographic kinds, by ``policy``; a document is overdue only once nothing else of its
        traveler remains, as the purge decides)."""
        with self._transaction() as session:

            def count(*conditions: Any) -> int:
                return int(session.scalar(select(func.count()).where(*conditions)) or 0)

            def count_in(table: Any, *conditions: Any) -> int:
                # Named FROM: the conditions' subqueries correlate with this table's rows.
                query = select(func.count()).select_from(table).where(*conditions)
                return int(session.scalar(query) or 0)

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
                "fingerprint_templates": {
                    "held": count(FingerprintTemplateRow.id.is_not(None)),
                    "overdue": count(FingerprintTemplateRow.expires_at <= now),
                },
                "case_fingerprints": {
                    "held": count(CaseFingerprintRow.id.is_not(None)),
                    "overdue": count(CaseFingerprintRow.expires_at <= now),
                },
                "encounter_records": {
                    "held": count(EncounterRow.id.is_not(None)),
                    "overdue": count(EncounterRow.expires_at <= now),
                },
                "manifest_entries": {
                    "held": count(ManifestEntryRow.id.is_not(None)),
                    "overdue": count_in(ManifestEntryRow, expired_manifest_entries(policy, now)),
                },
                "admissions": {
                    "held": count(AdmissionRow.id.is_not(None)),
                    "overdue": count_in(AdmissionRow, expired_admissions(policy, now)),
                },
                "traveler_documents": {
                    "held": count(DocumentRow.id.is_not(None)),
                    "overdue": count_in(DocumentRow, expired_documents(policy, now)),
                },
                "data_keys": {
                    "held": count(DataKeyRow.traveler_id.is_not(None)),
                    "overdue": count_in(DataKeyRow, unused_data_keys()),
                },
                "staged_galleries": {
                    "held": count(FlightRow.gallery_version > 0),
                    "overdue": count(
                        FlightRow.gallery_version > 0, FlightRow.gallery_expires_at <= now
                    ),
                },
            }

    def oldest_held(self) -> dict[str, datetime | None]:
        """Per biometric kind: when the oldest item still held was recorded (None if none)."""
        with self._transaction() as session:
            return {
                kind: session.scalar(select(func.min(column)))
                for kind, column in (
                    ("reference_templates", ReferenceTemplateRow.created_at),
                    ("fingerprint_templates", FingerprintTemplateRow.created_at),
                    ("case_fingerprints", CaseFingerprintRow.created_at),
                )
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
