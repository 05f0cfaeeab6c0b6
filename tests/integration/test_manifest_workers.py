"""Manifests are read, validated, sealed and staged in a worker process, not in the serving
process; a worker that dies or runs out of time, or a pool that is busy, refuses the upload
with 503 and leaves the manifest in force as it was, with nothing staged left behind (SQLite
and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypedDict, Unpack

import pytest
from sqlalchemy import func, or_, select

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.adapters.manifest_workers import KeySource, ManifestWorkers
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.tables import FlightRow, ManifestEntryRow
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import Direction
from entryexit.errors import InvalidInputError, WorkerUnavailableError
from entryexit.services import flights as flights_module
from entryexit.services.audit import AuditTrail
from entryexit.services.flights import FlightService, ManifestFormat, NewFlight

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def manifest(count: int, prefix: str = "W", surname: str = "DOE") -> bytes:
    rows = [
        {
            "surname": surname,
            "given_names": "JANE",
            "date_of_birth": "1980-01-01",
            "sex": "F",
            "nationality": "XYZ",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"{prefix}{index:07d}",
            "issuing_state": "XYZ",
            "document_expiry": "2031-01-01",
        }
        for index in range(count)
    ]
    return json.dumps({"travelers": rows}).encode()


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyProvider:
    provider = FileKeyProvider(tmp_path / "keys")
    provider.initialise()
    return provider


@pytest.fixture
def factory(database_url: str, keys: FileKeyProvider) -> Iterator[SqlUnitOfWorkFactory]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield SqlUnitOfWorkFactory(engine, keys)
    engine.dispose()


class _WorkerOptions(TypedDict, total=False):
    timeout: float
    queue_wait: float


def workers(
    factory: SqlUnitOfWorkFactory, keys: FileKeyProvider, **options: Unpack[_WorkerOptions]
) -> ManifestWorkers:
    return ManifestWorkers(
        factory.engine.url.render_as_string(hide_password=False), KeySource.of(keys), **options
    )


def service(factory: SqlUnitOfWorkFactory, pool: ManifestWorkers) -> FlightService:
    audit = AuditTrail(factory, lambda: NOW, factory._sealer._keys)
    return FlightService(factory, lambda: NOW, "m", audit, stager=pool)


def in_force_numbers(flights: FlightService, flight_id: str) -> set[str]:
    return {t.document.number for t in flights.manifest_travelers(flight_id)}


def staged_rows(factory: SqlUnitOfWorkFactory) -> int:
    """Manifest entries of no version in force, counted without ``in_force`` (a flight with
    no manifest yet has no version: all its entries are staged ones)."""
    entry, flight = ManifestEntryRow, FlightRow
    query = (
        select(func.count())
        .select_from(entry)
        .join(flight, flight.id == entry.flight_id)
        .where(or_(flight.manifest_version.is_(None), flight.manifest_version != entry.upload_id))
    )
    with factory.engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def new_flight(flights: FlightService, carrier: str = "EE") -> str:
    return flights.create(NewFlight(carrier, "7", NOW, "AAA", "BBB", Direction.EXIT)).id


@dataclass(frozen=True)
class Staging:
    """A worker pool, the flight service that stages through it, and a new flight."""

    factory: SqlUnitOfWorkFactory
    pool: ManifestWorkers
    flights: FlightService
    flight_id: str


class StartWorkers(Protocol):
    def __call__(self, **options: Unpack[_WorkerOptions]) -> Staging: ...


@pytest.fixture
def start_workers(factory: SqlUnitOfWorkFactory, keys: FileKeyProvider) -> Iterator[StartWorkers]:
    """Pools with the given options; every one is stopped after the test, however it ends."""
    pools: list[ManifestWorkers] = []

    def start(**options: Unpack[_WorkerOptions]) -> Staging:
        pool = workers(factory, keys, **options)
        pools.append(pool)
        flights = service(factory, pool)
        return Staging(factory, pool, flights, new_flight(flights))

    yield start
    for pool in pools:
        pool.stop()


@pytest.fixture
def staging(start_workers: StartWorkers) -> Staging:
    return start_workers()


def test_the_manifest_is_read_in_a_worker_not_in_the_serving_process(
    staging: Staging, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, flights, flight_id = staging.pool, staging.flights, staging.flight_id

    def not_here(*_: object) -> None:
        raise AssertionError("the manifest was read in the serving process")

    # Reading a manifest here fails; the worker (a fresh interpreter) reads it.
    monkeypatch.setattr(flights_module, "read_manifest", not_here)
    monkeypatch.setattr(flights_module, "stage_manifest", not_here)
    replaced = flights.replace_manifest(flight_id, manifest(30), ManifestFormat.JSON)
    assert (replaced.change.added, replaced.change.total) == (30, 30)
    assert len(in_force_numbers(flights, flight_id)) == 30
    assert pool.pids()
    assert os.getpid() not in pool.pids()


def test_an_invalid_row_is_refused_by_the_worker_as_it_would_be_here(staging: Staging) -> None:
    flights, flight_id = staging.flights, staging.flight_id
    flights.replace_manifest(flight_id, manifest(5), ManifestFormat.JSON)
    rows = json.loads(manifest(300, prefix="X"))
    rows["travelers"][250]["date_of_birth"] = "yesterday"
    with pytest.raises(InvalidInputError, match="traveler 251: 'date_of_birth'"):
        flights.replace_manifest(flight_id, json.dumps(rows).encode(), ManifestFormat.JSON)
    assert in_force_numbers(flights, flight_id) == {f"W{n:07d}" for n in range(5)}
    assert staged_rows(staging.factory) == 0


def test_a_paxlst_keeps_its_valid_travelers_and_the_worker_returns_the_flagged(
    staging: Staging,
) -> None:
    flights, flight_id = staging.flights, staging.flight_id
    text = (
        "UNH+1+PAXLST:D:05B:UN'NAD+FL+++DOE:JANE'DTM+329:19801340'NAT+2+UTO'"
        "DOC+P+A1'DTM+36:20300101'"
        "NAD+FL+++ROE:JOHN'ATT+2++M'DTM+329:19800101'NAT+2+UTO'DOC+P+B2'DTM+36:20300101'"
        "UNT+13+1'"
    )
    replaced = flights.replace_manifest(flight_id, text.encode(), ManifestFormat.PAXLST)
    assert replaced.change.total == 1
    assert in_force_numbers(flights, flight_id) == {"B2"}
    assert [(f.position, f.role) for f in replaced.flagged] == [(2, "FL")]
    assert "not a date" in replaced.flagged[0].reason


def kill_when_staging(factory: SqlUnitOfWorkFactory, pool: ManifestWorkers) -> threading.Thread:
    """Kill the worker once it has written part of the new version."""

    def kill() -> None:
        deadline = time.monotonic() + 120
        while staged_rows(factory) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(pool.pids()[0], signal.SIGKILL)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_a_worker_killed_mid_upload_leaves_the_manifest_in_force(staging: Staging) -> None:
    pool, flights, flight_id = staging.pool, staging.flights, staging.flight_id
    # The flight's first upload dies: nothing in force, nothing staged left.
    killer = kill_when_staging(staging.factory, pool)
    with pytest.raises(WorkerUnavailableError, match="stopped; nothing was changed"):
        flights.replace_manifest(flight_id, manifest(3000, prefix="NEW"), ManifestFormat.JSON)
    killer.join()
    assert in_force_numbers(flights, flight_id) == set()
    assert staged_rows(staging.factory) == 0
    # The worker was replaced; a manifest goes in, and the next upload dies too.
    flights.replace_manifest(flight_id, manifest(20, prefix="OLD"), ManifestFormat.JSON)
    before = in_force_numbers(flights, flight_id)
    killer = kill_when_staging(staging.factory, pool)
    with pytest.raises(WorkerUnavailableError, match="stopped; nothing was changed"):
        flights.replace_manifest(flight_id, manifest(3000, prefix="NEW"), ManifestFormat.JSON)
    killer.join()
    assert in_force_numbers(flights, flight_id) == before
    assert staged_rows(staging.factory) == 0
    replaced = flights.replace_manifest(flight_id, manifest(50, prefix="NEW"), ManifestFormat.JSON)
    assert (replaced.change.added, replaced.change.removed) == (50, 20)


def test_a_worker_past_its_time_is_stopped_and_the_manifest_stays(
    start_workers: StartWorkers,
) -> None:
    """On a flight with no manifest yet, too: its staged rows are dropped all the same."""
    staging = start_workers(timeout=0.5)
    pool, flights, flight_id = staging.pool, staging.flights, staging.flight_id
    pool.start()  # the worker is up: the time limit is the upload's alone
    first_worker = pool.pids()
    with pytest.raises(WorkerUnavailableError, match=r"not processed within 0\.5 s"):
        flights.replace_manifest(flight_id, manifest(5000), ManifestFormat.JSON)
    assert in_force_numbers(flights, flight_id) == set()
    assert staged_rows(staging.factory) == 0
    assert pool.pids() != first_worker


def test_a_busy_pool_refuses_with_retry_after(start_workers: StartWorkers) -> None:
    staging = start_workers(queue_wait=0.05)
    pool, flights = staging.pool, staging.flights
    # Another carrier's: the same carrier's second upload is refused at once (below).
    first, second = staging.flight_id, new_flight(flights, "ZZ")
    pool.start()
    outcome: list[object] = []

    def upload() -> None:
        try:
            outcome.append(flights.replace_manifest(first, manifest(3000), ManifestFormat.JSON))
        except Exception as exc:
            outcome.append(exc)

    big = threading.Thread(target=upload)
    big.start()
    deadline = time.monotonic() + 60
    while staged_rows(staging.factory) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(WorkerUnavailableError, match="being processed") as refused:
        flights.replace_manifest(second, manifest(5, prefix="B"), ManifestFormat.JSON)
    assert refused.value.retry_after >= 1
    big.join()
    assert [type(o).__name__ for o in outcome] == ["ManifestReplaced"]
    assert len(in_force_numbers(flights, first)) == 3000
    assert in_force_numbers(flights, second) == set()


def test_one_carriers_stream_of_uploads_does_not_starve_another_carriers(
    start_workers: StartWorkers,
) -> None:
    """F10: carrier EE keeps the single worker busy with a large manifest and sends more
    meanwhile. Each carrier has one upload in progress or waiting at most: EE's extra ones
    are refused at once (503, Retry-After) instead of queueing in front of ZZ's, which is
    served as soon as the worker is free."""
    staging = start_workers(queue_wait=300)
    pool, flights = staging.pool, staging.flights
    big_flight = staging.flight_id
    more_flights = [new_flight(flights) for _ in range(3)]
    theirs = new_flight(flights, "ZZ")
    pool.start()
    outcomes: dict[str, object] = {}

    def upload(name: str, flight_id: str, data: bytes) -> None:
        try:
            outcomes[name] = flights.replace_manifest(flight_id, data, ManifestFormat.JSON)
        except Exception as exc:
            outcomes[name] = exc

    def started(name: str, flight_id: str, data: bytes) -> threading.Thread:
        thread = threading.Thread(target=upload, args=(name, flight_id, data))
        thread.start()
        return thread

    threads = [started("EE big", big_flight, manifest(3000))]
    deadline = time.monotonic() + 60
    while staged_rows(staging.factory) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    threads += [
        started(f"EE more {i}", flight, manifest(50, prefix=f"M{i}"))
        for i, flight in enumerate(more_flights)
    ]
    time.sleep(0.5)  # EE's extra uploads arrive first
    threads.append(started("ZZ", theirs, manifest(5, prefix="Z")))
    for thread in threads:
        thread.join(timeout=600)
    kinds = {name: type(outcome).__name__ for name, outcome in outcomes.items()}
    assert kinds == {
        "EE big": "ManifestReplaced",
        "EE more 0": "WorkerUnavailableError",
        "EE more 1": "WorkerUnavailableError",
        "EE more 2": "WorkerUnavailableError",
        "ZZ": "ManifestReplaced",
    }
    refused = outcomes["EE more 0"]
    assert isinstance(refused, WorkerUnavailableError)
    assert refused.retry_after >= 1
    assert "this carrier" in refused.message
    assert len(in_force_numbers(flights, theirs)) == 5
    assert all(in_force_numbers(flights, flight) == set() for flight in more_flights)


def test_a_worker_gets_the_key_directory_not_the_keys(keys: FileKeyProvider) -> None:
    keys.current_kek()  # cached in the provider now
    sent = pickle.dumps(KeySource.of(keys))
    for key in (keys.current_kek()[1], keys.index_key(), keys.audit_key(), keys.checkpoint_key()):
        assert key not in sent
    assert KeySource.of(keys).open().index_key() == keys.index_key()


def test_a_worker_gets_environment_keys_from_its_own_environment() -> None:
    from entryexit.adapters.crypto.keys import EnvironmentKeyProvider

    def key(byte: int) -> str:
        return base64.b64encode(bytes([byte]) * 32).decode()

    environ = {
        "ENTRYEXIT_KEK": "k1:" + key(1),
        "ENTRYEXIT_AUDIT_KEY": key(2),
        "ENTRYEXIT_INDEX_KEY": key(3),
    }
    provider = EnvironmentKeyProvider(environ)
    sent = pickle.dumps(KeySource.of(provider))
    assert provider.current_kek()[1] not in sent
    assert provider.index_key() not in sent
