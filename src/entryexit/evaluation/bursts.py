"""What multi-frame capture buys: open-set 1:N with probes fused from k frames (k = 1..K).

Two bounds, because no public data set holds real gate bursts:

* **lower** (synthetic bursts): frame 1 is the photo itself, frames 2..K are the same photo
  with a small shift, blur, exposure change and JPEG re-compression (seeded). Frames this
  alike carry little new information, so fusing them gains little: a real camera's
  consecutive frames differ more (the traveler moves), so this is the pessimistic bound.
* **upper** (different photos): a traveler's burst is k *different* photos of the person
  (persons with at least K+1 photos; the reference is their first photo, held out of every
  burst). Independent photos are more diverse than any gate burst, so this is the optimistic
  bound.

Frames are gated for quality and fused exactly as the service does
(``biometrics.fusion``: the quality-weighted mean of the normalised templates of the frames
that pass); a burst none of whose frames passes is a failure to acquire, counted in FNIR. For
each k, each flight's threshold for FPIR 1e-3 is set on that flight's non-mated fused probes,
so FNIR compares k's at the same false-positive rate; the pooled thresholds give the shift a
k-frame probe's non-mated tail takes, from which the per-frame-count calibration is made.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceAnalysis, FaceEngine
from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.engine import RECIPE_REVISION
from entryexit.biometrics.fusion import frame_weight, fuse_templates
from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import (
    CAPTURE_RECIPE,
    REFERENCE_RECIPE,
    ProgressCallback,
    add_file_contents,
    embed_files_cached,
)
from entryexit.evaluation.metrics import threshold_at_far

TARGET_FPIR = 1e-3
MAX_SHIFT = 0.03  # of the image's side
MAX_BLUR_SIGMA = 1.2
EXPOSURE_RANGE = (0.75, 1.3)
JPEG_QUALITY_RANGE = (40, 90)
LATENCY_SAMPLE = 40


@dataclass(frozen=True, slots=True)
class BurstRun:
    data_dir: Path
    out_dir: Path
    frames: int = 3
    gallery_size: int = 300
    draws: int = 50
    seed: int = 0
    threads: int = 2
    same_person_file: Path | None = None
    cache_dir: Path | None = None
    shipped_threshold: float | None = None
    latency_sample: int = LATENCY_SAMPLE


def synthetic_frame(data: bytes, rng: np.random.Generator) -> bytes:
    """Another frame of the same moment: ``data`` shifted by up to 3% of its side, blurred
    (Gaussian sigma up to 1.2 px), re-exposed (gain 0.75-1.3) and re-compressed (JPEG quality
    40-90)."""
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DatasetError("a photo could not be read to make a synthetic frame")
    height, width = pixels.shape[:2]
    dx, dy = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * (width, height)
    shifted = cv2.warpAffine(
        pixels,
        np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float64),
        (width, height),
        borderMode=cv2.BORDER_REPLICATE,
    )
    sigma = float(rng.uniform(0.0, MAX_BLUR_SIGMA))
    if sigma > 0.1:
        shifted = cv2.GaussianBlur(shifted, (0, 0), sigma)
    gain = float(rng.uniform(*EXPOSURE_RANGE))
    exposed = np.clip(shifted.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    quality = int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1))
    ok, encoded = cv2.imencode(".jpg", exposed, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DatasetError("a synthetic frame could not be encoded")
    return bytes(encoded)


def burst_frames(data: bytes, frames: int, seed: int, index: int) -> list[bytes]:
    """Frame 1 is ``data`` itself; the others are :func:`synthetic_frame` s of it, seeded by
    the run's seed and the image's index (so every run makes the same bursts)."""
    rng = np.random.default_rng([seed, index])
    return [data, *(synthetic_frame(data, rng) for _ in range(frames - 1))]


@dataclass(frozen=True, slots=True)
class FrameTemplates:
    """``vectors[i, f]``: frame ``f`` of image ``i``'s burst; ``weights[i, f]`` its fusion
    weight, NaN where the frame failed to enrol or the quality gate refused it."""

    vectors: NDArray[np.float32]
    weights: NDArray[np.float64]


def _weight(outcome: FaceAnalysis | Exception) -> float:
    if isinstance(outcome, FaceAnalysis) and outcome.quality.acceptable:
        return frame_weight(outcome.quality)
    return math.nan


def embed_bursts(
    engine: FaceEngine,
    paths: Sequence[Path],
    frames: int,
    seed: int,
    threads: int = 2,
    cache_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> FrameTemplates:
    """Every image's synthetic burst, each frame embedded with the capture recipe."""
    digest = hashlib.sha256(
        f"{engine.model}\n{RECIPE_REVISION}\nburst\n{frames}\n{seed}\n"
        f"{engine.settings.capture_recipe_signature}\n".encode()
    )
    add_file_contents(digest, paths)
    cache_file = (
        cache_dir / f"bursts-{digest.hexdigest()[:24]}.npz" if cache_dir is not None else None
    )
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file) as cached:
            if on_progress is not None:
                on_progress(len(paths) * frames)
            return FrameTemplates(cached["vectors"], cached["weights"])
    vectors = np.zeros((len(paths), frames, engine.dimension), dtype=np.float32)
    weights = np.full((len(paths), frames), math.nan)

    def run(index: int) -> tuple[int, list[FaceAnalysis | Exception]]:
        images = burst_frames(paths[index].read_bytes(), frames, seed, index)
        return index, list(engine.analyse_many(images))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for index, outcomes in pool.map(run, range(len(paths))):
            for frame, outcome in enumerate(outcomes):
                if isinstance(outcome, FaceAnalysis):
                    vectors[index, frame] = outcome.template.vector
                weights[index, frame] = _weight(outcome)
            if on_progress is not None:
                on_progress(frames)
    if cache_file is not None and cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".partial.npz")
        np.savez(partial, vectors=vectors, weights=weights)
        partial.replace(cache_file)
    return FrameTemplates(vectors, weights)


def fused_probe(
    vectors: NDArray[np.float32], weights: NDArray[np.float64]
) -> NDArray[np.float32] | None:
    """The service's fusion of the frames that passed; None if none did."""
    passed = ~np.isnan(weights)
    if not passed.any():
        return None
    return fuse_templates(vectors[passed], [float(w) for w in weights[passed]])


@dataclass(frozen=True, slots=True)
class Probes:
    """Fused probes (rows), whose person each is, and mated probes that failed to acquire."""

    matrix: NDArray[np.float32]
    persons: NDArray[np.int64]


def _probes(items: list[tuple[int, NDArray[np.float32] | None]], dimension: int) -> Probes:
    kept = [(person, vector) for person, vector in items if vector is not None]
    if not kept:
        return Probes(np.zeros((0, dimension), dtype=np.float32), np.zeros(0, dtype=np.int64))
    return Probes(
        np.stack([vector for _, vector in kept]),
        np.array([person for person, _ in kept], dtype=np.int64),
    )


@dataclass(frozen=True, slots=True)
class FlightScores:
    fnir: float
    threshold: float
    non_mated_top: NDArray[np.float64]
    mated_top: NDArray[np.float64]
    mated_correct: NDArray[np.bool_]
    mated_total: int
    fta: float


def score_flight(
    gallery: NDArray[np.float32],
    on_flight: list[int],
    mated: Probes,
    mated_total: int,
    non_mated: Probes,
) -> FlightScores:
    """FNIR at the flight's own FPIR-1e-3 threshold; a mated burst that failed to acquire is
    in ``mated_total`` but not in ``mated`` (a miss)."""
    if mated_total == 0 or non_mated.matrix.shape[0] == 0:
        raise DatasetError("a flight needs mated and non-mated bursts; use more persons")
    row_of = {person: row for row, person in enumerate(on_flight)}
    non_mated_top = (non_mated.matrix @ gallery.T).max(axis=1).astype(np.float64)
    threshold = threshold_at_far(non_mated_top, TARGET_FPIR)
    if mated.matrix.shape[0]:
        scores = mated.matrix @ gallery.T
        truth = np.array([row_of[int(p)] for p in mated.persons])
        mated_top = scores.max(axis=1).astype(np.float64)
        correct = scores.argmax(axis=1) == truth
    else:
        mated_top, correct = np.zeros(0), np.zeros(0, dtype=bool)
    hits = int(np.sum(correct & (mated_top >= threshold)))
    return FlightScores(
        fnir=1.0 - hits / mated_total,
        threshold=threshold,
        non_mated_top=non_mated_top,
        mated_top=mated_top,
        mated_correct=correct,
        mated_total=mated_total,
        fta=1.0 - mated.matrix.shape[0] / mated_total,
    )


def _fnir_at(flights: list[FlightScores], threshold: float) -> float:
    hits = sum(int(np.sum(f.mated_correct & (f.mated_top >= threshold))) for f in flights)
    return 1.0 - hits / sum(f.mated_total for f in flights)


def _summary(flights: list[FlightScores], shipped: float | None) -> dict[str, Any]:
    pooled = np.concatenate([f.non_mated_top for f in flights])
    result: dict[str, Any] = {
        "fnir_at_fpir_1e-3": {
            "mean": float(np.mean([f.fnir for f in flights])),
            "std": float(np.std([f.fnir for f in flights])),
        },
        "flight_threshold_mean": float(np.mean([f.threshold for f in flights])),
        "pooled_threshold": threshold_at_far(pooled, TARGET_FPIR),
        "non_mated_searches": int(pooled.size),
        "mated_bursts": int(sum(f.mated_total for f in flights)),
        "failure_to_acquire": float(np.mean([f.fta for f in flights])),
    }
    if shipped is not None:
        result["at_threshold"] = {
            "threshold": shipped,
            "fnir": _fnir_at(flights, shipped),
            "fpir": float(np.mean(pooled >= shipped)),
        }
    return result


def _identities(
    dataset: LabelledImages, same_person_file: Path | None
) -> tuple[dict[str, str], int]:
    identity_of = {name: name for name in dataset.persons}
    merged = 0
    if same_person_file is not None:
        for group in read_same_person_groups(same_person_file):
            present = [name for name in group if name in identity_of]
            for name in present[1:]:
                identity_of[name] = present[0]
            merged += len(present) > 1
    return identity_of, merged


def evaluate_bursts(
    engine: FaceEngine,
    run: BurstRun,
    thresholds_by_frames: dict[int, float] | None = None,
    on_total: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Both bounds for k = 1..``run.frames``, the per-frame-count threshold shifts and the
    added CPU time per frame; writes ``bursts.json`` to ``run.out_dir``."""
    if run.frames < 1:
        raise DatasetError("--frames must be at least 1")
    dataset = LabelledImages.scan(run.data_dir)
    all_images = dataset.all_images()
    paths = [path for _, path in all_images]
    identity_of, merged = _identities(dataset, run.same_person_file)
    names = sorted(set(identity_of.values()))
    person_index = {name: i for i, name in enumerate(names)}
    if on_total is not None:
        on_total(len(paths) * (run.frames + 2))
    captured = embed_files_cached(
        engine, paths, run.cache_dir, run.threads, on_progress, CAPTURE_RECIPE
    )
    enrolled = embed_files_cached(
        engine, paths, run.cache_dir, run.threads, on_progress, REFERENCE_RECIPE
    )
    bursts = embed_bursts(
        engine, paths, run.frames, run.seed, run.threads, run.cache_dir, on_progress
    )
    images_of: dict[int, list[int]] = {}
    for index, (person, _) in enumerate(all_images):
        if captured.enrolled[index] and enrolled.enrolled[index]:
            images_of.setdefault(person_index[identity_of[person]], []).append(index)
    persons = sorted(images_of)
    # Real-photo bursts of every k use the same persons: those with a reference and K others.
    eligible_upper = {p for p in persons if len(images_of[p]) >= run.frames + 1}
    if not eligible_upper:
        raise DatasetError(f"no person has {run.frames + 1} photos; use --frames below that")
    # Frame 1 of a synthetic burst is the photo itself: its weight is the photo's.
    single_weights = bursts.weights[:, 0]
    rng = np.random.default_rng(run.seed)
    lower: dict[int, list[FlightScores]] = {k: [] for k in range(1, run.frames + 1)}
    upper: dict[int, list[FlightScores]] = {k: [] for k in range(1, run.frames + 1)}
    dimension = engine.dimension
    # Probes that do not depend on the flight, fused once per k.
    synthetic = {
        k: {
            i: fused_probe(bursts.vectors[i, :k], bursts.weights[i, :k])
            for images in images_of.values()
            for i in images
        }
        for k in range(1, run.frames + 1)
    }
    disjoint = {
        k: {
            p: [
                _fused_photos(captured.vectors, single_weights, images_of[p][s : s + k])
                for s in range(0, len(images_of[p]) - k + 1, k)
            ]
            for p in persons
        }
        for k in range(1, run.frames + 1)
    }
    for _ in range(run.draws):
        size = min(run.gallery_size, len(persons) - 1)
        chosen = sorted(int(p) for p in rng.choice(persons, size=size, replace=False))
        on_flight = set(chosen)
        gallery = l2_normalise(np.stack([enrolled.vectors[images_of[p][0]] for p in chosen]))
        others = [p for p in persons if p not in on_flight]
        order = {p: [int(i) for i in rng.permutation(images_of[p][1:])] for p in chosen}
        for k in range(1, run.frames + 1):
            # Lower bound: every non-reference photo of a traveler, and every photo of
            # everyone else, as a k-frame synthetic burst.
            mated_items = [(p, synthetic[k][i]) for p in chosen for i in images_of[p][1:]]
            non_mated_items = [(p, synthetic[k][i]) for p in others for i in images_of[p]]
            lower[k].append(
                score_flight(
                    gallery,
                    chosen,
                    _probes(mated_items, dimension),
                    len(mated_items),
                    _probes(non_mated_items, dimension),
                )
            )
            # Upper bound: k different photos of the person (a random k of their others,
            # the same order for every k); everyone else's photos in disjoint k-photo bursts.
            real_mated = [
                (p, _fused_photos(captured.vectors, single_weights, order[p][:k]))
                for p in chosen
                if p in eligible_upper
            ]
            real_non_mated = [(p, probe) for p in others for probe in disjoint[k][p]]
            upper[k].append(
                score_flight(
                    gallery,
                    chosen,
                    _probes(real_mated, dimension),
                    len(real_mated),
                    _probes(real_non_mated, dimension),
                )
            )
    shipped = thresholds_by_frames or {}
    summary: dict[str, Any] = {
        "data": str(run.data_dir),
        "model": engine.model,
        "frames": run.frames,
        "gallery_size": run.gallery_size,
        "draws": run.draws,
        "seed": run.seed,
        "images": len(paths),
        "identities": len(persons),
        "same_person_groups_merged": merged,
        "persons_with_k_plus_1_photos": len(eligible_upper),
        "synthetic_frames": {
            "max_shift": MAX_SHIFT,
            "max_blur_sigma": MAX_BLUR_SIGMA,
            "exposure_gain": list(EXPOSURE_RANGE),
            "jpeg_quality": list(JPEG_QUALITY_RANGE),
        },
        "lower_synthetic": {
            str(k): _summary(flights, shipped.get(k)) for k, flights in lower.items()
        },
        "upper_different_photos": {
            str(k): _summary(flights, shipped.get(k)) for k, flights in upper.items()
        },
    }
    summary["threshold_shift"] = {
        str(k): {
            bound: summary[bound][str(k)]["pooled_threshold"]
            - summary[bound]["1"]["pooled_threshold"]
            for bound in ("lower_synthetic", "upper_different_photos")
        }
        for k in range(1, run.frames + 1)
    }
    if run.latency_sample > 0:
        summary["cpu_seconds"] = burst_cpu_time(
            engine,
            [paths[i] for i in range(0, len(paths), max(1, len(paths) // 200))][
                : run.latency_sample
            ],
            run.frames,
            run.seed,
        )
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / "bursts.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _fused_photos(
    vectors: NDArray[np.float32], weights: NDArray[np.float64], images: Sequence[int]
) -> NDArray[np.float32] | None:
    rows = list(images)
    return fused_probe(vectors[rows], weights[rows])


def burst_cpu_time(
    engine: FaceEngine, paths: Sequence[Path], frames: int, seed: int
) -> dict[str, Any]:
    """CPU seconds (this process, all threads) of ``engine.analyse_burst`` on k-frame bursts
    of each of ``paths``, k = 1..frames, and the added CPU time per extra frame (the slope).
    CPU time, not wall time: the machine may be shared."""
    if not paths:
        raise DatasetError("no images to time")
    bursts = [
        burst_frames(path.read_bytes(), frames, seed, index) for index, path in enumerate(paths)
    ]
    engine.analyse_burst(bursts[0][:1], 1)  # warm-up
    per_burst: dict[str, float] = {}
    for k in range(1, frames + 1):
        started = time.process_time()
        for burst in bursts:
            engine.analyse_burst(burst[:k], k)
        per_burst[str(k)] = (time.process_time() - started) / len(bursts)
    ks = np.arange(1, frames + 1, dtype=np.float64)
    values = np.array([per_burst[str(k)] for k in range(1, frames + 1)])
    slope = float(np.polyfit(ks, values, 1)[0]) if frames > 1 else math.nan
    return {"per_burst": per_burst, "added_per_frame": slope, "bursts_timed": len(bursts)}
