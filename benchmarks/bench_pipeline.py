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
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import EngineSettings, FaceEngine, similarity_matrix
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


def gate_frame(path: Path, rng: random.Random) -> bytes:
    """An lfw-dev photo placed at a random spot in a 640x480 frame, as a gate camera sees it
    (the frames of the capture baseline and of ``bench_service.py``)."""
    face = cv2.imread(str(path))
    if face is None:
        raise SystemExit(f"cannot read {path}")
    size = rng.randrange(220, 300)
    frame = np.full((480, 640, 3), rng.randrange(80, 160), np.uint8)
    x, y = rng.randrange(0, 640 - size), rng.randrange(0, 480 - size)
    frame[y : y + size, x : x + size] = cv2.resize(face, (size, size))
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def random_gallery(size: int, dimension: int, seed: int = 0) -> NDArray[np.float32]:
    """A staged gallery's shape (unit rows): the 1:N search costs the same as a real one."""
    rows = np.random.default_rng(seed).standard_normal((size, dimension)).astype(np.float32)
    unit: NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def frame_from(face_jpeg: bytes, width: int = 1280, height: int = 720) -> bytes:
    face = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if face is None:
        raise SystemExit("cannot decode the face photo")
    frame = np.full((height, width, 3), 110, np.uint8)
    big = cv2.resize(face, (360, 360))
    frame[180:540, 460:820] = big
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


@dataclass(frozen=True, slots=True)
class PipelineBaseline:
    """The face pipeline alone on capture frames: what the HTTP path is compared with."""

    latencies_ms: list[float]  # one caller, one frame at a time
    throughput: float  # captures/s with ``threads`` callers sharing the engine
    threads: int
    cpu_ms_per_capture: float  # this process's CPU (all threads) in the throughput run


def pipeline_capture(engine: FaceEngine, gallery: NDArray[np.float32], frame: bytes) -> int:
    """What a capture costs without the service: decode, detect, align, quality, embed (the
    capture recipe, mirror included) and the 1:N comparison with the staged gallery."""
    analysis = engine.analyse(frame)
    scores = similarity_matrix(analysis.template.vector, gallery)[0]
    return int(np.argmax(scores))


def pipeline_baseline(
    engine: FaceEngine,
    gallery: NDArray[np.float32],
    frames: Sequence[bytes],
    threads: int,
) -> PipelineBaseline:
    """Single-caller latency and ``threads``-caller throughput of :func:`pipeline_capture`
    over ``frames`` (after a warm-up of a few)."""
    for frame in frames[:5]:
        pipeline_capture(engine, gallery, frame)
    latencies = []
    for frame in frames:
        began = time.perf_counter()
        pipeline_capture(engine, gallery, frame)
        latencies.append((time.perf_counter() - began) * 1000.0)
    cpu_before = time.process_time()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda frame: pipeline_capture(engine, gallery, frame), frames))
    seconds = time.perf_counter() - began
    cpu_ms = (time.process_time() - cpu_before) / len(frames) * 1000.0
    return PipelineBaseline(latencies, len(frames) / seconds, threads, cpu_ms)


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
        Settings().resolved_model_dir, EngineSettings(workers=2, flip_augmentation=not args.no_flip)
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

    gate_frames = [gate_frame(path, random.Random(i)) for i, path in enumerate(chosen[:100])]
    baseline = pipeline_baseline(
        engine, random_gallery(300, engine.dimension), gate_frames, threads=2
    )
    print(f"\n640x480 gate capture + 1:N over 300 ({len(gate_frames)} frames)")
    print(f"  one caller   {summary(baseline.latencies_ms)}")
    print(
        f"  two callers  {baseline.throughput:.1f} captures/s"
        f" (CPU {baseline.cpu_ms_per_capture:.1f} ms a capture)"
    )

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
