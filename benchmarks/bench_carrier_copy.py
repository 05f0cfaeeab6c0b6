"""What keeping each carrier's own copy of its manifest costs (session 8, probe P1/P4): the
staging of a carrier's upload now seals one more copy per traveler (and opens the data key of
every known traveler, not only of those whose details changed), and a carrier's listing opens
its copy instead of the document's details.

    .venv/bin/python benchmarks/bench_carrier_copy.py --travelers 10000
    .venv/bin/python benchmarks/bench_carrier_copy.py --database-url postgresql+psycopg://...

The agency uploads ``--travelers`` travelers to an EE flight (their documents now known);
then the same travelers, unchanged, are staged for a ZZ flight by the agency (no copy kept:
the path as before) and by ZZ's key (a copy kept for each); then the ZZ flight's manifest is
listed as the agency sees it and as ZZ's key sees it (every traveler's details held by the
agency: ZZ's own copies are opened). CPU is this process's (``time.process_time``); the
database's own work on PostgreSQL is in its server, so wall time is printed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import (
    AGENCY,
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Flight,
    ManifestTraveler,
    Sex,
)
from entryexit.services.flights import stage_travelers
from entryexit.services.unit_of_work import in_transaction

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def travelers(count: int) -> list[ManifestTraveler]:
    return [
        ManifestTraveler(
            "SAME",
            "ONE",
            date(1980, 1, 1),
            Sex.FEMALE,
            "XYZ",
            CitizenshipClass.FOREIGN_NATIONAL,
            DocumentType.PASSPORT,
            DocumentKey("XYZ", f"B{index:08d}"),
            date(2031, 1, 1),
        )
        for index in range(count)
    ]


def flight(factory: SqlUnitOfWorkFactory, carrier: str) -> str:
    created = Flight(str(uuid.uuid4()), carrier, "1", NOW, "AAA", "BBB", Direction.EXIT, NOW)
    in_transaction(factory, lambda uow: uow.flights.add(created))
    return created.id


def upload(
    factory: SqlUnitOfWorkFactory, flight_id: str, by: str, rows: list[ManifestTraveler]
) -> tuple[float, float]:
    """Stage and swap; the staging's CPU and wall time."""
    upload_id = str(uuid.uuid4())
    cpu, wall = time.process_time(), time.perf_counter()
    stage_travelers(factory, flight_id, upload_id, rows, NOW, pause=0, details_by=by)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    carrier = None if by == AGENCY else by
    in_transaction(
        factory,
        lambda uow: uow.flights.swap_manifest(
            flight_id, upload_id, NOW, len(rows), uploader_carrier=carrier
        ),
    )
    in_transaction(
        factory,
        lambda uow: uow.flights.discard_manifest_versions(flight_id=flight_id, staged_before=NOW),
    )
    return cpu, wall


def listing(
    factory: SqlUnitOfWorkFactory, flight_id: str, carrier: str | None
) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    with factory(read_only=True) as uow:
        rows = uow.flights.manifest_status(flight_id, "", carrier, own_only=carrier is not None)
    return time.process_time() - cpu, time.perf_counter() - wall, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travelers", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
        engine = create_database_engine(url)
        migrate(engine)
        factory = SqlUnitOfWorkFactory(engine, EphemeralKeyProvider())
        rows = travelers(args.travelers)
        upload(factory, flight(factory, "EE"), AGENCY, rows)
        zz = flight(factory, "ZZ")
        print(f"{engine.dialect.name}, {args.travelers} known travelers, details unchanged")
        for name, by in (("agency upload (no copy)", AGENCY), ("ZZ upload (copy kept)", "ZZ")):
            cpu, wall = upload(factory, zz, by, rows)
            print(f"  staging, {name:24} {cpu * 1000:7.0f} ms CPU, {wall * 1000:7.0f} ms wall")
        for name, carrier in (("as the agency sees it", None), ("as ZZ's key sees it", "ZZ")):
            cpu, wall, count = listing(factory, zz, carrier)
            print(
                f"  listing, {name:24} {cpu * 1000:7.0f} ms CPU, {wall * 1000:7.0f} ms wall"
                f"  ({count} rows)"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
