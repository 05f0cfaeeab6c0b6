"""Does the engine's micro-batcher (ENTRYEXIT_EMBED_BATCH_WAIT_MS) make captures cheaper?

Callers on their own threads send 640x480 gate frames (``bench_pipeline.gate_frame``) through
``FaceEngine.analyse`` with the service's engine settings, micro-batching off and then on at
each given wait, interleaved over rounds so every variant sees the same machine. Reports the
process CPU a capture (all threads: ``time.process_time``), captures/s (wall), and the
batcher's own counters: the share of captures that shared a pass and the openers' mean wait.

    .venv/bin/python benchmarks/bench_embed_batcher.py --frames 120 --rounds 3 \
        --callers 1 2 4 --waits 0 4 8
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench_pipeline import gate_frame
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import engine_settings
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages


def run(engine: FaceEngine, frames: list[bytes], callers: int) -> tuple[float, float]:
    """CPU ms a capture and captures/s for ``callers`` threads sharing the frames."""
    cursor = iter(range(len(frames)))
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            engine.analyse(frames[index])

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1000.0 / len(frames), len(frames) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lfw-dev"))
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--waits", type=float, nargs="+", default=[0.0, 4.0])
    args = parser.parse_args()
    settings = Settings()
    cv2.setNumThreads(settings.opencv_threads)
    rng = random.Random(0)
    dataset = LabelledImages.scan(args.data)
    persons = rng.sample(sorted(dataset.persons), args.frames)
    frames = [gate_frame(dataset.persons[p][0], rng) for p in persons]
    base = engine_settings(settings)
    engines = {
        wait: FaceEngine.from_model_dir(
            settings.resolved_model_dir, replace(base, embed_batch_wait_ms=wait)
        )
        for wait in args.waits
    }
    for engine in engines.values():
        engine.analyse(frames[0])
    results: dict[tuple[int, float], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for callers in args.callers:
            for wait, engine in engines.items():
                results.setdefault((callers, wait), []).append(run(engine, frames, callers))
    print(
        f"{os.cpu_count()} cores, OpenCV threads {cv2.getNumThreads()}, engine workers"
        f" {base.workers}, load average {os.getloadavg()[0]:.1f}; {args.frames} frames,"
        f" {args.rounds} rounds (min / median)"
    )
    for (callers, wait), samples in results.items():
        cpus, rates = zip(*samples, strict=True)
        line = (
            f"{callers} callers, wait {wait:4.1f} ms: CPU {min(cpus):5.1f} /"
            f" {np.median(cpus):5.1f} ms a capture, {max(rates):5.1f} /"
            f" {np.median(rates):5.1f} captures/s"
        )
        print(line)
    for wait, engine in engines.items():
        stats = engine.batch_stats
        if stats is not None and stats.passes:
            print(
                f"wait {wait:4.1f} ms, all runs: {stats.captures} captures in {stats.passes}"
                f" passes, {stats.shared_passes} shared (largest {stats.largest_batch}),"
                f" openers' wait {stats.wait_seconds * 1000 / stats.passes:.2f} ms a pass"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
