"""Distribution of the quality measures over a labelled photo set (default: lfw-dev).

Used to set the default quality thresholds so that ordinary photos are not sent back for
recapture. Usage: python benchmarks/quality_distribution.py [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from entryexit.biometrics import FaceAnalysis
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: data set not found at {args.data}")
        return 0
    engine = build_face_engine(Settings())
    paths = [path for _, path in LabelledImages.scan(args.data).all_images()]
    analyses = []
    for start in range(0, len(paths), 32):
        batch = [p.read_bytes() for p in paths[start : start + 32]]
        analyses += [a for a in engine.analyse_many(batch) if isinstance(a, FaceAnalysis)]
    measures = {
        "inter_eye_pixels": [a.quality.inter_eye_pixels for a in analyses],
        "abs_yaw_degrees": [abs(a.quality.yaw_degrees) for a in analyses],
        "abs_roll_degrees": [abs(a.quality.roll_degrees) for a in analyses],
        "sharpness": [a.quality.sharpness for a in analyses],
        "brightness": [a.quality.brightness for a in analyses],
        "detector_score": [a.quality.detector_score for a in analyses],
    }
    print(f"{len(analyses)} faces of {len(paths)} images")
    percentiles = [0.5, 1, 5, 50, 95, 99, 99.5]
    print(f"{'measure':18} " + " ".join(f"{'p' + format(p, 'g'):>8}" for p in percentiles))
    for name, values in measures.items():
        q = np.percentile(values, percentiles)
        print(f"{name:18} " + " ".join(f"{v:8.2f}" for v in q))
    reasons = Counter(r.value for a in analyses for r in a.quality.reasons)
    refused = sum(1 for a in analyses if not a.quality.acceptable)
    share = refused / len(analyses)
    print(f"refused at the default thresholds: {refused} ({share:.2%}) {dict(reasons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
