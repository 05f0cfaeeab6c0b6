"""Gate captures (a review image sealed under the traveler's data key, or a key of its own
when the capture matched no one), the encounters recorded for travelers, and the officers'
exceptions queue over the captures."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Insert, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories import core
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    CacheGenerationRow,
    CaptureIdempotencyRow,
    CaptureRow,
    EncounterRow,
)
from entryexit.domain.model import Direction, Encounter, EncounterMethod
from entryexit.services.ports import (
    CaptureRecord,
    CaptureSummary,
    IdempotencyClaim,
    StoredIdempotency,
)


def capture_owner(capture_id: str) -> str:
    return f"capture:{capture_id}"


def capture_image_context(capture_id: str) -> bytes:
    return f"capture-image:{capture_id}".encode()


def encounter_from_row(r: EncounterRow) -> Encounter:
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


def capture_summary(row: CaptureRow) -> CaptureSummary:
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


class SqlCaptureRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add_capture(self, capture: CaptureRecord) -> None:
        sealed = None
        if capture.image is not None:
            sealed = self._sealer.seal_for(
                self._session,
                capture.traveler_id,
                capture_owner(capture.id),
                capture.image,
                capture_image_context(capture.id),
            )
        # A prebuilt Core insert: the ORM's bookkeeping for a row nothing reads back costs
        # more than the insert, and it runs while the audit head is locked.
        core.run(
            self._session,
            _INSERT_CAPTURE,
            {
                "policy_version": capture.policy_version,
                "expires_at": capture.expires_at,
                "image": sealed.sealed if sealed else None,
                "image_expires_at": capture.image_expires_at if sealed else None,
                "wrapped_key": sealed.wrapped_key if sealed else None,
                "kek_id": sealed.kek_id if sealed else None,
                "id": capture.id,
                "flight_id": capture.flight_id,
                "gate": capture.gate,
                "device": capture.device,
                "received_at": capture.received_at,
                "decision": capture.decision,
                "reason": capture.reason,
                "score": capture.score,
                "traveler_id": capture.traveler_id,
                "model": capture.model,
            },
        )

    def add_encounter(self, encounter: Encounter) -> bool:
        """Record the encounter; ``False`` if this traveler already has one on this flight.
        The unique constraint decides, so concurrent gates on any number of processes agree
        and the rest of the unit of work stands."""
        # Whatever the unit of work has pending is written first, in order; the insert then
        # stands aside on a conflict (the unique constraint: this traveler on this flight)
        # instead of failing, so no savepoint is needed and any other failure is its own.
        inserted = core.run(
            self._session,
            _insert_encounter_unless_present(self._session),
            {
                "id": encounter.id,
                "flight_id": encounter.flight_id,
                "traveler_id": encounter.traveler_id,
                "direction": encounter.direction.value,
                "method": encounter.method.value,
                "gate": encounter.gate,
                "device": encounter.device,
                "occurred_at": encounter.occurred_at,
                "score": encounter.score,
                "model": encounter.model,
                "policy_version": encounter.policy_version,
                "capture_id": encounter.capture_id,
                "expires_at": encounter.expires_at,
            },
        )
        return inserted.scalar_one_or_none() is not None

    def encounters_of_flight(self, flight_id: str) -> list[Encounter]:
        rows = self._session.scalars(
            select(EncounterRow)
            .where(EncounterRow.flight_id == flight_id)
            .order_by(EncounterRow.occurred_at)
        ).all()
        return [encounter_from_row(r) for r in rows]

    def encounters_of_traveler(self, traveler_id: str) -> list[Encounter]:
        rows = self._session.scalars(
            select(EncounterRow)
            .where(EncounterRow.traveler_id == traveler_id)
            .order_by(EncounterRow.occurred_at)
        ).all()
        return [encounter_from_row(r) for r in rows]

    def find_idempotency(self, scope: str, key: str) -> StoredIdempotency | None:
        row = self._session.get(CaptureIdempotencyRow, (scope, key), populate_existing=True)
        return None if row is None else _stored_idempotency(row)

    def claim_idempotency(self, claim: IdempotencyClaim) -> StoredIdempotency | None:
        """Insert the key's row in a savepoint: the primary key decides. On PostgreSQL a
        concurrent insert of the same key waits for the holder's transaction, then fails
        here, and the holder's committed row is read (read committed); on SQLite writers
        are serialised, so the row is already visible."""
        self._session.flush()
        try:
            with self._session.begin_nested():
                self._session.add(
                    CaptureIdempotencyRow(
                        scope=claim.scope,
                        key=claim.key,
                        flight_id=claim.flight_id,
                        request_digest=claim.request_digest,
                        capture_id=claim.capture_id,
                        outcome=None,
                        created_at=claim.created_at,
                        expires_at=None,
                    )
                )
        except IntegrityError:
            return self.find_idempotency(claim.scope, claim.key)
        return None

    def settle_idempotency(
        self, scope: str, key: str, outcome: str, expires_at: datetime | None
    ) -> None:
        self._session.execute(
            update(CaptureIdempotencyRow)
            .where(CaptureIdempotencyRow.scope == scope, CaptureIdempotencyRow.key == key)
            .values(outcome=outcome, expires_at=expires_at)
        )


def _stored_idempotency(row: CaptureIdempotencyRow) -> StoredIdempotency:
    return StoredIdempotency(row.flight_id, row.request_digest, row.capture_id, row.outcome)


# The PostgreSQL channel on which generation bumps are announced (``adapters/storage/notify.py``).
CHANGES_CHANNEL = "entryexit_changes"


class SqlCacheGenerations:
    def __init__(self, session: Session) -> None:
        self._session = session

    def bump(self, name: str) -> int:
        """Increment in place (the row lock orders concurrent writers); the first bump
        creates the row."""
        updated = self._session.execute(
            update(CacheGenerationRow)
            .where(CacheGenerationRow.name == name)
            .values(generation=CacheGenerationRow.generation + 1)
        )
        if not getattr(updated, "rowcount", 0):
            self._session.flush()
            try:
                with self._session.begin_nested():
                    self._session.add(CacheGenerationRow(name=name, generation=1))
            except IntegrityError:
                return self.bump(name)
        if self._session.get_bind().dialect.name == "postgresql":
            # Delivered to every listening process when (and only if) this transaction
            # commits (``adapters/storage/notify.py``).
            self._session.execute(
                text("SELECT pg_notify(:channel, :name)"),
                {"channel": CHANGES_CHANNEL, "name": name},
            )
        return self.current(name)

    def current(self, name: str) -> int:
        value = core.run(self._session, _GENERATION, {"name": name}).scalar()
        return int(value or 0)


class SqlCaseRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def get(self, capture_id: str) -> CaptureSummary | None:
        row = self._session.get(CaptureRow, capture_id)
        return None if row is None else capture_summary(row)

    def capture_image(self, capture_id: str) -> bytes | None:
        """The sealed review image of a capture, opened; ``None`` once purged."""
        row = self._session.get(CaptureRow, capture_id)
        if row is None or row.image is None:
            return None
        return self._sealer.open_for(
            self._session,
            row.traveler_id,
            capture_owner(capture_id),
            row.image,
            row.wrapped_key,
            row.kek_id,
            capture_image_context(capture_id),
        )

    def resolve(self, capture_id: str, resolution: str, officer_id: str, now: datetime) -> bool:
        """Mark an open case resolved; False if someone resolved it first."""
        result = self._session.execute(
            update(CaptureRow)
            .where(CaptureRow.id == capture_id)
            .where(CaptureRow.resolution.is_(None))
            .values(resolution=resolution, resolved_at=now, resolved_by=officer_id)
        )
        return bool(getattr(result, "rowcount", 0))


_GENERATIONS = cast(Table, CacheGenerationRow.__table__)
_INSERT_CAPTURE = insert(cast(Table, CaptureRow.__table__))
_GENERATION = select(_GENERATIONS.c.generation).where(_GENERATIONS.c.name == bindparam("name"))
_ENCOUNTERS = cast(Table, EncounterRow.__table__)
# ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` in each dialect, built once.
_INSERT_ENCOUNTER_UNLESS_PRESENT: dict[str, Insert] = {
    "postgresql": postgresql.insert(_ENCOUNTERS)
    .on_conflict_do_nothing()
    .returning(_ENCOUNTERS.c.id),
    "sqlite": sqlite.insert(_ENCOUNTERS).on_conflict_do_nothing().returning(_ENCOUNTERS.c.id),
}


def _insert_encounter_unless_present(session: Session) -> Insert:
    """The encounter's insert that stands aside on a conflict, in the session's dialect."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_ENCOUNTER_UNLESS_PRESENT.get(dialect)
    if statement is None:
        raise NotImplementedError(f"no conflict-free insert for {dialect}")
    return statement
