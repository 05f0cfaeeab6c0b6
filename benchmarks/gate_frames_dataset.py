"""lfw-dev as a gate camera sees it: every photo placed in a 640x480 frame (same layout).

LFW photos are 250x250 with large faces, so they never exercise what depends on the frame's
size (the capture recipe's coarse detection); these frames do. Each frame is seeded by its
file name, so the folder is the same on every run:

    .venv/bin/python benchmarks/gate_frames_dataset.py --data ../shared/data/lfw-dev --out DIR
    .venv/bin/entryexit evaluate gallery --data DIR --same-person benchmarks/lfw-dev-same-person.tsv
"""

from __future__ import annotations

import argparse
import random
import sys
import zlib
from pathlib import Path

from bench_pipeline import DEFAULT_DATA, gate_frame
from entryexit.evaluation.datasets import LabelledImages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images = LabelledImages.scan(args.data)
    for person, path in images.all_images():
        target = args.out / "images" / person / path.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(zlib.crc32(path.name.encode()))
        target.write_bytes(gate_frame(path, rng))
    print(f"{images.image_count} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
