"""Per-stage latency of the face pipeline (decode, detect, align, quality, embed) and end to end.

Runs on lfw-dev photos (150x150) and on 1280x720 frames made by placing an lfw-dev face on a
plain background, with OpenCV limited to --threads threads. Prints median and p95 in ms, the
batch-embedding cost per face, and the process's peak memory with the models loaded.

    .venv/bin/python benchmarks/bench_pipeline.py --threads 1
    .venv/bin/python benchmarks/bench_pipeline.py --threads 2
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from entryexit.biometrics import EngineSettings, FaceEngine
from entryexit.biometrics.align import align_face
from entryexit.biometrics.decode import decode_image
from entryexit.biometrics.detect import choose_subject
from entryexit.biometrics.quality import assess_quality
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def summary(samples: list[float]) -> str:
    return f"median {np.median(samples):7.2f} ms   p95 {np.percentile(samples, 95):7.2f} ms"


def frame_from(face_jpeg: bytes, width: int = 1280, height: int = 720) -> bytes:
    face = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    frame = np.full((height, width, 3), 110, np.uint8)
    big = cv2.resize(face, (360, 360))
    frame[180:540, 460:820] = big
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def bench_images(engine: FaceEngine, label: str, images: list[bytes]) -> None:
    names = ("decode", "detect", "align", "quality", "embed", "end to end")
    stages: dict[str, list[float]] = {name: [] for name in names}
    for data in images:
        marks = [time.perf_counter()]
        decoded = decode_image(data)
        marks.append(time.perf_counter())
        detections = engine.detect(decoded.pixels)
        marks.append(time.perf_counter())
        subject = choose_subject(detections, decoded.width, decoded.height).subject
        aligned = align_face(decoded.pixels, subject.landmarks)
        marks.append(time.perf_counter())
        assess_quality(subject, aligned)
        marks.append(time.perf_counter())
        engine.embed_aligned([aligned])
        marks.append(time.perf_counter())
        for name, start, end in zip(names, marks, marks[1:], strict=False):
            stages[name].append((end - start) * 1000.0)
        stages["end to end"] += timed(lambda data=data: engine.analyse(data), 1)  # type: ignore[misc]
    print(f"\n{label} ({len(images)} images)")
    for name, samples in stages.items():
        print(f"  {name:12} {summary(samples)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--no-flip", action="store_true", help="Embed without the mirrored-face augmentation."
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: data set not found at {args.data}")
        return 0
    cv2.setNumThreads(args.threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    engine = FaceEngine.from_model_dir(
        Settings().resolved_model_dir, EngineSettings(workers=1, flip_augmentation=not args.no_flip)
    )
    rng = np.random.default_rng(0)
    all_paths = [p for _, p in LabelledImages.scan(args.data).all_images()]
    chosen = [all_paths[i] for i in rng.choice(len(all_paths), args.images, replace=False)]
    images = [p.read_bytes() for p in chosen]
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; OpenCV {cv2.__version__}"
    )
    print(f"OpenCV threads: {args.threads}; template recipe: {engine.model}")
    for data in images[:5]:
        engine.analyse(data)  # warm-up
    bench_images(engine, "lfw-dev 150x150 JPEG", images)
    frames = [frame_from(data) for data in images[:50]]
    bench_images(engine, "1280x720 JPEG frame", frames)

    aligned = []
    for data in images[:32]:
        decoded = decode_image(data)
        subject = choose_subject(
            engine.detect(decoded.pixels), decoded.width, decoded.height
        ).subject
        aligned.append(align_face(decoded.pixels, subject.landmarks))
    print("\nbatch embedding (per face)")
    for batch in (1, 8, 32):
        samples = timed(lambda batch=batch: engine.embed_aligned(aligned[:batch]), 10)  # type: ignore[misc]
        per_face = [s / batch for s in samples]
        print(f"  batch {batch:3}    {summary(per_face)}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
