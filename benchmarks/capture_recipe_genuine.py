"""A quick paired accuracy check of the capture recipe's options (not the accuracy gate).

For persons of lfw-dev with two photos or more: the reference is the first photo (250x250,
the capture recipe with defaults), the probe the second photo placed in a 640x480 gate frame
(``bench_pipeline.gate_frame``), analysed by each variant of ``bench_capture_recipe``. Prints,
per variant, the mean mated score, its mean change from the baseline's on the same probe, and
the share of mated scores below the 1:N threshold for one-reference entries at FPIR 1e-3
(0.484): a paired proxy for FNIR. The gate itself is ``entryexit evaluate gallery``
(docs/capture-speed.md).

    .venv/bin/python benchmarks/capture_recipe_genuine.py --persons 300
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench_capture_recipe import VARIANTS
from bench_pipeline import DEFAULT_DATA, gate_frame
from entryexit.biometrics import EngineSettings, FaceEngine
from entryexit.config import Settings
from entryexit.errors import NoFaceError
from entryexit.evaluation.datasets import LabelledImages

THRESHOLD = 0.484


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--persons", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = random.Random(args.seed)
    persons = [paths for paths in LabelledImages.scan(args.data).persons.values() if len(paths) > 1]
    chosen = rng.sample(persons, min(args.persons, len(persons)))
    model_dir = Settings().resolved_model_dir
    engines = {
        name: FaceEngine.from_model_dir(model_dir, replace(settings, workers=1))
        for index, (name, settings) in enumerate(VARIANTS.items())
        if index == 0 or not args.only or any(word in name for word in args.only)
    }
    baseline = FaceEngine.from_model_dir(model_dir, EngineSettings(workers=1))
    scores: dict[str, list[float]] = {name: [] for name in engines}
    for paths in chosen:
        frame = gate_frame(paths[1], rng)
        try:
            reference = baseline.analyse(paths[0].read_bytes()).template.vector
            probes = {
                name: engine.analyse(frame).template.vector for name, engine in engines.items()
            }
        except NoFaceError:
            continue
        for name, probe in probes.items():
            scores[name].append(float(np.dot(reference, probe)))
    base = np.array(next(iter(scores.values())))
    print(f"{len(base)} mated pairs (reference: a 250x250 photo; probe: another in a gate frame)")
    for name, values in scores.items():
        mated = np.array(values)
        print(
            f"{name}\n  mean mated score {mated.mean():.4f} (change {np.mean(mated - base):+.4f},"
            f" sd of the change {np.std(mated - base):.4f}); below {THRESHOLD}:"
            f" {np.mean(mated < THRESHOLD) * 100:.2f}%"
            f" (baseline {np.mean(base < THRESHOLD) * 100:.2f}%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
