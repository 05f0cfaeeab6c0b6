"""The overstay report at national scale: 10 million encounters, 5 million admissions.

    .venv/bin/python benchmarks/bench_overstays.py --database-url sqlite+pysqlite:////tmp/o.db
    .venv/bin/python benchmarks/bench_overstays.py --database-url postgresql+psycopg://...

Data is generated inside the database (SQL ``generate_series`` on PostgreSQL, a recursive CTE
on SQLite) on a migrated schema: 20,000 flights over two years, one traveler per admission,
an entry encounter per admission, an exit encounter for 90% of them (5% of those after their
admitted-until date), and citizen encounters to make up 10 million; 10% of stays are open.
Then the report runs exactly as ``GET /v1/reports/overstays`` builds it (the service method),
and the script prints the time of each part and the query plans of the two overstay queries.
Generated travelers have no documents, so no names are decrypted: the timing is the queries'
and the report's, not the envelope decryption of personal data for each row (measured
separately: about 40 microseconds a row).
"""

# ruff: noqa: S608 - SQL assembled from constants and integers, for generating test data only

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory

DAY0 = date(2025, 1, 1)


def sql_for(dialect: str, admissions: int, encounters: int) -> list[str]:
    if dialect == "postgresql":
        series = "generate_series(0, {n} - 1) AS g(i)"
        uid = "md5('{p}' || g.i::text)"
        day = "(DATE '2025-01-01' + ({expr})::int)"
        ts = "(TIMESTAMP '2025-01-01' + ({expr}) * INTERVAL '1 day')"
    else:
        series = (
            "(WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {n} - 1)"
            " SELECT i FROM c) AS g"
        )
        uid = "'{p}' || g.i"
        day = "date('2025-01-01', '+' || ({expr}) || ' days')"
        ts = "datetime('2025-01-01', '+' || ({expr}) || ' days')"

    def s(n: int) -> str:
        return series.format(n=n)

    def u(prefix: str) -> str:
        return uid.format(p=prefix)

    exits = admissions * 9 // 10
    citizens = max(0, encounters - admissions - exits)
    return [
        # 20,000 flights over two years: even ids entry, odd ids exit.
        "INSERT INTO flights (id, carrier, number, scheduled_departure, origin, destination,"
        " direction, created_at, gallery_version) SELECT "
        + u("f")
        + ", 'EE', CAST(g.i AS TEXT), "
        + ts.format(expr="g.i % 730")
        + ", 'AAA', 'BBB', CASE WHEN g.i % 2 = 0 THEN 'entry' ELSE 'exit' END, "
        + ts.format(expr="0")
        + ", 0 FROM "
        + s(20_000),
        "INSERT INTO travelers (id, created_at) SELECT "
        + u("t")
        + ", "
        + ts.format(expr="0")
        + " FROM "
        + s(admissions + 1000),
        # Entries: one per admission, on an entry flight.
        "INSERT INTO encounters (id, flight_id, traveler_id, direction, method, gate, device,"
        " occurred_at, policy_version) SELECT "
        + u("en")
        + ", "
        + u("f").replace("g.i", "((g.i % 10000) * 2)")
        + ", "
        + u("t")
        + ", 'entry', 'biometric', 'G', 'd', "
        + ts.format(expr="g.i % 600")
        + ", 'default-1' FROM "
        + s(admissions),
        # Exits for 90% of stays, on an exit flight.
        "INSERT INTO encounters (id, flight_id, traveler_id, direction, method, gate, device,"
        " occurred_at, policy_version) SELECT "
        + u("ex")
        + ", "
        + u("f").replace("g.i", "((g.i % 10000) * 2 + 1)")
        + ", "
        + u("t")
        + ", 'exit', 'biometric', 'G', 'd', "
        + ts.format(expr="(g.i % 600) + 30")
        + ", 'default-1' FROM "
        + s(exits),
        # Citizens' encounters (no admissions) to make up the total.
        "INSERT INTO encounters (id, flight_id, traveler_id, direction, method, gate, device,"
        " occurred_at, policy_version) SELECT "
        + u("ci")
        + ", "
        + u("f").replace("g.i", "(g.i % 20000)")
        + ", "
        + u("t").replace("g.i", "(g.i % 977 + " + str(admissions) + ")")
        + ", 'exit', 'biometric', 'G', 'd', "
        + ts.format(expr="g.i % 700")
        + ", 'default-1' FROM "
        + s(citizens),
        # Admissions: 90-day stays; 90% closed (1 in 20 of those late), 10% open.
        "INSERT INTO admissions (id, traveler_id, admission_class, admitted_on, admitted_until,"
        " entry_encounter_id, entry_flight_id, exit_encounter_id, exit_flight_id,"
        " exit_traveler_id, exited_on, link, created_at) SELECT "
        + u("ad")
        + ", "
        + u("t")
        + ", 'WT', "
        + day.format(expr="g.i % 600")
        + ", "
        + day.format(expr="(g.i % 600) + 90")
        + ", "
        + u("en")
        + ", NULL, CASE WHEN g.i < "
        + str(exits)
        + " THEN "
        + u("ex")
        + " END, NULL, NULL, CASE WHEN g.i < "
        + str(exits)
        + " THEN "
        + day.format(expr="(g.i % 600) + CASE WHEN g.i % 20 = 0 THEN 120 ELSE 30 END")
        + " END, CASE WHEN g.i < "
        + str(exits)
        + " THEN 'document' END, "
        + ts.format(expr="0")
        + " FROM "
        + s(admissions),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--admissions", type=int, default=5_000_000)
    parser.add_argument("--encounters", type=int, default=10_000_000)
    parser.add_argument("--as-of", default="2026-06-30")
    args = parser.parse_args()
    engine = create_database_engine(args.database_url)
    migrate(engine)
    dialect = engine.dialect.name
    with engine.begin() as connection:
        existing = connection.execute(text("SELECT count(*) FROM admissions")).scalar_one()
    if existing == 0:
        start = time.perf_counter()
        for statement in sql_for(dialect, args.admissions, args.encounters):
            step = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(text(statement))
            print(f"  generated: {statement[12:40]}... {time.perf_counter() - step:.1f} s")
        with engine.begin() as connection:
            if dialect == "postgresql":
                connection.execute(text("ANALYZE"))
            else:
                connection.execute(text("ANALYZE"))
        print(f"generated in {time.perf_counter() - start:.0f} s")
    with engine.begin() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("encounters", "admissions", "flights")
        }
    print(f"{dialect}: {counts}")

    from entryexit.bootstrap import build_services
    from entryexit.config import Settings
    from entryexit.domain.access import Principal, Role

    keys = EphemeralKeyProvider()
    store = SqlUnitOfWorkFactory(engine, keys).reports
    as_of = date.fromisoformat(args.as_of)
    services = build_services(
        Settings(dev_mode=True, database_url=args.database_url, engine_workers=1),
        reports=store,
        keys=keys,
        clock=lambda: datetime.combine(as_of, datetime.min.time(), UTC),
    )
    officer = Principal("bench", "bench", Role.OFFICER)
    start = time.perf_counter()
    report = services.crossings.overstays(officer, as_of)
    total = time.perf_counter() - start
    print(
        f"report as of {as_of}: {len(report['in_country']):,} in-country,"
        f" {len(report['out_of_country']):,} out-of-country overstays,"
        f" {len(report['exit_confirmation']['by_flight']):,} exit flights;"
        f" {total:.1f} s in all"
    )
    for name, call in (
        ("in-country query", lambda: store.in_country_overstays(as_of)),
        (
            "out-of-country query",
            lambda: store.out_of_country_overstays(as_of - timedelta(days=365), as_of),
        ),
        (
            "exit confirmation query",
            lambda: store.exit_confirmations(
                datetime.combine(as_of - timedelta(days=365), datetime.min.time(), UTC),
                datetime.combine(as_of, datetime.min.time(), UTC),
            ),
        ),
    ):
        start = time.perf_counter()
        rows = call()
        print(f"  {name}: {len(rows):,} rows in {time.perf_counter() - start:.1f} s")
    explain = "EXPLAIN" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
    with engine.begin() as connection:
        for label, sql in (
            (
                "in-country",
                "SELECT id FROM admissions WHERE exited_on IS NULL AND admitted_until < :d"
                " AND admitted_on IS NOT NULL",
            ),
            (
                "out-of-country",
                "SELECT id FROM admissions WHERE exited_on >= :s AND exited_on <= :d"
                " AND admitted_on IS NOT NULL AND exited_on > admitted_until",
            ),
        ):
            plan = connection.execute(
                text(f"{explain} {sql}"), {"d": as_of, "s": as_of - timedelta(days=365)}
            ).all()
            print(f"  plan ({label}): " + " | ".join(str(row[-1]) for row in plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
