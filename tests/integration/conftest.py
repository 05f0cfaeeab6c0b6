"""Real databases for integration tests: SQLite always, PostgreSQL where a server is given."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

POSTGRES_ENV = "ENTRYEXIT_TEST_POSTGRES_URL"


def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set; scripts/test starts PostgreSQL and sets it")
        pytest.skip(f"no PostgreSQL server ({POSTGRES_ENV} unset); run ./scripts/test")
    name = f"entryexit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _drop(admin, name)
        finally:
            admin.dispose()


def _drop(admin: Engine, name: str) -> None:
    """Drop a test database. FORCE cannot end a session it has no right to end (an
    autovacuum worker that just started on the new database, say): try again a few times,
    then leave the database behind rather than fail a test that passed."""
    for attempt in range(5):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            time.sleep(0.2 * (attempt + 1))
    logging.getLogger(__name__).warning("test database %s could not be dropped; left behind", name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'entryexit.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()
