"""What first-carrier-wins costs the manifest swap: the one short transaction that puts an
upload in force, which gates on other flights wait for.

    .venv/bin/python benchmarks/bench_manifest_conflicts.py --travelers 10000
    .venv/bin/python benchmarks/bench_manifest_conflicts.py --database-url postgresql+psycopg://...

Carrier ZZ uploads ``--travelers`` travelers; then three uploads change every traveler's
details, each staged as the service stages it (batches) and swapped in one transaction:

* ``own`` - ZZ corrects its own travelers (details applied: the path before this change);
* ``conflicts`` - EE lists the same documents with other details (every one a new conflict);
* ``conflicts again`` - EE sends them again with yet other details (every conflict updated).

For each, the swap transaction's CPU time in this process (``time.process_time``; the
database's own work on PostgreSQL is in its server process, so the wall time is printed too).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Flight,
    ManifestChange,
    ManifestTraveler,
    Sex,
)
from entryexit.services.flights import stage_travelers
from entryexit.services.unit_of_work import UnitOfWork, in_transaction

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def travelers(count: int, surname: str) -> list[ManifestTraveler]:
    return [
        ManifestTraveler(
            surname,
            "ONE",
            date(1980, 1, 1),
            Sex.FEMALE,
            "UTO",
            CitizenshipClass.FOREIGN_NATIONAL,
            DocumentType.PASSPORT,
            DocumentKey("UTO", f"B{index:08d}"),
            date(2031, 1, 1),
        )
        for index in range(count)
    ]


def flight(factory: SqlUnitOfWorkFactory, carrier: str) -> str:
    created = Flight(str(uuid.uuid4()), carrier, "1", NOW, "AAA", "BBB", Direction.EXIT, NOW)
    in_transaction(factory, lambda uow: uow.flights.add(created))
    return created.id


def upload(
    factory: SqlUnitOfWorkFactory, flight_id: str, carrier: str, rows: list[ManifestTraveler]
) -> tuple[ManifestChange, float, float]:
    upload_id = str(uuid.uuid4())
    stage_travelers(factory, flight_id, upload_id, rows, NOW, pause=0, details_by=carrier)

    def swap(uow: UnitOfWork) -> ManifestChange:
        return uow.flights.swap_manifest(
            flight_id, upload_id, NOW, len(rows), uploader_carrier=carrier
        )

    cpu, wall = time.process_time(), time.perf_counter()
    change = in_transaction(factory, swap)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    in_transaction(
        factory,
        lambda uow: uow.flights.discard_manifest_versions(flight_id=flight_id, staged_before=NOW),
    )
    return change, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travelers", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
        engine = create_database_engine(url)
        migrate(engine)
        keys = EphemeralKeyProvider()
        factory = SqlUnitOfWorkFactory(engine, keys)
        zz, ee = flight(factory, "ZZ"), flight(factory, "EE")
        first = travelers(args.travelers, "FIRST")
        upload(factory, zz, "ZZ", first)
        print(f"{engine.dialect.name}, {args.travelers} travelers, every one's details changed")
        for name, flight_id, carrier, surname in (
            ("own", zz, "ZZ", "OWN"),
            ("conflicts", ee, "EE", "OTHER"),
            ("conflicts again", ee, "EE", "OTHER2"),
        ):
            rows = [replace(t, surname=surname) for t in first]
            change, cpu, wall = upload(factory, flight_id, carrier, rows)
            print(
                f"  {name:16} swap: {cpu * 1000:7.0f} ms CPU, {wall * 1000:7.0f} ms wall"
                f"  (conflicts {change.conflicts})"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
