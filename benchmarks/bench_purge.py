"""The retention purge over a store holding a large manifest: how long it holds the write lock.

    .venv/bin/python benchmarks/bench_purge.py --database-url sqlite+pysqlite:////tmp/purge.db
    .venv/bin/python benchmarks/bench_purge.py --database-url postgresql+psycopg://...

Data is generated inside the database on a migrated schema: one flight still to depart with a
manifest of ``--travelers`` travelers (traveler, document, data key, manifest entry each, as an
upload leaves them), and ``--expired`` travelers on a flight that left in 2020 with every kind
of their data past its retention (manifest entries, documents, data keys, reference templates,
captures, encounters). The purge then runs as ``entryexit purge`` runs it (the service), once
with those rows due and once with nothing due, and the script prints each run's wall time,
the longest single write transaction it held (the time a gate capture could have waited), and
how many rows each kind lost. On PostgreSQL the tables are analyzed after generating (as
autovacuum would have done); SQLite is left as a deployment leaves it (no ``ANALYZE``).
"""

# ruff: noqa: S608 - SQL assembled from constants and integers, for generating test data only

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, event, text

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.services.audit import AuditTrail
from entryexit.services.policies import PolicyService
from entryexit.services.privacy import PURGE_BATCH_SIZE, PurgeService


def generate(engine: Engine, travelers: int, expired: int, analyze: bool = True) -> None:
    if engine.dialect.name == "postgresql":
        series = "generate_series(0, {n} - 1) AS g(i)"
        uid = "'{p}' || g.i::text"
    else:
        series = (
            "(WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {n} - 1)"
            " SELECT i FROM c) AS g"
        )
        uid = "'{p}' || g.i"

    def rows(prefix: str, n: int, values: str) -> str:
        return f"SELECT {uid.format(p=prefix)}, {values} FROM {series.format(n=n)}"

    blob = "'\\x00'::bytea" if engine.dialect.name == "postgresql" else "X'00'"
    statements: list[str] = []
    for tag, n, departure, created in (
        ("n", travelers, "2099-01-01 00:00:00", "2026-11-30 00:00:00"),
        ("x", expired, "2020-01-01 00:00:00", "2020-01-01 00:00:00"),
    ):
        t, d, at = uid.format(p="t" + tag), uid.format(p="d" + tag), f"'{created}'"
        statements += [
            "INSERT INTO flights (id, carrier, number, scheduled_departure, origin, destination,"
            f" direction, created_at, gallery_version, manifest_version) VALUES ('f{tag}', 'EE',"
            f" '1', '{departure}', 'AAA', 'BBB', 'exit', {at}, 0, 'u{tag}')",
            "INSERT INTO travelers (id, created_at) " + rows("t" + tag, n, at),
            "INSERT INTO documents (id, traveler_id, issuing_state, number_digest,"
            " citizenship_class) " + rows("d" + tag, n, f"{t}, 'XXA', {t}, 'foreign_national'"),
            "INSERT INTO data_keys (traveler_id, kek_id, wrapped_key, created_at) "
            + rows("t" + tag, n, f"'k', {blob}, {at}"),
            "INSERT INTO manifest_entries (flight_id, upload_id, document_id, traveler_id,"
            f" added_at) SELECT 'f{tag}', 'u{tag}', {d}, {t}, {at}"
            f" FROM {series.format(n=n)}",
        ]
    t, d, old = uid.format(p="tx"), uid.format(p="dx"), "'2020-01-01 00:00:00'"
    statements += [
        "INSERT INTO reference_templates (id, document_id, traveler_id, source, model, vector,"
        " created_at, expires_at) "
        + rows("r", expired, f"{d}, {t}, 'document', 'm', {blob}, {old}, {old}"),
        "INSERT INTO captures (id, flight_id, gate, device, received_at, decision, traveler_id,"
        " expires_at) " + rows("c", expired, f"'fx', 'G1', 'd', {old}, 'match', {t}, {old}"),
        "INSERT INTO encounters (id, flight_id, traveler_id, direction, method, gate, device,"
        " occurred_at, policy_version, expires_at) "
        + rows(
            "e", expired, f"'fx', {t}, 'exit', 'biometric', 'G1', 'd', {old}, 'default-2', {old}"
        ),
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
        if analyze and engine.dialect.name == "postgresql":
            # Autovacuum would have: without statistics the planner takes the anti-joins for
            # nested loops over unindexed guesses (45 s instead of 2 s at 100,000 travelers).
            connection.execute(text("ANALYZE"))


class WriteLockClock:
    """The wall time of every transaction that wrote (the span a writer elsewhere waits)."""

    def __init__(self, engine: Engine) -> None:
        self.spans: list[float] = []
        self._started: dict[int, float] = {}
        self._wrote: set[int] = set()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, connection: object) -> None:
        self._started[id(connection)] = time.perf_counter()

    def _execute(self, connection: object, _c: object, statement: str, *_a: object) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            self._wrote.add(id(connection))

    def _end(self, connection: object) -> None:
        started = self._started.pop(id(connection), None)
        if started is not None and id(connection) in self._wrote:
            self.spans.append(time.perf_counter() - started)
        self._wrote.discard(id(connection))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--travelers", type=int, default=10_000)
    parser.add_argument("--expired", type=int, default=500)
    parser.add_argument(
        "--batch-size", type=int, default=PURGE_BATCH_SIZE, help="rows of each kind a batch"
    )
    parser.add_argument("--spans", action="store_true", help="print every write transaction")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL: purge before any statistics (as right after a bulk import)",
    )
    args = parser.parse_args()
    engine = create_database_engine(args.database_url)
    migrate(engine)
    started = time.perf_counter()
    generate(engine, args.travelers, args.expired, analyze=not args.no_analyze)
    print(
        f"generated {args.travelers} + {args.expired} travelers in "
        f"{time.perf_counter() - started:.1f} s ({engine.dialect.name})"
    )
    keys = EphemeralKeyProvider()
    uow = SqlUnitOfWorkFactory(engine, keys)
    now = datetime.now(UTC)
    audit = AuditTrail(uow, lambda: now, keys)
    policies = PolicyService(uow, lambda: now, audit)
    policies.ensure_default()
    purge = PurgeService(uow, lambda: now, audit, None, policies, args.batch_size)
    locks = WriteLockClock(engine)
    for label in ("with rows due", "nothing due"):
        locks.spans.clear()
        started, cpu = time.perf_counter(), time.process_time()
        counts = purge.run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        spans = sorted(locks.spans)
        print(
            f"purge {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {len(spans)} write"
            f" transactions, longest {max(spans, default=0.0) * 1000:.0f} ms, median"
            f" {(spans[len(spans) // 2] if spans else 0.0) * 1000:.0f} ms; deleted"
            f" {sum(counts.values())} ({', '.join(f'{k}={v}' for k, v in counts.items() if v)})"
        )
        if args.spans:
            print("  write transactions (ms):", " ".join(f"{s * 1000:.0f}" for s in locks.spans))


if __name__ == "__main__":
    main()
