"""Reports read from ``ENTRYEXIT_READ_DATABASE_URL`` when it is set, and the rest never does.
Here the "replica" is a second PostgreSQL database that lags behind on purpose (it never
receives the primary's writes), so where each read went shows in the answers; the real
streaming replica is in ``tests/fleet/test_fleet.py``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from entryexit.bootstrap import build_database, build_services
from entryexit.config import Settings
from entryexit.domain.model import DocumentKey, PhotoSource
from tests.fakes import FakeAnalyser, StaticKeyProvider
from tests.integration.conftest import postgres_database


@pytest.fixture
def replica_url() -> Iterator[str]:
    yield from postgres_database()


def test_reports_read_the_replica_and_writes_go_to_the_primary(
    postgres_url: str, replica_url: str, tmp_path: Path
) -> None:
    keys = StaticKeyProvider()
    build_database(Settings(database_url=replica_url, data_dir=tmp_path), keys).engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, read_database_url=replica_url)
    services = build_services(settings, engine=FakeAnalyser(), keys=keys)
    try:
        services.enrolment.enrol(DocumentKey("UTO", "N1"), b"face:1", PhotoSource.PASSPORT)
        since = datetime(2020, 1, 1, tzinfo=UTC)
        on_replica = services.privacy.report(since)
        held = on_replica["held"]
        assert isinstance(held, dict)
        # The enrolment was written to the primary; the lagging replica has not seen it.
        assert sum(held.values()) == 0
        primary_only = build_services(
            Settings(data_dir=tmp_path, database_url=postgres_url),
            engine=FakeAnalyser(),
            keys=keys,
        )
        held_on_primary = primary_only.privacy.report(since)["held"]
        assert isinstance(held_on_primary, dict)
        assert sum(held_on_primary.values()) > 0
        if primary_only.changes is not None:
            primary_only.changes.stop()
        primary_only.uow.engine.dispose()
    finally:
        services.crossings.stop_worker()
        if services.changes is not None:
            services.changes.stop()
        services.uow.engine.dispose()
        services.reports._sessions.kw["bind"].dispose()  # type: ignore[attr-defined]
