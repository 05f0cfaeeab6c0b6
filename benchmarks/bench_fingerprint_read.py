"""CPU a print costs the service to read: assess then extract (mindtct run twice, as before
probe M5's fix) against one ``read`` (mindtct once), on FVC2002 images.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_fingerprint_read.py \
        --data ../shared/data/fvc2002-b --db DB1_B DB2_B --subjects 10 --rounds 3

For each database, impressions 1-8 of the first ``--subjects`` fingers, decoded once (the
decode is the same either way and not counted). Reports CPU seconds (``time.process_time``,
one thread) a print, the median over ``--rounds`` passes of each way, alternated, and checks
that both give byte-identical templates. The machine's load average is printed with them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before NumPy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from pathlib import Path

from entryexit.biometrics.fingerprints import (
    FingerPosition,
    FingerprintImage,
    MinutiaeFingerprintEngine,
    decode_fingerprint,
    open_engine,
)
from entryexit.config import Settings


def twice(engine: MinutiaeFingerprintEngine, image: FingerprintImage) -> bytes | None:
    quality = engine.assess(image)
    if not quality.acceptable:
        return None
    return engine.extract(image, FingerPosition.RIGHT_INDEX, quality.score).to_bytes()


def once(engine: MinutiaeFingerprintEngine, image: FingerprintImage) -> bytes | None:
    _, template = engine.read(image, FingerPosition.RIGHT_INDEX)
    return None if template is None else template.to_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fvc2002-b"))
    parser.add_argument("--db", nargs="+", default=["DB1_B", "DB2_B"])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine = open_engine(Settings().resolved_model_dir)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for db in args.db:
        images = [
            decode_fingerprint((args.data / db / f"{s}_{i}.tif").read_bytes(), 500)
            for s in range(101, 101 + args.subjects)
            for i in range(1, 9)
        ]
        costs: dict[str, list[float]] = {"assess+extract": [], "read": []}
        results: dict[str, list[bytes | None]] = {}
        for _ in range(args.rounds):
            for label, way in (("assess+extract", twice), ("read", once)):
                start = time.process_time()
                results[label] = [way(engine, image) for image in images]
                costs[label].append((time.process_time() - start) / len(images))
        same = results["assess+extract"] == results["read"]
        before = statistics.median(costs["assess+extract"])
        after = statistics.median(costs["read"])
        print(
            f"{db}: {len(images)} prints, CPU a print: assess+extract {before * 1000:.1f} ms,"
            f" read {after * 1000:.1f} ms ({after / before:.2f}x); templates identical: {same}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
