"""What re-checking the policy's age/class rule costs where prints are used (session 9, probe
C1): the retention purge now pages through every traveler with enrolled prints, opening their
birth dates (a data-key unwrap and a decryption each) outside the write lock; a flight search
decides the class for the flight on clear columns and opens the birth dates of the proposed
candidates only.

    .venv/bin/python benchmarks/bench_fingerprint_exempt.py --travelers 200 800 3200
    PYTHONPATH=/path/to/older/src .venv/bin/python benchmarks/bench_fingerprint_exempt.py

The SQL store (SQLite, a new file for each size) with the real sealing; the fingerprint engine
is the tests' fake. Each of ``--travelers`` foreign nationals (adults, none exempt, so nothing
is deleted) on one flight has one finger enrolled. Reported: the CPU time
(``time.process_time``, this process, one thread) of one retention purge run with nothing due
(median of ``--runs``), and of one flight search (median of ``--runs``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from tests.fakes import FakeAnalyser, FakeFingerprintEngine, StaticKeyProvider, fake_print

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.bootstrap import build_services
from entryexit.config import Settings
from entryexit.domain.access import Principal, Role
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.services.fingerprints import SubmittedPrint
from entryexit.services.flights import NewFlight

DEPARTURE = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
OFFICER = Principal("k-officer", "officer", Role.OFFICER)


def traveler(index: int) -> ManifestTraveler:
    return ManifestTraveler(
        "DOE",
        "JANE",
        date(1990, 1, 2),
        Sex.FEMALE,
        "XYZ",
        CitizenshipClass.FOREIGN_NATIONAL,
        DocumentType.PASSPORT,
        DocumentKey("XYZ", f"B{index:08d}"),
        date(2031, 1, 1),
    )


def cpu_of(work: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.process_time()
        work()
        timings.append(time.process_time() - started)
    return statistics.median(timings)


def measure(database_url: str, data_dir: Path, count: int, runs: int) -> tuple[float, float]:
    engine = create_database_engine(database_url)
    migrate(engine)
    factory = SqlUnitOfWorkFactory(engine, StaticKeyProvider())
    settings = Settings(data_dir=data_dir, database_url=database_url)
    services = build_services(
        settings,
        database=factory,
        uow=factory,
        engine=FakeAnalyser(),
        keys=StaticKeyProvider(),
        fingerprint_engine=FakeFingerprintEngine,
    )
    flight = services.flights.create(
        NewFlight("EE", "1", DEPARTURE, "AAA", "BBB", Direction.EXIT), OFFICER
    )
    rows = [traveler(index) for index in range(count)]
    services.flights.put_manifest(flight.id, rows, OFFICER)
    for index, row in enumerate(rows):
        services.fingerprints.enrol(
            OFFICER, row.document, [SubmittedPrint(2, fake_print(1 + index % 249), ppi=500)]
        )
    probe = [SubmittedPrint(2, fake_print(7), ppi=500)]
    services.purge.run()  # warm
    services.fingerprints.search(OFFICER, flight.id, probe)
    purge = cpu_of(services.purge.run, runs)
    search = cpu_of(lambda: services.fingerprints.search(OFFICER, flight.id, probe), runs)
    engine.dispose()
    return purge, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travelers", type=int, nargs="+", default=[200, 800, 3200])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("enrolled travelers | purge run CPU ms (nothing due) | search CPU ms")
    for count in args.travelers:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
            purge, search = measure(url, Path(folder) / "data", count, args.runs)
        print(f"{count} | {purge * 1000:.1f} | {search * 1000:.1f}")


if __name__ == "__main__":
    main()
