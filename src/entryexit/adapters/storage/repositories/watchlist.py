"""The watchlist (each template sealed with a key of its own) and the alerts it raises."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories import core
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import AlertRow, WatchlistEntryRow
from entryexit.services.ports import AlertRecord, WatchlistEntry

_ALERTS = cast(Table, AlertRow.__table__)
# Read by every matched capture (an open alert sends it to an officer).
_OPEN_ALERT = (
    select(_ALERTS.c.id)
    .where(_ALERTS.c.status == "open")
    .where(_ALERTS.c.traveler_id == bindparam("traveler_id"))
    .limit(1)
)


def alert_from_row(row: AlertRow) -> AlertRecord:
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


def _owner(entry_id: str) -> str:
    return f"watchlist:{entry_id}"


def _context(entry_id: str) -> bytes:
    return f"watchlist:{entry_id}".encode()


class SqlWatchlistRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add_entry(self, entry: WatchlistEntry, template: bytes) -> None:
        sealed = self._sealer.seal_item(_owner(entry.id), template, _context(entry.id))
        self._session.add(
            WatchlistEntryRow(
                id=entry.id,
                category=entry.category,
                reason_code=entry.reason_code,
                model=entry.model,
                template=sealed.sealed,
                wrapped_key=sealed.wrapped_key,
                kek_id=sealed.kek_id,
                added_by=entry.added_by,
                added_at=entry.added_at,
            )
        )

    def remove_entry(self, entry_id: str, now: datetime) -> bool:
        """The entry stops matching; its template is erased, its record (for the audit and
        the alerts that cite it) stays."""
        session = self._session
        result = session.execute(
            update(WatchlistEntryRow)
            .where(WatchlistEntryRow.id == entry_id)
            .where(WatchlistEntryRow.removed_at.is_(None))
            .values(removed_at=now, template=b"", wrapped_key=b"")
        )
        return bool(getattr(result, "rowcount", 0))

    def entries(self) -> list[WatchlistEntry]:
        session = self._session
        rows = session.scalars(
            select(WatchlistEntryRow)
            .where(WatchlistEntryRow.removed_at.is_(None))
            .order_by(WatchlistEntryRow.added_at)
        ).all()
        return [
            WatchlistEntry(r.id, r.category, r.reason_code, r.model, r.added_by, r.added_at)
            for r in rows
        ]

    def templates(self, model: str) -> list[tuple[str, bytes]]:
        session = self._session
        rows = session.scalars(
            select(WatchlistEntryRow)
            .where(WatchlistEntryRow.removed_at.is_(None))
            .where(WatchlistEntryRow.model == model)
            .order_by(WatchlistEntryRow.id)
        ).all()
        result = []
        for row in rows:
            opened = self._sealer.open_item(
                _owner(row.id), row.template, row.wrapped_key, row.kek_id, _context(row.id)
            )
            result.append((row.id, opened))
        return result

    # --- alerts --------------------------------------------------------------------------
    def add_alert(self, alert: AlertRecord) -> bool:
        """Record an alert unless the same entry already has an open one from the same source
        for this traveler (or this capture) on this flight: re-staging does not repeat it."""
        session = self._session
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

    def alerts(self, status: str | None, limit: int) -> list[AlertRecord]:
        session = self._session
        query = select(AlertRow).order_by(AlertRow.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(AlertRow.status == status)
        return [alert_from_row(row) for row in session.scalars(query)]

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        session = self._session
        row = session.get(AlertRow, alert_id)
        return None if row is None else alert_from_row(row)

    def has_open_alert(self, traveler_id: str) -> bool:
        found = core.run(self._session, _OPEN_ALERT, {"traveler_id": traveler_id}).first()
        return found is not None

    def disposition_alert(
        self,
        alert_id: str,
        status: str,
        reason: str,
        officer_id: str,
        now: datetime,
    ) -> bool:
        session = self._session
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
