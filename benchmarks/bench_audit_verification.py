"""What an auditor's check of the audit log costs: the full walk (``entryexit audit verify``)
against the interactive check from the last signed checkpoint (``GET /v1/audit/verification``,
the console's Oversight page), on a SQLite log of ``--events`` events with ``--since`` written
after the last checkpoint (probe F6).

    .venv/bin/python benchmarks/bench_audit_verification.py [--events 20000] [--since 200]

CPU time of this process (one thread), and wall time; the machine's load inflates the latter.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.bootstrap import build_records
from entryexit.config import Settings
from entryexit.services.unit_of_work import UnitOfWork, in_transaction

BATCH = 1000


def append(records: object, count: int) -> None:
    audit = records.audit  # type: ignore[attr-defined]
    uow = records.uow  # type: ignore[attr-defined]
    while count > 0:
        batch = min(BATCH, count)

        def write(unit: UnitOfWork, n: int = batch) -> None:
            for i in range(n):
                audit.record(
                    unit, "GET /v1/flights/{flight_id}", "ok", None, "flight", None, {"i": i}
                )

        in_transaction(uow, write)
        count -= batch


def timed(label: str, check: object, repeat: int = 3) -> None:
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = check()  # type: ignore[operator]
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    assert result.ok, result
    print(
        f"{label}: {result.chain.events} events walked, {best_cpu * 1e3:.1f} ms CPU,"
        f" {best_wall * 1e3:.1f} ms wall (best of {repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--since", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = Settings(
            data_dir=root / "data",
            key_dir=root / "keys",
            audit_checkpoint_file=root / "checkpoints.jsonl",
        )
        FileKeyProvider(settings.resolved_key_dir).initialise()
        records = build_records(settings)
        append(records, args.events - args.since)
        assert records.checkpoints.write() is not None
        append(records, args.since)
        print(f"load average {os.getloadavg()[0]:.1f}; log of {args.events} events")
        timed("full walk (audit verify)", lambda: records.checkpoints.verify())
        timed("from the last checkpoint", records.checkpoints.verify_recent)
        records.uow.engine.dispose()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
