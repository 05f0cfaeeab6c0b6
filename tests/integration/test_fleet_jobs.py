"""Background jobs run once across the fleet: on real SQLite and PostgreSQL, two workers
(each with its own engine, as two processes would have) never run a job at the same time,
the purge runs once per interval between them, and a killed holder's turn is taken over."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.jobs import SqlJobLeases
from entryexit.services.jobs import FleetJobs

LEASE_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[Engine, Engine]]:
    first = create_database_engine(database_url)
    migrate(first)
    second = create_database_engine(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def test_a_held_job_is_refused_to_another_worker_until_released(
    engines: tuple[Engine, Engine],
) -> None:
    first, second = (SqlJobLeases(engine, LEASE_SECONDS) for engine in engines)
    lease = first.acquire("purge")
    assert lease is not None
    assert second.acquire("purge") is None
    assert second.acquire("admissions") is not None  # one lease per job
    lease.release()
    taken = second.acquire("purge")
    assert taken is not None
    taken.release()


def test_a_living_holder_keeps_its_lease_past_the_lease_time(
    engines: tuple[Engine, Engine],
) -> None:
    """The holder renews (SQLite: a heartbeat; PostgreSQL: the session lives)."""
    first, second = (SqlJobLeases(engine, LEASE_SECONDS) for engine in engines)
    lease = first.acquire("purge")
    assert lease is not None
    time.sleep(LEASE_SECONDS * 2.5)
    assert second.acquire("purge") is None
    assert lease.renew()
    lease.release()


def test_two_workers_run_the_purge_once_per_interval_never_together(
    engines: tuple[Engine, Engine],
) -> None:
    interval = timedelta(seconds=0.5)
    lasting = 2.6
    runs: list[str] = []
    running = 0
    most_at_once = 0
    counter = threading.Lock()

    def purge_body(worker: str) -> dict[str, int]:
        nonlocal running, most_at_once
        with counter:
            running += 1
            most_at_once = max(most_at_once, running)
            runs.append(worker)
        time.sleep(0.1)  # long enough that two unguarded workers would overlap
        with counter:
            running -= 1
        return {"captures": 0}

    def worker(name: str, engine: Engine) -> None:
        jobs = FleetJobs(SqlJobLeases(engine, LEASE_SECONDS), utc_now)
        deadline = time.monotonic() + lasting
        while time.monotonic() < deadline:
            jobs.run_if_due("purge", interval, lambda: purge_body(name))
            time.sleep(0.02)

    threads = [
        threading.Thread(target=worker, args=(f"worker-{i}", engine))
        for i, engine in enumerate(engines)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_at_once == 1
    # Due at 0, 0.5, ... 2.5 s: six at most in 2.6 s (twelve if each worker ran its own).
    assert 3 <= len(runs) <= 6, runs
    last = SqlJobLeases(engines[0]).last_run("purge")
    assert last is not None
    assert last.runs == len(runs)
    assert last.outcome == "ok"
    assert last.counts == {"captures": 0}


def test_a_failed_run_is_recorded_and_keeps_the_last_success(
    engines: tuple[Engine, Engine],
) -> None:
    leases = SqlJobLeases(engines[0], LEASE_SECONDS)
    jobs = FleetJobs(leases, utc_now)
    assert jobs.run_if_due("purge", timedelta(0), lambda: {"captures": 2}) == {"captures": 2}
    succeeded = leases.last_run("purge")
    assert succeeded is not None
    assert succeeded.success_at is not None

    def failing() -> dict[str, int]:
        raise RuntimeError("storage went away")

    with pytest.raises(RuntimeError):
        jobs.run_if_due("purge", timedelta(0), failing)
    failed = SqlJobLeases(engines[1]).last_run("purge")
    assert failed is not None
    assert failed.outcome == "failed"
    assert failed.success_at == succeeded.success_at
    assert failed.runs == 2
    # The lease was released despite the failure.
    again = leases.acquire("purge")
    assert again is not None
    again.release()


def test_one_leader_at_a_time_for_the_admission_worker(engines: tuple[Engine, Engine]) -> None:
    first, second = (
        FleetJobs(SqlJobLeases(engine, LEASE_SECONDS), utc_now).leadership("admissions")
        for engine in engines
    )
    assert first.run(lambda: {"applied": 1}) == {"applied": 1}
    assert second.run(lambda: {"applied": 1}) is None
    # Keeps the lead; an idle round soon after a recorded one is not written again.
    assert first.run(lambda: {"applied": 0}) == {"applied": 0}
    first.release()
    assert second.run(lambda: {"applied": 3}) == {"applied": 3}
    assert first.run(lambda: {"applied": 1}) is None
    second.release()
    last = SqlJobLeases(engines[0]).last_run("admissions")
    assert last is not None
    assert last.runs == 2
    assert last.counts == {"applied": 3}


HOLDER = textwrap.dedent(
    """
    import sys, time
    from entryexit.adapters.storage.database import create_database_engine
    from entryexit.adapters.storage.jobs import SqlJobLeases
    leases = SqlJobLeases(create_database_engine(sys.argv[1]), float(sys.argv[2]))
    lease = leases.acquire("purge")
    print("held" if lease is not None else "refused", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_holders_job_is_taken_over(
    engines: tuple[Engine, Engine], database_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url, str(LEASE_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        leases = SqlJobLeases(engines[1], LEASE_SECONDS)
        assert leases.acquire("purge") is None
        holder.kill()  # SIGKILL: no release, no goodbye
        holder.wait(timeout=10)
        killed_at = time.monotonic()
        taken = None
        while taken is None and time.monotonic() - killed_at < 10:
            taken = leases.acquire("purge")
            time.sleep(0.05)
        assert taken is not None
        took = time.monotonic() - killed_at
        # PostgreSQL: the lock ends with the session; SQLite: after the lease expires.
        assert took < LEASE_SECONDS + 2
        taken.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_heartbeat_survives_a_raw_driver_error_and_keeps_renewing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """F14: a renewal that met ``database is locked`` as the bare sqlite3 error (not wrapped by
    SQLAlchemy) killed the heartbeat thread, and the lease then expired under a living holder."""
    url = f"sqlite+pysqlite:///{tmp_path / 'leases.db'}"
    engine, other = create_database_engine(url), create_database_engine(url)
    migrate(engine)
    leases = SqlJobLeases(engine, LEASE_SECONDS)
    real_renew = leases._renew_row
    calls = {"failed": 0, "renewed": 0}

    def renew_failing_once(job: str, holder: str) -> bool:
        if calls["failed"] == 0:
            calls["failed"] += 1
            raise sqlite3.OperationalError("database is locked: SECRET-PARAMETER")
        calls["renewed"] += 1
        return real_renew(job, holder)

    leases._renew_row = renew_failing_once  # type: ignore[method-assign]
    lease = leases.acquire("purge")
    assert lease is not None
    heartbeat = next(t for t in threading.enumerate() if t.name == "lease-purge")
    with caplog.at_level(logging.WARNING, logger="entryexit.adapters.storage.jobs"):
        time.sleep(LEASE_SECONDS * 2.5)
    assert calls["failed"] == 1
    assert heartbeat.is_alive()
    assert calls["renewed"] >= 2  # it went on beating after the failure
    assert SqlJobLeases(other, LEASE_SECONDS).acquire("purge") is None  # still held
    assert "OperationalError" in caplog.text
    assert "SECRET-PARAMETER" not in caplog.text  # the type is logged, never the message
    lease.release()
    engine.dispose()
    other.dispose()
