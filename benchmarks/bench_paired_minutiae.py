"""The case page's paired minutiae: what drawing them costs, and what the comparison pays.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_paired_minutiae.py \
        --data ../shared/data/fvc2002-b --db DB1_B --subjects 10 --rounds 5

For the first ``--subjects`` fingers of the database: impressions 1 against 3 of the same
finger (genuine) and of the next finger, the last against the first (impostor), prepared
templates. Reports the median
time of one ``compare`` (the score, the hot path) and of one ``paired_minutiae`` (the pairs,
computed only to draw them), and per pair the number of pairs and their mean strength (MCC's
relaxed similarity). To see that the comparison did not get slower, run it against a tree
without the pairing (``PYTHONPATH=/path/to/other/src``): ``compare`` is timed the same way.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before NumPy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from entryexit.biometrics.fingerprints import (
    FingerPosition,
    FingerprintTemplate,
    decode_fingerprint,
    open_engine,
)
from entryexit.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fvc2002-b"))
    parser.add_argument("--db", default="DB1_B")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = open_engine(Settings().resolved_model_dir)
    subjects = list(range(101, 101 + args.subjects))  # FVC2002 set B: fingers 101-110
    templates: dict[str, FingerprintTemplate] = {}
    for subject in subjects:
        for impression in (1, 3):
            name = f"{subject}_{impression}"
            image = decode_fingerprint((args.data / args.db / f"{name}.tif").read_bytes(), 500)
            templates[name] = engine.extract(image, FingerPosition.RIGHT_INDEX)
            engine.prepare(templates[name])
    genuine = [(f"{s}_1", f"{s}_3") for s in subjects]
    following = subjects[1:] + subjects[:1]
    impostor = [(f"{s}_1", f"{t}_3") for s, t in zip(subjects, following, strict=True)]
    pairs = genuine + impostor

    def median_ms(work: Callable[[FingerprintTemplate, FingerprintTemplate], object]) -> float:
        times = []
        for _ in range(args.rounds):
            for a, b in pairs:
                start = time.perf_counter()
                work(templates[a], templates[b])
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    print(f"compare: median {median_ms(lambda a, b: engine.compare(a, [b])):.2f} ms")
    if not hasattr(engine, "paired_minutiae"):
        return
    print(f"paired_minutiae: median {median_ms(engine.paired_minutiae):.2f} ms")
    for label, group in (("genuine", genuine), ("impostor", impostor)):
        found = [engine.paired_minutiae(templates[a], templates[b]) for a, b in group]
        counts = [len(f) for f in found]
        strengths = [statistics.fmean(s for _, _, s in f) if f else 0.0 for f in found]
        print(
            f"{label}: pairs {min(counts)}-{max(counts)}, "
            f"mean strength {min(strengths):.2f}-{max(strengths):.2f}"
        )


if __name__ == "__main__":
    main()
