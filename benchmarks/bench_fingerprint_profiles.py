"""Extraction time of the fingerprint profiles side by side, on one core, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fingerprint_profiles.py \\
        --data ../shared/data/fvc2002-b --per-db 10 --rounds 2

Each print is decoded once (500 ppi), then every profile extracts its minutiae from it in
turn, so a shared machine's load falls on all profiles alike. Reported per profile: the median
CPU time (``process_time``, one thread) per extraction over the prints, the smallest median
over rounds, the wall median likewise, and the mean number of minutiae found.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from entryexit.biometrics.fingerprints import (
    FingerprintExtractor,
    decode_fingerprint,
    open_engine,
)
from entryexit.config import Settings

PPI = {"DB1_B": 500.0, "DB2_B": 569.0, "DB3_B": 500.0, "DB4_B": 500.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fvc2002-b"))
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--per-db", type=int, default=10, help="prints per database")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--profiles",
        nargs="+",
        choices=[e.value for e in FingerprintExtractor],
        default=[e.value for e in FingerprintExtractor],
    )
    args = parser.parse_args()
    model_dir = args.model_dir or Settings().resolved_model_dir
    engines = {name: open_engine(model_dir, FingerprintExtractor(name)) for name in args.profiles}
    images = [
        decode_fingerprint(path.read_bytes(), ppi)
        for db, ppi in PPI.items()
        for path in sorted((args.data / db).glob("*.tif"))[: args.per_db]
    ]
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    wall: dict[str, list[float]] = {name: [] for name in engines}
    found: dict[str, list[int]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        rounds_cpu: dict[str, list[float]] = {name: [] for name in engines}
        rounds_wall: dict[str, list[float]] = {name: [] for name in engines}
        for image in images:
            for name, engine in engines.items():
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                rows = engine.minutiae(image)
                rounds_cpu[name].append((time.process_time() - start_cpu) * 1000.0)
                rounds_wall[name].append((time.perf_counter() - start_wall) * 1000.0)
                found[name].append(int(rows.shape[0]))
        for name in engines:
            cpu[name].append(statistics.median(rounds_cpu[name]))
            wall[name].append(statistics.median(rounds_wall[name]))
    print(f"{len(images)} prints, {args.rounds} rounds, one thread; min of the rounds' medians")
    print("profile (key) | extraction CPU ms | wall ms | minutiae (mean)")
    for name, engine in engines.items():
        print(
            f"{name} ({engine.key}) | {min(cpu[name]):.1f} | {min(wall[name]):.1f}"
            f" | {np.mean(found[name]):.1f}"
        )


if __name__ == "__main__":
    main()
