"""What the agency's list of manifest conflicts costs at scale (review C3): the whole list in
one answer (as ``GET /v1/manifest-conflicts`` was) against one keyset page of it.

    .venv/bin/python benchmarks/bench_conflict_pages.py --conflicts 10000
    .venv/bin/python benchmarks/bench_conflict_pages.py --database-url postgresql+psycopg://...

Carrier ZZ lists ``--conflicts`` travelers; carrier EE re-lists them all with other names,
swapped without the per-upload bound (as before it), so each is an open conflict. Then, in
this process (``time.process_time``: CPU, one thread; the database's own work on PostgreSQL
is in its server, so wall time is printed too), each read as the route answers it (the
conflicts opened and serialised as JSON): the whole list; the first page; the last page,
reached by its cursor; and a walk of every page. Median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench_manifest_conflicts import flight, travelers, upload
from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.api.routes.manifest_conflicts import _public
from entryexit.domain.conflicts import DEFAULT_PAGE, MAX_PAGE, ConflictCursor, ConflictQuery
from entryexit.domain.model import ManifestConflict


def answer(conflicts: list[ManifestConflict]) -> int:
    """The bytes of the JSON answer the route would send."""
    return len(b"[" + b",".join(_public(c).model_dump_json().encode() for c in conflicts) + b"]")


def measure(run: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    cpu_times, wall_times, size = [], [], 0
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        size = run()
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
    return statistics.median(cpu_times), statistics.median(wall_times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conflicts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+pysqlite:///{Path(folder) / 'bench.db'}"
        engine = create_database_engine(url)
        migrate(engine)
        factory = SqlUnitOfWorkFactory(engine, EphemeralKeyProvider())
        zz, ee = flight(factory, "ZZ"), flight(factory, "EE")
        first = travelers(args.conflicts, "FIRST")
        upload(factory, zz, "ZZ", first)
        change, _, _ = upload(factory, ee, "EE", [replace(t, surname="OTHER") for t in first])
        print(f"{engine.dialect.name}, {change.conflicts} open conflicts, median of {args.repeat}")

        def whole() -> int:
            with factory(read_only=True) as uow:
                return answer(uow.flights.manifest_conflicts(open_only=True))

        def page(query: ConflictQuery) -> Callable[[], int]:
            def run() -> int:
                with factory(read_only=True) as uow:
                    return answer(uow.flights.manifest_conflict_page(query).conflicts)

            return run

        with factory(read_only=True) as uow:
            every = uow.flights.manifest_conflicts(open_only=True)
        last = ConflictCursor.of(every[-DEFAULT_PAGE - 1])

        def walk() -> int:
            total, after = 0, None
            while True:
                with factory(read_only=True) as uow:
                    found = uow.flights.manifest_conflict_page(
                        ConflictQuery(after=after, limit=MAX_PAGE)
                    )
                total += answer(found.conflicts)
                if found.next is None:
                    return total
                after = found.next

        for name, run in (
            ("whole list (before)", whole),
            (f"first page ({DEFAULT_PAGE})", page(ConflictQuery())),
            (f"last page ({DEFAULT_PAGE}, cursor)", page(ConflictQuery(after=last))),
            (f"walk, pages of {MAX_PAGE}", walk),
        ):
            cpu, wall, size = measure(run, args.repeat)
            print(
                f"  {name:26} {cpu * 1000:7.0f} ms CPU {wall * 1000:7.0f} ms wall"
                f" {size / 1e6:8.3f} MB"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
