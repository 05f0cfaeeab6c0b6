"""What the officer console reads and writes beyond the gate's hot path: people's accounts and
sessions, the flights board, a flight's capture feed, and the exceptions queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from entryexit.adapters.crypto.envelope import open_sealed, unwrap_data_key
from entryexit.adapters.storage.rows import HasTransactions, flight_from_row
from entryexit.adapters.storage.tables import (
    CaptureRow,
    ConsoleSessionRow,
    ConsoleUserRow,
    DataKeyRow,
    EncounterRow,
    FlightRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
)
from entryexit.domain.access import Role
from entryexit.domain.model import EncounterMethod, Flight
from entryexit.errors import ConflictError
from entryexit.services.ports import (
    CaptureSummary,
    ConsoleSession,
    ConsoleUser,
    FlightCounts,
)

OPEN_CASE_DECISIONS = ("no_match", "manual")


def _user(row: ConsoleUserRow) -> ConsoleUser:
    return ConsoleUser(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=Role(row.role),
        failed_attempts=row.failed_attempts,
        locked_until=row.locked_until,
        disabled=row.disabled_at is not None,
    )


def _capture(row: CaptureRow) -> CaptureSummary:
    return CaptureSummary(
        id=row.id,
        flight_id=row.flight_id,
        gate=row.gate,
        received_at=row.received_at,
        decision=row.decision,
        reason=row.reason,
        score=row.score,
        traveler_id=row.traveler_id,
        has_image=row.image is not None,
        resolution=row.resolution,
        resolved_by=row.resolved_by,
    )


class ConsoleQueries:
    """Mixed into :class:`~entryexit.adapters.storage.store.SqlStore`."""

    # --- people and their sessions -----------------------------------------------------
    def add_console_user(
        self: HasTransactions,
        user_id: str,
        username: str,
        password_hash: str,
        role: Role,
        now: datetime,
    ) -> None:
        try:
            with self._transaction() as session:
                session.add(
                    ConsoleUserRow(
                        id=user_id,
                        username=username,
                        password_hash=password_hash,
                        role=role.value,
                        created_at=now,
                        failed_attempts=0,
                    )
                )
        except IntegrityError:
            raise ConflictError(f"a console user named {username!r} exists already") from None

    def find_console_user(self: HasTransactions, username: str) -> ConsoleUser | None:
        with self._transaction() as session:
            row = session.scalar(select(ConsoleUserRow).where(ConsoleUserRow.username == username))
            return None if row is None else _user(row)

    def get_console_user(self: HasTransactions, user_id: str) -> ConsoleUser | None:
        with self._transaction() as session:
            row = session.get(ConsoleUserRow, user_id)
            return None if row is None else _user(row)

    def record_sign_in(
        self: HasTransactions,
        user_id: str,
        succeeded: bool,
        locked_until: datetime | None,
        password_hash: str | None = None,
    ) -> None:
        """Reset the failure count on success, else count one more (and maybe lock)."""
        values: dict[str, object] = {"locked_until": locked_until}
        if succeeded:
            values["failed_attempts"] = 0
        else:
            values["failed_attempts"] = ConsoleUserRow.failed_attempts + 1
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self._transaction() as session:
            session.execute(
                update(ConsoleUserRow).where(ConsoleUserRow.id == user_id).values(**values)
            )

    def add_console_session(self: HasTransactions, record: ConsoleSession) -> None:
        with self._transaction() as session:
            session.add(
                ConsoleSessionRow(
                    token_hash=record.token_hash,
                    user_id=record.user_id,
                    csrf_token=record.csrf_token,
                    created_at=record.created_at,
                    last_seen_at=record.last_seen_at,
                    expires_at=record.expires_at,
                )
            )

    def get_console_session(self: HasTransactions, token_hash: str) -> ConsoleSession | None:
        with self._transaction() as session:
            row = session.get(ConsoleSessionRow, token_hash)
            if row is None:
                return None
            return ConsoleSession(
                row.token_hash,
                row.user_id,
                row.csrf_token,
                row.created_at,
                row.last_seen_at,
                row.expires_at,
            )

    def touch_console_session(self: HasTransactions, token_hash: str, now: datetime) -> None:
        with self._transaction() as session:
            session.execute(
                update(ConsoleSessionRow)
                .where(ConsoleSessionRow.token_hash == token_hash)
                .values(last_seen_at=now)
            )

    def delete_console_session(self: HasTransactions, token_hash: str) -> None:
        with self._transaction() as session:
            session.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == token_hash)
            )

    def delete_expired_console_sessions(self: HasTransactions, now: datetime) -> int:
        with self._transaction() as session:
            result = session.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # --- the flights board and a flight's feed -----------------------------------------
    def flight_board(
        self: HasTransactions, since: datetime, until: datetime
    ) -> list[tuple[Flight, FlightCounts]]:
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
                    .where(ManifestEntryRow.flight_id.in_(ids))
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
        self: HasTransactions, flight_id: str | None, limit: int, open_only: bool = False
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
            return [_capture(row) for row in session.scalars(query)]

    def get_capture(self: HasTransactions, capture_id: str) -> CaptureSummary | None:
        with self._transaction() as session:
            row = session.get(CaptureRow, capture_id)
            return None if row is None else _capture(row)

    def resolve_capture(
        self: HasTransactions, capture_id: str, resolution: str, officer_id: str, now: datetime
    ) -> bool:
        """Mark an open case resolved; False if someone resolved it first."""
        with self._transaction() as session:
            result = session.execute(
                update(CaptureRow)
                .where(CaptureRow.id == capture_id)
                .where(CaptureRow.resolution.is_(None))
                .values(resolution=resolution, resolved_at=now, resolved_by=officer_id)
            )
            return bool(getattr(result, "rowcount", 0))

    def reference_photo(self: HasTransactions, traveler_id: str) -> bytes | None:
        """The traveler's newest enrolled photo, opened; None if none is kept."""
        with self._transaction() as session:
            found = session.execute(
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
            key = unwrap_data_key(
                self._keys.kek(data_key.kek_id), data_key.wrapped_key, traveler_id
            )
            assert template.image is not None
            return open_sealed(
                key, template.image, reference_photo_context(template.id, traveler_id)
            )


def reference_photo_context(template_id: str, traveler_id: str) -> bytes:
    return f"reference-photo:{template_id}:{traveler_id}".encode()
