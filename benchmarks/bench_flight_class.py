"""What the capture's class read costs now that it follows the flight's carrier (session 9):
``TravelerRepository.citizenship_class(traveler_id, flight)``, one statement on a capture's
hot path, against the statement before (``citizenship_class(traveler_id)``, the details in
force; still the path without a flight).

    .venv/bin/python benchmarks/bench_flight_class.py --travelers 300 --rounds 5
    .venv/bin/python benchmarks/bench_flight_class.py --database-url postgresql+psycopg://...

ZZ's key lists ``--travelers`` passports first (ZZ holds their details); EE's key lists the
same passports on EE's flight with another class (a rival holds the details: EE's sealed copy
is opened), and another ``--travelers`` passports of its own (EE holds them: the common
case). The reads of a round run in one read-only unit of work (a capture makes its read
inside its own transaction, so the statement alone is measured); the figure is the median over
rounds of this process's CPU (``time.process_time``) per read, with the wall time beside it
(PostgreSQL's own work is in its server).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.repositories.travelers import _FLIGHT_CLASS
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import CitizenshipClass, Direction, Flight
from entryexit.services.unit_of_work import UnitOfWork, in_transaction

sys.path.insert(0, str(Path(__file__).parent))
from bench_carrier_copy import NOW, travelers, upload


def new_flight(factory: SqlUnitOfWorkFactory, carrier: str) -> Flight:
    created = Flight(str(uuid.uuid4()), carrier, "1", NOW, "AAA", "BBB", Direction.EXIT, NOW)
    in_transaction(factory, lambda uow: uow.flights.add(created))
    return created


def per_read(
    factory: SqlUnitOfWorkFactory, ids: list[str], read: Callable[[UnitOfWork, str], object]
) -> tuple[float, float]:
    with factory(read_only=True) as uow:
        read(uow, ids[0])  # the session's connection and first statement are not the read's
        cpu, wall = time.process_time(), time.perf_counter()
        for traveler_id in ids:
            read(uow, traveler_id)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return (
        cpu / len(ids) * 1e6,
        wall / len(ids) * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travelers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
        engine = create_database_engine(url)
        migrate(engine)
        factory = SqlUnitOfWorkFactory(engine, EphemeralKeyProvider())
        rows = travelers(2 * args.travelers)
        disputed, own = rows[: args.travelers], rows[args.travelers :]
        upload(factory, new_flight(factory, "ZZ").id, "ZZ", disputed)
        ee = new_flight(factory, "EE")
        citizens = [replace(t, citizenship_class=CitizenshipClass.CITIZEN) for t in disputed]
        upload(factory, ee.id, "EE", citizens + own)
        with factory(read_only=True) as uow:
            ids = {
                s.document.number: s.traveler_id
                for s in uow.flights.manifest_status(ee.id, "", "EE")
            }
            rival_ids = [ids[t.document.number] for t in disputed]
            own_ids = [ids[t.document.number] for t in own]
            # The rule holds: EE's copy on EE's flight, ZZ's details in force.
            assert uow.travelers.citizenship_class(rival_ids[0], ee) is CitizenshipClass.CITIZEN
            assert uow.travelers.citizenship_class(rival_ids[0]) is not CitizenshipClass.CITIZEN

        cases: dict[str, tuple[list[str], Callable[[UnitOfWork, str], object]]] = {
            "before: details in force": (
                own_ids,
                lambda uow, t: uow.travelers.citizenship_class(t),
            ),
            "after: EE holds the details": (
                own_ids,
                lambda uow, t: uow.travelers.citizenship_class(t, ee),
            ),
            "after: a rival holds them": (
                rival_ids,
                lambda uow, t: uow.travelers.citizenship_class(t, ee),
            ),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):  # interleaved, so load changes hit every case alike
            for name, (ids_, read) in cases.items():
                results[name].append(per_read(factory, ids_, read))
        print(f"{engine.dialect.name}, {args.travelers} reads a case, {args.rounds} rounds")
        for name, figures in results.items():
            cpu = statistics.median(f[0] for f in figures)
            wall = statistics.median(f[1] for f in figures)
            print(f"  {name:30} {cpu:7.0f} us CPU  {wall:7.0f} us wall  (median a read)")
        if engine.dialect.name == "sqlite":  # the plan: every table reached by an index
            compiled = _FLIGHT_CLASS.compile(engine)
            values = compiled.construct_params(
                {"traveler_id": own_ids[0], "flight_id": ee.id, "carrier": ee.carrier}
            )
            ordered = tuple(values[name] for name in compiled.positiontup or ())
            with engine.connect() as connection:
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", ordered).all()
            for step in plan:
                print(f"  plan: {step[-1]}")
        engine.dispose()


if __name__ == "__main__":
    main()
