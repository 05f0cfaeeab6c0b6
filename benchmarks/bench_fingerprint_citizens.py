"""What deciding "citizen" costs a flight's fingerprint search (session 9, review L10): the
search used to open every enrolled traveler's profile (two queries, a data-key unwrap and a
decryption each) on every search; now one query on clear columns decides for the flight and
only the proposed candidates' sealed details are opened.

    .venv/bin/python benchmarks/bench_fingerprint_citizens.py --travelers 50 200 800
    PYTHONPATH=/path/to/older/src .venv/bin/python benchmarks/bench_fingerprint_citizens.py

The SQL store (SQLite, a new file for each size) with the real sealing; the
fingerprint engine is the tests' fake (a comparison costs next to nothing), so what is
measured is the search's own work around the comparisons: the store, the citizen decision,
the fusion and the audit event. Each of ``--travelers`` foreign nationals on one flight has
one finger enrolled; the search sends that finger. Reported: the median CPU time
(``time.process_time``, this process, one thread) of ``--searches`` searches, and its wall
time (on PostgreSQL the server's work is only in the wall time).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
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


def measure(database_url: str, data_dir: Path, count: int, searches: int) -> tuple[float, float]:
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
        grey = 1 + index % 249
        services.fingerprints.enrol(
            OFFICER, row.document, [SubmittedPrint(2, fake_print(grey), ppi=500)]
        )
    probe = [SubmittedPrint(2, fake_print(7), ppi=500)]
    services.fingerprints.search(OFFICER, flight.id, probe)  # warm
    cpu, wall = [], []
    for _ in range(searches):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        found = services.fingerprints.search(OFFICER, flight.id, probe)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
        assert found.searched == count, found.searched
    engine.dispose()
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travelers", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--searches", type=int, default=5)
    args = parser.parse_args()
    print("travelers | search CPU ms (median) | wall ms | CPU ms per traveler")
    for count in args.travelers:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
            cpu, wall = measure(url, Path(folder) / "data", count, args.searches)
        print(f"{count} | {cpu * 1000:.1f} | {wall * 1000:.1f} | {cpu * 1000 / count:.3f}")


if __name__ == "__main__":
    main()
