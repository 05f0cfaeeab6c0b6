"""A read-only unit of work is read-only because the database says so (SQLite
``PRAGMA query_only``, PostgreSQL ``SET TRANSACTION READ ONLY``), not only because the code
promises not to write: a write that slips into one fails, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from entryexit.domain.model import Direction, Flight
from entryexit.errors import StorageUnavailableError
from tests.fakes import StaticKeyProvider

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def factory(database_url: str) -> Iterator[SqlUnitOfWorkFactory]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield SqlUnitOfWorkFactory(engine, StaticKeyProvider())
    engine.dispose()


def raw_write(uow: SqlUnitOfWork, flight_id: str) -> None:
    # Straight to the database, past the repositories and the commit-time check.
    session = uow._session
    assert session is not None
    session.execute(text("UPDATE flights SET number = 'X' WHERE id = :id"), {"id": flight_id})


def test_a_write_in_a_read_only_unit_of_work_is_refused_by_the_database(
    factory: SqlUnitOfWorkFactory,
) -> None:
    flight = Flight("f1", "EE", "1", NOW, "AAA", "BBB", Direction.EXIT, NOW)
    with factory() as uow:
        uow.flights.add(flight)
        uow.commit()
    for _ in range(3):  # every pooled connection, whichever the pool hands out
        with factory(read_only=True) as uow:
            assert uow.flights.get("f1") is not None  # reading works
            with pytest.raises(DBAPIError) as refused:
                raw_write(uow, "f1")
            # A bug, not unavailable storage: never translated into a retryable 503.
            assert not isinstance(refused.value, StorageUnavailableError)
            message = str(refused.value.orig).lower()
            assert "readonly" in message or "read-only" in message, message
        # The setting does not leak into the next unit of work on the same connection.
        with factory() as uow:
            raw_write(uow, "f1")
            uow.commit()
    with factory(read_only=True) as uow:
        stored = uow.flights.get("f1")
    assert stored is not None
    assert stored.number == "X"
