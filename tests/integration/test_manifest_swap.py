"""A manifest upload is written in batches as a new version that one short transaction puts in
force: readers see the old manifest or the new one, never part of it, a failed upload leaves the
old one, and the swap writes the same few rows whatever the manifest's size (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event, func, select

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.tables import DocumentRow, ManifestEntryRow, in_force
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import ConflictError
from entryexit.services.audit import AuditTrail
from entryexit.services.flights import FlightService, NewFlight
from tests.fakes import StaticKeyProvider

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Snapshot = frozenset[tuple[str, str]]


def traveler(number: str, surname: str) -> ManifestTraveler:
    return ManifestTraveler(
        surname=surname,
        given_names="JANE",
        date_of_birth=date(1980, 1, 1),
        sex=Sex.FEMALE,
        nationality="XYZ",
        citizenship_class=CitizenshipClass.FOREIGN_NATIONAL,
        document_type=DocumentType.PASSPORT,
        document=DocumentKey("XYZ", number),
        document_expiry=date(2030, 1, 1),
    )


class Reads:
    """The sleep between batches: reads the manifest (and may fail the upload)."""

    def __init__(self, flights: FlightService, flight_id: str, fail_at: int = 0) -> None:
        self.flights, self.flight_id, self.fail_at = flights, flight_id, fail_at
        self.snapshots: list[Snapshot] = []

    def snapshot(self) -> Snapshot:
        return frozenset(
            (t.document.number, t.surname) for t in self.flights.manifest_travelers(self.flight_id)
        )

    def __call__(self, _seconds: float) -> None:
        self.snapshots.append(self.snapshot())
        if self.fail_at and len(self.snapshots) == self.fail_at:
            raise ConnectionError("the database went away mid-upload")


@pytest.fixture
def factory(database_url: str) -> Iterator[SqlUnitOfWorkFactory]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield SqlUnitOfWorkFactory(engine, StaticKeyProvider())
    engine.dispose()


def service(factory: SqlUnitOfWorkFactory, sleep: Reads | None = None) -> FlightService:
    audit = AuditTrail(factory, lambda: NOW, StaticKeyProvider())
    if sleep is None:
        return FlightService(factory, lambda: NOW, "m", audit, manifest_pause=0)
    return FlightService(factory, lambda: NOW, "m", audit, manifest_batch=50, sleep=sleep)


def old_and_new() -> tuple[list[ManifestTraveler], list[ManifestTraveler]]:
    old = [traveler(f"A{n:07d}", "OLD") for n in range(300)]
    # Half the old travelers stay with new details; 450 newcomers.
    new = [replace(t, surname="NEW") for t in old[:150]]
    new += [traveler(f"B{n:07d}", "NEW") for n in range(450)]
    return old, new


def snapshot(travelers: list[ManifestTraveler]) -> Snapshot:
    return frozenset((t.document.number, t.surname) for t in travelers)


def setup(
    factory: SqlUnitOfWorkFactory,
) -> tuple[str, list[ManifestTraveler], list[ManifestTraveler]]:
    flight = service(factory).create(NewFlight("EE", "1", NOW, "AAA", "BBB", Direction.EXIT))
    old, new = old_and_new()
    change = service(factory).put_manifest(flight.id, old)
    assert (change.added, change.total) == (300, 300)
    return flight.id, old, new


def staged_rows(factory: SqlUnitOfWorkFactory) -> int:
    """Manifest entries of versions not in force (uploads in progress, superseded, failed)."""
    with factory.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).where(~in_force())) or 0)


def sealed_details(factory: SqlUnitOfWorkFactory) -> dict[str, bytes | None]:
    with factory.engine.connect() as connection:
        return dict(connection.execute(select(DocumentRow.id, DocumentRow.personal)).all())


def test_readers_see_the_old_manifest_or_the_new_never_part(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flight_id, old, new = setup(factory)
    reads = Reads(service(factory), flight_id)
    # And a reader in another thread, all the while.
    seen: list[Snapshot] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(reads.snapshot())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        change = service(factory, reads).put_manifest(flight_id, new)
    finally:
        done.set()
        reader.join()
    assert (change.added, change.removed, change.updated, change.total) == (450, 150, 150, 600)
    between_batches = len(new) // 50 - 1  # then reads during the clean-up of the copy
    assert reads.snapshots[:between_batches] == [snapshot(old)] * between_batches
    assert set(reads.snapshots[between_batches:]) <= {snapshot(new)}
    assert set(seen) <= {snapshot(old), snapshot(new)}
    assert reads.snapshot() == snapshot(new)
    assert staged_rows(factory) == 0


def test_a_failed_upload_leaves_the_old_manifest(factory: SqlUnitOfWorkFactory) -> None:
    flight_id, old, new = setup(factory)
    reads = Reads(service(factory), flight_id, fail_at=5)
    with pytest.raises(ConnectionError):
        service(factory, reads).put_manifest(flight_id, new)
    # Names included: the staying travelers' new details were never applied.
    assert reads.snapshot() == snapshot(old)
    assert staged_rows(factory) == 0
    # The next upload works, from whatever the failed one created.
    change = service(factory).put_manifest(flight_id, new)
    assert (change.added, change.removed, change.total) == (450, 150, 600)
    assert reads.snapshot() == snapshot(new)


def test_a_dead_uploads_staging_is_dropped_by_a_later_upload(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flight_id, old, _ = setup(factory)
    with factory() as uow:  # an upload whose process died a day ago
        uow.flights.stage_manifest_batch(
            flight_id, "dead-upload", old[:10], datetime(2026, 11, 22, tzinfo=UTC)
        )
        uow.commit()
    assert staged_rows(factory) == 10
    service(factory).put_manifest(flight_id, old)
    assert staged_rows(factory) == 0


@pytest.mark.parametrize("size", [20, 2000])
def test_the_swap_writes_the_same_few_rows_whatever_the_size(
    factory: SqlUnitOfWorkFactory, size: int
) -> None:
    """What holds the write lock while a gate waits: the swap writes one flight row, the
    changed documents' details and the audit event, never a row per traveler."""
    flights = service(factory)
    flight = flights.create(NewFlight("EE", "2", NOW, "AAA", "BBB", Direction.EXIT))
    flights.put_manifest(flight.id, [traveler(f"C{n:07d}", "OLD") for n in range(size)])
    upload_id = "next-version"
    newcomers = [traveler(f"D{n:07d}", "NEW") for n in range(size)]
    staying = [replace(traveler("C0000000", "OLD"), surname="RENAMED")]
    with factory() as uow:
        uow.flights.stage_manifest_batch(flight.id, upload_id, staying + newcomers, NOW)
        uow.commit()
    written: list[tuple[str, int]] = []

    def count_rows(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            written.append((statement.split()[2], cursor.rowcount))

    event.listen(factory.engine, "after_cursor_execute", count_rows)
    try:
        with factory() as uow:
            change = uow.flights.swap_manifest(flight.id, upload_id, NOW, size + 1)
            uow.commit()
    finally:
        event.remove(factory.engine, "after_cursor_execute", count_rows)
    assert (change.added, change.removed, change.updated, change.total) == (
        size,
        size - 1,
        1,
        size + 1,
    )
    # The flight row, the one renamed document, and its entry's pending details cleared.
    assert sum(rows for _, rows in written) <= 3, written
    assert {number for number, _ in snapshot(flights.manifest_travelers(flight.id))} == {
        t.document.number for t in staying + newcomers
    }
    assert ("C0000000", "RENAMED") in snapshot(flights.manifest_travelers(flight.id))


def test_sending_the_same_manifest_again_rewrites_no_document(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flight_id, old, _ = setup(factory)
    before = sealed_details(factory)
    change = service(factory).put_manifest(flight_id, old)
    assert (change.added, change.removed, change.updated) == (0, 0, 300)
    assert sealed_details(factory) == before
    assert staged_rows(factory) == 0


def test_a_version_that_lost_rows_meanwhile_is_not_put_in_force(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flight_id, old, new = setup(factory)
    with factory() as uow:
        uow.flights.stage_manifest_batch(flight_id, "partial", new, NOW)
        uow.commit()
    with factory.engine.begin() as connection:  # a clean-up elsewhere took some of its rows
        connection.execute(
            # DeclarativeBase types __table__ as a FromClause; it is the mapped Table.
            ManifestEntryRow.__table__.delete().where(  # type: ignore[attr-defined]
                ManifestEntryRow.upload_id == "partial",
                ManifestEntryRow.document_id.in_(
                    select(ManifestEntryRow.document_id)
                    .where(ManifestEntryRow.upload_id == "partial")
                    .limit(5)
                    .scalar_subquery()
                ),
            )
        )
    with pytest.raises(ConflictError, match="595 of its 600"), factory() as uow:
        uow.flights.swap_manifest(flight_id, "partial", NOW, len(new))
    assert snapshot(service(factory).manifest_travelers(flight_id)) == snapshot(old)


def test_booking_references_are_sealed_and_follow_the_version_in_force(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flights = service(factory)
    flight = flights.create(NewFlight("EE", "3", NOW, "AAA", "BBB", Direction.EXIT))
    booked = [replace(traveler(f"E{n}", "KIN"), booking_reference="PNR7Q2") for n in range(2)]
    flights.put_manifest(flight.id, booked)
    assert {t.booking_reference for t in flights.manifest_travelers(flight.id)} == {"PNR7Q2"}
    assert all(s.booking_reference == "PNR7Q2" for s in flights.manifest(flight.id))
    sealed = b"".join(details or b"" for details in sealed_details(factory).values())
    assert b"PNR7Q2" not in sealed
    rebooked = [booked[0], replace(booked[1], booking_reference="NEW001")]
    flights.put_manifest(flight.id, rebooked)
    assert sorted(
        (t.document.number, t.booking_reference) for t in flights.manifest_travelers(flight.id)
    ) == [("E0", "PNR7Q2"), ("E1", "NEW001")]
