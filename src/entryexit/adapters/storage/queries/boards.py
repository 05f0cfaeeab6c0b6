"""Read models for the console's flights board and capture feeds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from entryexit.adapters.storage.repositories.captures import capture_summary
from entryexit.adapters.storage.rows import flight_from_row
from entryexit.adapters.storage.tables import (
    CaptureRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    in_force,
)
from entryexit.domain.model import EncounterMethod, Flight
from entryexit.services.ports import CaptureSummary, FlightCounts

OPEN_CASE_DECISIONS = ("no_match", "manual")


class SqlBoardQueries:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- the flights board and a flight's feed -----------------------------------------
    def flight_board(self, since: datetime, until: datetime) -> list[tuple[Flight, FlightCounts]]:
        """Flights departing in [since, until) with their live counts, by departure."""
        with self._transaction() as session:
            flights = session.scalars(
                select(FlightRow)
                .where(FlightRow.scheduled_departure >= since)
                .where(FlightRow.scheduled_departure < until)
                .order_by(FlightRow.scheduled_departure, FlightRow.carrier, FlightRow.number)
            ).all()
            ids = [f.id for f in flights]
            if not ids:
                return []

            def grouped(query: object) -> dict[tuple[str, str], int]:
                return {(a, b): int(n) for a, b, n in session.execute(query).all()}  # type: ignore[call-overload]

            manifest = dict(
                session.execute(
                    select(ManifestEntryRow.flight_id, func.count())
                    .where(ManifestEntryRow.flight_id.in_(ids), in_force())
                    .group_by(ManifestEntryRow.flight_id)
                ).all()
            )
            decisions = grouped(
                select(CaptureRow.flight_id, CaptureRow.decision, func.count())
                .where(CaptureRow.flight_id.in_(ids))
                .group_by(CaptureRow.flight_id, CaptureRow.decision)
            )
            methods = grouped(
                select(EncounterRow.flight_id, EncounterRow.method, func.count())
                .where(EncounterRow.flight_id.in_(ids))
                .group_by(EncounterRow.flight_id, EncounterRow.method)
            )
            open_cases = dict(
                session.execute(
                    select(CaptureRow.flight_id, func.count())
                    .where(CaptureRow.flight_id.in_(ids))
                    .where(CaptureRow.decision.in_(OPEN_CASE_DECISIONS))
                    .where(CaptureRow.resolution.is_(None))
                    .group_by(CaptureRow.flight_id)
                ).all()
            )
            board = []
            for row in flights:
                processed = sum(n for (flight, _), n in methods.items() if flight == row.id)
                board.append(
                    (
                        flight_from_row(row),
                        FlightCounts(
                            travelers=int(manifest.get(row.id, 0)),
                            matched=methods.get((row.id, EncounterMethod.BIOMETRIC.value), 0),
                            manual=methods.get(
                                (row.id, EncounterMethod.MANUAL_DOCUMENT_CHECK.value), 0
                            ),
                            opted_out=methods.get((row.id, EncounterMethod.OPT_OUT.value), 0),
                            recaptures=decisions.get((row.id, "recapture"), 0),
                            no_matches=decisions.get((row.id, "no_match"), 0),
                            outstanding=max(0, int(manifest.get(row.id, 0)) - processed),
                            open_cases=int(open_cases.get(row.id, 0)),
                        ),
                    )
                )
            return board

    def recent_captures(
        self, flight_id: str | None, limit: int, open_only: bool = False
    ) -> list[CaptureSummary]:
        """Newest first; with ``open_only``, unresolved no-match and manual cases."""
        with self._transaction() as session:
            query = select(CaptureRow).order_by(CaptureRow.received_at.desc()).limit(limit)
            if flight_id is not None:
                query = query.where(CaptureRow.flight_id == flight_id)
            if open_only:
                query = query.where(CaptureRow.decision.in_(OPEN_CASE_DECISIONS)).where(
                    CaptureRow.resolution.is_(None)
                )
            return [capture_summary(row) for row in session.scalars(query)]
