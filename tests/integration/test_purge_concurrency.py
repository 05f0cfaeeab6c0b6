"""The retention purge does not stall writers (probe F14): on SQLite, the embedded default with
one writer at a time, a short write made while the purge runs over a store holding a large
manifest completes within a bound. Before migration 0022 the purge's "does a manifest still
name this traveler" scanned every manifest entry per document and per traveler, holding the
write lock for seconds (8 s at 10,000 travelers) while gates and consoles waited. Since
session 7 the purge deletes in batches and reads what else is due outside the write lock."""

# ruff: noqa: S608 - SQL assembled from constants and integers, for generating test data only

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.services.audit import AuditTrail
from entryexit.services.policies import PolicyService
from entryexit.services.privacy import PurgeService

# Large enough that the old plan held the lock for seconds on this kind of machine, small
# enough that the test takes seconds.
TRAVELERS = 6_000
# A gate's write waits at most this long for the purge (it waited 32 s in the probe).
WRITE_BOUND_SECONDS = 1.0


def _series(n: int) -> str:
    return (
        "(WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < "
        f"{n} - 1) SELECT i FROM c) AS g"
    )


def _store_manifest(engine: Engine, travelers: int) -> None:
    """A flight still to depart with a stored manifest, as an upload leaves it: a traveler,
    a document, a data key and a manifest entry each (nothing of it is due)."""
    created = "'2026-11-30 00:00:00'"
    series = _series(travelers)
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO flights (id, carrier, number, scheduled_departure, origin, destination,"
            " direction, created_at, gallery_version, manifest_version) VALUES ('f', 'EE', '1',"
            f" '2099-01-01 00:00:00', 'AAA', 'BBB', 'exit', {created}, 0, 'u')",
            f"INSERT INTO travelers (id, created_at) SELECT 't' || g.i, {created} FROM {series}",
            "INSERT INTO documents (id, traveler_id, issuing_state, number_digest,"
            " citizenship_class) SELECT 'd' || g.i, 't' || g.i, 'XXA', 't' || g.i,"
            f" 'foreign_national' FROM {series}",
            "INSERT INTO data_keys (traveler_id, kek_id, wrapped_key, created_at)"
            f" SELECT 't' || g.i, 'k', X'00', {created} FROM {series}",
            "INSERT INTO manifest_entries (flight_id, upload_id, document_id, traveler_id,"
            f" added_at) SELECT 'f', 'u', 'd' || g.i, 't' || g.i, {created} FROM {series}",
        ):
            connection.execute(text(statement))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    url = f"sqlite+pysqlite:///{tmp_path / 'store.db'}"
    purging, writing = create_database_engine(url), create_database_engine(url)
    migrate(purging)
    _store_manifest(purging, TRAVELERS)
    yield purging, writing
    purging.dispose()
    writing.dispose()


def test_a_short_write_during_a_purge_over_a_large_manifest_completes_within_a_bound(
    database: tuple[Engine, Engine],
) -> None:
    purging, writing = database
    keys = EphemeralKeyProvider()
    now = datetime.now(UTC)
    uow = SqlUnitOfWorkFactory(purging, keys)
    audit = AuditTrail(uow, lambda: now, keys)
    policies = PolicyService(uow, lambda: now, audit)
    policies.ensure_default()
    purge = PurgeService(uow, lambda: now, audit, None, policies)
    # The gate is another process: its own engine, its own connection to the file.
    gate = SqlUnitOfWorkFactory(writing, keys)

    purge_deleting = threading.Event()

    @event.listens_for(purging, "before_cursor_execute")
    def _deleting(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        if "FROM DOCUMENTS" in statement.upper():
            # Deciding which documents are due: once in the purge's write transaction, now a
            # read beside it (the write must not wait for it either way).
            purge_deleting.set()

    counts: dict[str, int] = {}
    purger = threading.Thread(target=lambda: counts.update(purge.run()))
    purger.start()
    assert purge_deleting.wait(30), "the purge never looked for due documents"
    started = time.perf_counter()
    gate.probe_write(datetime.now(UTC))
    waited = time.perf_counter() - started
    purger.join(60)

    assert not purger.is_alive()
    assert not any(counts.values())  # nothing was due: only the cost of deciding so
    assert waited < WRITE_BOUND_SECONDS, f"a write waited {waited:.2f} s for the purge"
