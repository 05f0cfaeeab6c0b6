"""What following other instances costs, and how fast their changes arrive (PostgreSQL).

    .venv/bin/python benchmarks/bench_invalidation.py --database-url postgresql+psycopg://...

Needs an empty PostgreSQL database it may migrate and write (policies, cache generations).
Prints, for the policy cache: the cost of one look with NOTIFY news pushed (no read) and with
the generation read at every look (SQLite's way, and PostgreSQL's while the listener is down);
and the time from another process's commit of a change to this process's listener seeing it
(p50/p99 over ``--changes`` commits, timed from the start of the writer's transaction: an
upper bound).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.notify import PostgresChangeListener, conninfo
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.bootstrap import utc_now
from entryexit.services import policies as policies_module
from entryexit.services.audit import AuditTrail
from entryexit.services.policies import GENERATION, PolicyService
from entryexit.services.unit_of_work import in_transaction


def per_call_microseconds(function: Callable[[], object], count: int) -> float:
    function()
    began = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - began) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--looks", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=200)
    arguments = parser.parse_args()
    engine = create_database_engine(arguments.database_url)
    migrate(engine)
    keys = EphemeralKeyProvider()
    uow = SqlUnitOfWorkFactory(engine, keys)
    audit = AuditTrail(uow, utc_now, keys)
    listener = PostgresChangeListener(conninfo(engine))
    assert listener.start(), "the listener did not connect"
    try:
        pushed = PolicyService(uow, utc_now, audit)
        pushed.ensure_default()
        pushed.follow(listener)
        reading = PolicyService(uow, utc_now, audit)
        policies_module.RECHECK_EVERY = timedelta(0)  # read the generation at every look
        with_news = per_call_microseconds(pushed.in_force, arguments.looks)
        by_reading = per_call_microseconds(reading.in_force, arguments.looks)

        writer = SqlUnitOfWorkFactory(create_database_engine(arguments.database_url), keys)
        delays = []
        for _ in range(arguments.changes):
            before = listener.token(GENERATION)
            # From the start of the writer's transaction (its commit's end is not observable
            # here: the news often arrives before in_transaction has returned).
            committed = time.perf_counter()
            in_transaction(writer, lambda u: u.generations.bump(GENERATION))
            while listener.token(GENERATION) == before:
                time.sleep(0.0002)
            delays.append((time.perf_counter() - committed) * 1e3)
        delays.sort()
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(f"policy look, news pushed (no read):  {with_news:8.1f} us")
        print(f"policy look, generation read:         {by_reading:8.1f} us")
        print(
            f"change -> listener saw it: p50 {statistics.median(delays):.2f} ms,"
            f" p99 {p99:.2f} ms, max {delays[-1]:.2f} ms over {len(delays)} changes"
        )
    finally:
        listener.stop()
        engine.dispose()


if __name__ == "__main__":
    main()
