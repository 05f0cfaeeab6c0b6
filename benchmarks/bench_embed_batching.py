"""Is micro-batching concurrent captures worth it here? SFace alone, OpenCV threads = cores.

Compares, per face: (a) two callers at once, each embedding its capture's two crops (face
and mirror) in its own forward pass, as the engine's two workers do today (OpenCV runs one
parallel loop at a time, so the second pass runs on its own thread); (b) one caller
embedding both captures' four crops in one forward pass (what a micro-batcher would do);
(c) and (d) batches of 8 and 16 crops. Reports wall ms a face (throughput) and process CPU
ms a face, interleaved over rounds.

    .venv/bin/python benchmarks/bench_embed_batching.py --faces 400 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from entryexit.biometrics.embed import SFACE_MANIFEST
from entryexit.biometrics.models import SFACE_2021DEC, verified_model_path
from entryexit.biometrics.recognizer import OnnxEmbedder
from entryexit.config import Settings


def measure(run: Callable[[], None], faces: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return (
        (time.perf_counter() - wall) * 1000.0 / faces,
        (time.process_time() - cpu) * 1000.0 / faces,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(os.cpu_count() or 1)
    path = verified_model_path(Settings().resolved_model_dir, SFACE_2021DEC)
    embedders = [OnnxEmbedder(path, SFACE_MANIFEST) for _ in range(2)]
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)

    def two_callers() -> None:
        def caller(index: int) -> None:
            for _ in range(args.faces // 4):
                embedders[index].embed([crop, crop])

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def batched(size: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.faces // size):
                embedders[0].embed([crop] * size)

        return run

    cases = {
        "two callers, 2 crops each, concurrent passes": two_callers,
        "one caller, 2 crops (a lone capture)": batched(2),
        "one caller, 4 crops (two captures batched)": batched(4),
        "one caller, 8 crops (four captures batched)": batched(8),
        "one caller, 16 crops": batched(16),
    }
    embedders[0].embed([crop] * 4)
    embedders[1].embed([crop] * 4)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            results[name].append(measure(run, args.faces))
    print(f"OpenCV threads {cv2.getNumThreads()}, {args.faces} faces a case, {args.rounds} rounds")
    for name, samples in results.items():
        walls, cpus = zip(*samples, strict=True)
        print(
            f"{name:48} wall {min(walls):6.2f} ms/face (median {np.median(walls):6.2f}),"
            f" CPU {min(cpus):6.2f} ms/face (median {np.median(cpus):6.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
