"""CPU a capture of the capture recipe's variants, side by side on the same gate frames.

On a shared, loaded machine wall-clock times move with the load; the CPU a capture takes
(``time.thread_time`` around ``FaceEngine.analyse``, one OpenCV thread, so the whole capture
runs on the calling thread) hardly does. Variants are run interleaved, round after round, so
each sees the same machine. Also prints how often the coarse copy's detection was kept and
how often the mirror detection ran, and how far each variant's templates lie from the
baseline's (cosine similarity to the same frame's baseline template).

    .venv/bin/python benchmarks/bench_capture_recipe.py --frames 100 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench_pipeline import DEFAULT_DATA, gate_frame
from entryexit.biometrics import EngineSettings, FaceEngine
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages

VARIANTS: dict[str, EngineSettings] = {
    "baseline (full-resolution detection, mirror detection always)": EngineSettings(),
    "coarse detection 320": EngineSettings(coarse_detection_side=320),
    "mirror detection when yaw >= 10 or score < 0.8": EngineSettings(
        mirror_detection_min_yaw=10.0, mirror_detection_below_score=0.8
    ),
    "mirror crop flipped, never detected": EngineSettings(mirror_detection_min_yaw=1000.0),
    "both (coarse 320, mirror when yaw >= 10 or score < 0.8)": EngineSettings(
        coarse_detection_side=320, mirror_detection_min_yaw=10.0, mirror_detection_below_score=0.8
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", nargs="*", default=[], help="Variants whose name contains one of these words."
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = random.Random(args.seed)
    paths = [path for _, path in LabelledImages.scan(args.data).all_images()]
    frames = [gate_frame(path, rng) for path in rng.sample(paths, args.frames)]
    model_dir = Settings().resolved_model_dir
    engines = {
        name: FaceEngine.from_model_dir(model_dir, replace(settings, workers=1))
        for index, (name, settings) in enumerate(VARIANTS.items())
        if index == 0 or not args.only or any(word in name for word in args.only)
    }
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    templates: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    for engine in engines.values():
        for frame in frames[:3]:
            engine.analyse(frame)
    for round_number in range(args.rounds):
        for name, engine in engines.items():
            for frame in frames:
                began = time.thread_time()
                analysis = engine.analyse(frame)
                cpu[name].append((time.thread_time() - began) * 1000.0)
                if round_number == 0:
                    templates[name].append(analysis.template.vector)
    baseline_name = next(iter(engines))
    baseline = np.stack(templates[baseline_name])
    print(f"{len(frames)} gate frames (640x480), {args.rounds} rounds, one OpenCV thread")
    for name in engines:
        samples = np.array(cpu[name])
        similarity = (np.stack(templates[name]) * baseline).sum(axis=1)
        print(
            f"{name}\n  CPU a capture: median {np.median(samples):6.2f} ms,"
            f" mean {samples.mean():6.2f} ms; cosine to baseline: min {similarity.min():.4f},"
            f" median {np.median(similarity):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
