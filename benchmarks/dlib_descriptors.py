"""dlib ResNet descriptors of every lfw-dev image, cached (for the fairness and fusion
measurements; dlib is not a product dependency).

    .venv/bin/pip install dlib-bin face-recognition-models
    .venv/bin/python benchmarks/dlib_descriptors.py --data ../shared/data/lfw-dev \\
        --cache /tmp/mf-cache

dlib sees the YuNet subject's box, refined by dlib's own HOG detector when that finds the
face (its 5-point shape predictor is trained on HOG boxes), as ``dlib_fusion.py`` does. The
cache file is keyed by the image list; a row of zeros is an image without a face.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.detect import choose_subject
from entryexit.biometrics.engine import FaceEngine
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages


def cache_file(cache: Path, paths: list[Path]) -> Path:
    key = hashlib.sha256("\n".join(str(p.resolve()) for p in paths).encode()).hexdigest()[:24]
    return cache / f"dlib-{key}.npz"


def dlib_descriptors(
    engine: FaceEngine, paths: list[Path], cache: Path, threads: int = 2
) -> NDArray[np.float32]:
    """Unit 128-D descriptors, one row per path (zeros where no face was found), read from
    ``cache`` when there, described and stored otherwise."""
    stored = cache_file(cache, paths)
    if stored.exists():
        return np.asarray(np.load(stored)["vectors"], dtype=np.float32)
    vectors = describe_all(engine, paths, threads)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(stored, vectors=vectors)
    return vectors


def describe_all(
    engine: FaceEngine, paths: list[Path], threads: int = 2, timings: list[float] | None = None
) -> NDArray[np.float32]:
    """Describe every image (no cache); ``timings`` gets each descriptor's milliseconds
    (dlib's shape and descriptor, not the detection)."""
    import dlib
    import face_recognition_models

    weights = Path(face_recognition_models.__file__).parent / "models"
    local = threading.local()

    def describe(index: int) -> tuple[int, NDArray[np.float32] | None]:
        if not hasattr(local, "recognizer"):
            local.detector = dlib.get_frontal_face_detector()
            local.shapes = dlib.shape_predictor(
                str(weights / "shape_predictor_5_face_landmarks.dat")
            )
            local.recognizer = dlib.face_recognition_model_v1(
                str(weights / "dlib_face_recognition_resnet_model_v1.dat")
            )
        decoded = engine.decode(paths[index].read_bytes())
        found = engine.detect(decoded.pixels)
        if not found:
            return index, None
        subject = choose_subject(found, decoded.width, decoded.height).subject
        rgb = np.ascontiguousarray(decoded.pixels[:, :, ::-1])
        boxes = local.detector(rgb, 1)
        cx, cy = subject.center
        if len(boxes):
            box = min(boxes, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        else:
            x, y = int(subject.x), int(subject.y)
            box = dlib.rectangle(x, y, x + int(subject.width), y + int(subject.height))
        start = time.perf_counter()
        vector = np.array(
            local.recognizer.compute_face_descriptor(rgb, local.shapes(rgb, box)), np.float32
        )
        if timings is not None:
            timings.append((time.perf_counter() - start) * 1000)
        return index, vector / np.linalg.norm(vector)

    vectors = np.zeros((len(paths), 128), np.float32)
    with ThreadPoolExecutor(threads) as pool:
        for done, (index, vector) in enumerate(pool.map(describe, range(len(paths)))):
            if vector is not None:
                vectors[index] = vector
            if done % 500 == 0:
                print(f"dlib: {done} of {len(paths)}", file=sys.stderr, flush=True)
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    paths = [path for _, path in LabelledImages.scan(args.data).all_images()]
    vectors = dlib_descriptors(engine, paths, args.cache)
    print(f"{int(vectors.any(axis=1).sum())} of {len(paths)} images described")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
