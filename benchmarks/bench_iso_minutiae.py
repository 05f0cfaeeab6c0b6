"""CPU of one fingerprint comparison of two ISO/IEC 19794-2 views of 255 minutiae (the most a
record may list), uncapped as before session 9 and as read now (the most reliable
``MAX_VIEW_MINUTIAE`` kept), beside two ordinary FVC2002 prints; and how many minutiae the
image path finds in FVC2002-b prints (what the cap leaves alone).

A comparison is cold (both views prepared, as a new request's are) and warm (prepared
already, as a staged watchlist entry's is). CPU is ``time.process_time`` of this process
(one thread), the minimum of ``--repeats`` runs of ``--pairs`` comparisons each.

    .venv/bin/python benchmarks/bench_iso_minutiae.py [--repeats 3] [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from entryexit.biometrics.fingerprints import (
    FingerPosition,
    FingerprintExtractor,
    FingerprintTemplate,
    decode_fingerprint,
    open_engine,
)
from entryexit.biometrics.fingerprints._engine import MAX_VIEW_MINUTIAE
from entryexit.config import Settings

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fvc2002-b"
PPI = {"DB1_B": 500.0, "DB2_B": 569.0, "DB3_B": 500.0, "DB4_B": 500.0}
FRAME = (800, 800, 197.0, 197.0)  # the probe's record: 800 x 800 at 197 ppi (500 ppi)


def iso_view(seed: int, count: int = 255) -> np.ndarray:
    """``count`` random minutiae as ISO rows (x, y, angle/256 turn, kind, quality 60)."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.integers(0, 800, count),
            rng.integers(0, 800, count),
            rng.integers(0, 256, count),
            rng.integers(1, 3, count),
            np.full(count, 60),
        ],
        axis=1,
    ).astype(np.float64)


def cpu_per_call(
    make: Callable[[], tuple[FingerprintTemplate, FingerprintTemplate]],
    call: Callable[[FingerprintTemplate, FingerprintTemplate], object],
    pairs: int,
    repeats: int,
) -> float:
    best = float("inf")
    for _ in range(repeats):
        made = [make() for _ in range(pairs)]
        start = time.process_time()
        for a, b in made:
            call(a, b)
        best = min(best, (time.process_time() - start) / pairs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    engine = open_engine(Settings().resolved_model_dir, FingerprintExtractor.MINDTCT)
    print(f"load average {os.getloadavg()[0]:.1f}; engine {engine.key}; CPU s per comparison")

    def uncapped(seed: int) -> FingerprintTemplate:
        capped = engine.from_iso_minutiae(iso_view(seed, 8), FRAME, FingerPosition.UNKNOWN)
        # The same conversion without the cap: scale and angles as from_iso_minutiae does.
        m = iso_view(seed)
        rows = np.stack(
            [
                m[:, 0] * 500.0 / 197.0,
                m[:, 1] * 500.0 / 197.0,
                (-m[:, 2] * 2.0 * np.pi / 256.0) % (2.0 * np.pi),
                m[:, 3],
                m[:, 4] / 100.0,
            ],
            axis=1,
        )
        return FingerprintTemplate(
            capped.source, capped.finger, capped.width, capped.height, rows, capped.quality
        )

    def capped(seed: int) -> FingerprintTemplate:
        return engine.from_iso_minutiae(iso_view(seed), FRAME, FingerPosition.UNKNOWN)

    images = [
        decode_fingerprint(path.read_bytes(), ppi)
        for db, ppi in PPI.items()
        for path in sorted((DATA / db).glob("*.tif"))
    ]
    prints = [engine.extract(image, FingerPosition.UNKNOWN) for image in images]
    counts = np.array([len(t.minutiae) for t in prints])

    seeds = iter(range(10**6))

    def fresh_pair(
        build: Callable[[int], FingerprintTemplate],
    ) -> tuple[FingerprintTemplate, FingerprintTemplate]:
        return build(next(seeds)), build(next(seeds))

    def same_pair(
        a: FingerprintTemplate, b: FingerprintTemplate
    ) -> tuple[FingerprintTemplate, FingerprintTemplate]:
        return a, b

    for label, build in (
        ("255 uncapped", uncapped),
        (f"255 capped to {MAX_VIEW_MINUTIAE}", capped),
    ):
        cold = cpu_per_call(partial(fresh_pair, build), engine.scores, args.pairs, args.repeats)
        a, b = fresh_pair(build)
        engine.scores(a, b)
        warm = cpu_per_call(partial(same_pair, a, b), engine.scores, args.pairs, args.repeats)
        print(f"  two ISO views, {label:<22} cold {cold:6.3f}  warm {warm:6.3f}")
    fvc = iter(range(len(prints) - 1))

    def fvc_pair() -> tuple[FingerprintTemplate, FingerprintTemplate]:
        i = next(fvc) % (len(prints) - 1)
        return (
            FingerprintTemplate.from_bytes(prints[i].to_bytes()),
            FingerprintTemplate.from_bytes(prints[i + 1].to_bytes()),
        )

    cold = cpu_per_call(fvc_pair, engine.scores, args.pairs, args.repeats)
    print(f"  two FVC2002-b prints (mindtct)           cold {cold:6.3f}")
    print(
        f"FVC2002-b, {len(prints)} prints (mindtct): minutiae median {np.median(counts):.0f},"
        f" p95 {np.percentile(counts, 95):.0f}, max {counts.max()},"
        f" over {MAX_VIEW_MINUTIAE}: {int((counts > MAX_VIEW_MINUTIAE).sum())}"
    )


if __name__ == "__main__":
    main()
