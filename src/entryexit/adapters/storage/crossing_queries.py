"""Admissions (entries, exits, overstays) and the watchlist with its alerts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import and_, func, or_, select, update

from entryexit.adapters.crypto.envelope import (
    new_data_key,
    open_sealed,
    seal,
    unwrap_data_key,
    wrap_data_key,
)
from entryexit.adapters.storage.rows import HasTransactions
from entryexit.adapters.storage.tables import (
    AdmissionRow,
    AlertRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    WatchlistEntryRow,
)
from entryexit.domain.admission import Admission, ExitLink
from entryexit.services.ports import (
    AlertRecord,
    ExitConfirmation,
    NewAdmission,
    WatchlistEntry,
)


def _admission(row: AdmissionRow) -> Admission:
    return Admission(
        id=row.id,
        traveler_id=row.traveler_id,
        admission_class=row.admission_class,
        admitted_on=row.admitted_on,
        admitted_until=row.admitted_until,
        entry_flight_id=row.entry_flight_id,
        exit_flight_id=row.exit_flight_id,
        exited_on=row.exited_on,
        link=ExitLink(row.link) if row.link else None,
        link_score=row.link_score,
    )


def _alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        source=row.source,
        flight_id=row.flight_id,
        traveler_id=row.traveler_id,
        capture_id=row.capture_id,
        watchlist_entry_id=row.watchlist_entry_id,
        score=row.score,
        model=row.model,
        policy_version=row.policy_version,
        created_at=row.created_at,
        status=row.status,
        disposition_reason=row.disposition_reason,
        dispositioned_by=row.dispositioned_by,
        dispositioned_at=row.dispositioned_at,
    )


def _template_owner(kind: str, row_id: str) -> str:
    return f"{kind}:{row_id}"


class CrossingQueries:
    """Mixed into :class:`~entryexit.adapters.storage.store.SqlStore`."""

    # --- admissions ----------------------------------------------------------------------
    def open_admission(self: HasTransactions, new: NewAdmission) -> bool:
        """Open a stay unless this traveler already has an open one (returns False)."""
        with self._transaction() as session:
            existing = session.scalar(
                select(AdmissionRow.id)
                .where(AdmissionRow.traveler_id == new.traveler_id)
                .where(AdmissionRow.admitted_on.is_not(None))
                .where(AdmissionRow.exited_on.is_(None))
            )
            if existing is not None:
                return False
            sealed = wrapped = kek_id = None
            if new.template is not None:
                kek_id, kek = self._keys.current_kek()
                key = new_data_key()
                wrapped = wrap_data_key(kek, key, _template_owner("admission", new.id))
                sealed = seal(key, new.template, f"admission-template:{new.id}".encode())
            session.add(
                AdmissionRow(
                    id=new.id,
                    traveler_id=new.traveler_id,
                    admission_class=new.admission_class,
                    admitted_on=new.admitted_on,
                    admitted_until=new.admitted_until,
                    entry_encounter_id=new.entry_encounter_id,
                    entry_flight_id=new.entry_flight_id,
                    template=sealed,
                    template_model=new.template_model,
                    wrapped_key=wrapped,
                    kek_id=kek_id,
                    created_at=new.created_at,
                )
            )
            return True

    def open_admission_of(self: HasTransactions, traveler_id: str) -> Admission | None:
        with self._transaction() as session:
            row = session.scalar(
                select(AdmissionRow)
                .where(AdmissionRow.traveler_id == traveler_id)
                .where(AdmissionRow.admitted_on.is_not(None))
                .where(AdmissionRow.exited_on.is_(None))
            )
            return None if row is None else _admission(row)

    def open_admission_templates(
        self: HasTransactions, model: str, exclude_traveler: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """(admission id, template) of open stays made by ``model``, newest first."""
        with self._transaction() as session:
            rows = session.scalars(
                select(AdmissionRow)
                .where(AdmissionRow.exited_on.is_(None))
                .where(AdmissionRow.admitted_on.is_not(None))
                .where(AdmissionRow.template.is_not(None))
                .where(AdmissionRow.template_model == model)
                .where(AdmissionRow.traveler_id != exclude_traveler)
                .order_by(AdmissionRow.admitted_on.desc())
                .limit(limit)
            ).all()
            result = []
            for row in rows:
                assert row.template is not None
                assert row.wrapped_key is not None
                assert row.kek_id is not None
                key = unwrap_data_key(
                    self._keys.kek(row.kek_id),
                    row.wrapped_key,
                    _template_owner("admission", row.id),
                )
                result.append(
                    (
                        row.id,
                        open_sealed(key, row.template, f"admission-template:{row.id}".encode()),
                    )
                )
            return result

    def close_admission(
        self: HasTransactions,
        admission_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exit_traveler_id: str,
        exited_on: date,
        link: ExitLink,
        score: float | None,
    ) -> bool:
        """Close an open stay (its template goes with it); False if it was closed already."""
        with self._transaction() as session:
            result = session.execute(
                update(AdmissionRow)
                .where(AdmissionRow.id == admission_id)
                .where(AdmissionRow.exited_on.is_(None))
                .values(
                    exit_encounter_id=exit_encounter_id,
                    exit_flight_id=exit_flight_id,
                    exit_traveler_id=exit_traveler_id,
                    exited_on=exited_on,
                    link=link.value,
                    link_score=score,
                    template=None,
                    wrapped_key=None,
                    kek_id=None,
                )
            )
            return bool(getattr(result, "rowcount", 0))

    def record_exit_without_entry(
        self: HasTransactions,
        record_id: str,
        traveler_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exited_on: date,
        now: datetime,
    ) -> None:
        with self._transaction() as session:
            session.add(
                AdmissionRow(
                    id=record_id,
                    traveler_id=None,
                    admission_class="",
                    exit_encounter_id=exit_encounter_id,
                    exit_flight_id=exit_flight_id,
                    exit_traveler_id=traveler_id,
                    exited_on=exited_on,
                    created_at=now,
                )
            )

    def update_admission(
        self: HasTransactions, admission_id: str, admission_class: str, until: date | None
    ) -> Admission | None:
        with self._transaction() as session:
            row = session.get(AdmissionRow, admission_id)
            if row is None or row.admitted_on is None:
                return None
            row.admission_class = admission_class
            row.admitted_until = until
            return _admission(row)

    def admissions_of(self: HasTransactions, traveler_id: str) -> list[Admission]:
        """Stays entered or left under this traveler id, oldest first."""
        with self._transaction() as session:
            rows = session.scalars(
                select(AdmissionRow)
                .where(
                    or_(
                        AdmissionRow.traveler_id == traveler_id,
                        AdmissionRow.exit_traveler_id == traveler_id,
                    )
                )
                .order_by(AdmissionRow.created_at)
            ).all()
            return [_admission(row) for row in rows]

    def in_country_overstays(
        self: HasTransactions, before: date, limit: int | None = None
    ) -> list[Admission]:
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
            return [_admission(row) for row in session.scalars(query)]

    def out_of_country_overstays(
        self: HasTransactions, since: date, until: date, limit: int | None = None
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
            return [_admission(row) for row in session.scalars(query)]

    def exits_without_entry(
        self: HasTransactions, since: date, until: date
    ) -> list[tuple[str, date, str]]:
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

    def exit_confirmations(
        self: HasTransactions, since: datetime, until: datetime
    ) -> list[ExitConfirmation]:
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
                .where(ManifestEntryRow.flight_id.in_(window))
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

    # --- the watchlist -------------------------------------------------------------------
    def add_watchlist_entry(self: HasTransactions, entry: WatchlistEntry, template: bytes) -> None:
        kek_id, kek = self._keys.current_kek()
        key = new_data_key()
        with self._transaction() as session:
            session.add(
                WatchlistEntryRow(
                    id=entry.id,
                    category=entry.category,
                    reason_code=entry.reason_code,
                    model=entry.model,
                    template=seal(key, template, f"watchlist:{entry.id}".encode()),
                    wrapped_key=wrap_data_key(kek, key, _template_owner("watchlist", entry.id)),
                    kek_id=kek_id,
                    added_by=entry.added_by,
                    added_at=entry.added_at,
                )
            )

    def remove_watchlist_entry(self: HasTransactions, entry_id: str, now: datetime) -> bool:
        """The entry stops matching; its template is erased, its record (for the audit and
        the alerts that cite it) stays."""
        with self._transaction() as session:
            result = session.execute(
                update(WatchlistEntryRow)
                .where(WatchlistEntryRow.id == entry_id)
                .where(WatchlistEntryRow.removed_at.is_(None))
                .values(removed_at=now, template=b"", wrapped_key=b"")
            )
            return bool(getattr(result, "rowcount", 0))

    def watchlist_entries(self: HasTransactions) -> list[WatchlistEntry]:
        with self._transaction() as session:
            rows = session.scalars(
                select(WatchlistEntryRow)
                .where(WatchlistEntryRow.removed_at.is_(None))
                .order_by(WatchlistEntryRow.added_at)
            ).all()
            return [
                WatchlistEntry(r.id, r.category, r.reason_code, r.model, r.added_by, r.added_at)
                for r in rows
            ]

    def watchlist_templates(self: HasTransactions, model: str) -> list[tuple[str, bytes]]:
        with self._transaction() as session:
            rows = session.scalars(
                select(WatchlistEntryRow)
                .where(WatchlistEntryRow.removed_at.is_(None))
                .where(WatchlistEntryRow.model == model)
                .order_by(WatchlistEntryRow.id)
            ).all()
            result = []
            for row in rows:
                key = unwrap_data_key(
                    self._keys.kek(row.kek_id),
                    row.wrapped_key,
                    _template_owner("watchlist", row.id),
                )
                result.append(
                    (row.id, open_sealed(key, row.template, f"watchlist:{row.id}".encode()))
                )
            return result

    # --- alerts --------------------------------------------------------------------------
    def add_alert(self: HasTransactions, alert: AlertRecord) -> bool:
        """Record an alert unless the same entry already has an open one from the same source
        for this traveler (or this capture) on this flight: re-staging does not repeat it."""
        with self._transaction() as session:
            duplicate = session.scalar(
                select(AlertRow.id)
                .where(AlertRow.flight_id == alert.flight_id)
                .where(AlertRow.watchlist_entry_id == alert.watchlist_entry_id)
                .where(AlertRow.source == alert.source)
                .where(AlertRow.status == "open")
                .where(
                    AlertRow.traveler_id == alert.traveler_id
                    if alert.traveler_id is not None
                    else AlertRow.capture_id == alert.capture_id
                )
            )
            if duplicate is not None:
                return False
            session.add(
                AlertRow(
                    id=alert.id,
                    source=alert.source,
                    flight_id=alert.flight_id,
                    traveler_id=alert.traveler_id,
                    capture_id=alert.capture_id,
                    watchlist_entry_id=alert.watchlist_entry_id,
                    score=alert.score,
                    model=alert.model,
                    policy_version=alert.policy_version,
                    created_at=alert.created_at,
                    status=alert.status,
                )
            )
            return True

    def alerts(self: HasTransactions, status: str | None, limit: int) -> list[AlertRecord]:
        with self._transaction() as session:
            query = select(AlertRow).order_by(AlertRow.created_at.desc()).limit(limit)
            if status is not None:
                query = query.where(AlertRow.status == status)
            return [_alert(row) for row in session.scalars(query)]

    def get_alert(self: HasTransactions, alert_id: str) -> AlertRecord | None:
        with self._transaction() as session:
            row = session.get(AlertRow, alert_id)
            return None if row is None else _alert(row)

    def has_open_alert(self: HasTransactions, traveler_id: str) -> bool:
        with self._transaction() as session:
            return (
                session.scalar(
                    select(AlertRow.id)
                    .where(AlertRow.status == "open")
                    .where(AlertRow.traveler_id == traveler_id)
                    .limit(1)
                )
                is not None
            )

    def disposition_alert(
        self: HasTransactions,
        alert_id: str,
        status: str,
        reason: str,
        officer_id: str,
        now: datetime,
    ) -> bool:
        with self._transaction() as session:
            result = session.execute(
                update(AlertRow)
                .where(AlertRow.id == alert_id)
                .where(AlertRow.status == "open")
                .values(
                    status=status,
                    disposition_reason=reason,
                    dispositioned_by=officer_id,
                    dispositioned_at=now,
                )
            )
            return bool(getattr(result, "rowcount", 0))
