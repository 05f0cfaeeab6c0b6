"""Open-set 1:N evaluation on flight-sized galleries: rank-1, FNIR at fixed FPIR, CMC.

Seeded random flights: each traveler's first image (or first ``references``, fused as the
service fuses them: the normalised mean) is the reference; the traveler's other images are
mated captures; every image of every person not on the flight is a non-mated capture. For each
draw the threshold for a target FPIR is set on that draw's non-mated top scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceEngine
from entryexit.biometrics.compare import l2_normalise
from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages
from entryexit.evaluation.embedding import ProgressCallback, embed_files
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.plots import pyplot
from entryexit.evaluation.scorefile import ScoreLine, write_scores

FPIR_TARGETS = (1e-2, 1e-3)
CMC_RANKS = 20


@dataclass(frozen=True, slots=True)
class GalleryRun:
    data_dir: Path
    out_dir: Path
    gallery_size: int = 300
    draws: int = 50
    references: int = 1
    seed: int = 0
    threads: int = 2
    operating_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class DrawResult:
    rank1: float
    fnir: dict[float, float]
    thresholds: dict[float, float]
    cmc: NDArray[np.float64]
    mated_top: NDArray[np.float64]
    mated_correct: NDArray[np.bool_]
    non_mated_top: NDArray[np.float64]
    at_operating: tuple[float, float] | None


def run_draw(
    vectors: NDArray[np.float32],
    images_of: dict[int, list[int]],
    persons: list[int],
    rng: np.random.Generator,
    run: GalleryRun,
) -> tuple[DrawResult, list[tuple[int, int, int, float]]]:
    eligible = [p for p in persons if len(images_of[p]) >= run.references]
    size = min(run.gallery_size, len(eligible))
    chosen = [int(p) for p in rng.choice(eligible, size=size, replace=False)]
    gallery = l2_normalise(
        np.stack([vectors[images_of[p][: run.references]].mean(axis=0) for p in chosen])
    )
    on_flight = set(chosen)
    mated = [(i, row) for row, p in enumerate(chosen) for i in images_of[p][run.references :]]
    non_mated = [i for p in persons if p not in on_flight for i in images_of[p]]
    if not mated or not non_mated:
        raise DatasetError("a flight needs mated and non-mated captures; use more persons")
    mated_scores = vectors[[i for i, _ in mated]] @ gallery.T
    truth = np.array([row for _, row in mated])
    order = np.argsort(-mated_scores, axis=1)
    ranks = np.argmax(order == truth[:, None], axis=1)
    cmc = np.array([(ranks < r).mean() for r in range(1, CMC_RANKS + 1)])
    mated_top = mated_scores.max(axis=1)
    mated_correct = order[:, 0] == truth
    non_mated_scores = vectors[non_mated] @ gallery.T
    non_mated_best = non_mated_scores.argmax(axis=1)
    non_mated_top = non_mated_scores.max(axis=1)
    fnir, thresholds = {}, {}
    for target in FPIR_TARGETS:
        threshold = threshold_at_far(non_mated_top, target)
        thresholds[target] = threshold
        fnir[target] = float(np.mean(~(mated_correct & (mated_top >= threshold))))
    at_operating = None
    if run.operating_threshold is not None:
        t = run.operating_threshold
        at_operating = (
            float(np.mean(~(mated_correct & (mated_top >= t)))),
            float(np.mean(non_mated_top >= t)),
        )
    person_of_image = {i: p for p, images in images_of.items() for i in images}
    lines = [
        (i, chosen[order[k, 0]], chosen[truth[k]], float(mated_top[k]))
        for k, (i, _) in enumerate(mated)
    ] + [
        (i, chosen[int(non_mated_best[k])], person_of_image[i], float(non_mated_top[k]))
        for k, i in enumerate(non_mated)
    ]
    return (
        DrawResult(
            float(mated_correct.mean()),
            fnir,
            thresholds,
            cmc,
            mated_top,
            mated_correct,
            non_mated_top,
            at_operating,
        ),
        lines,
    )


def evaluate_gallery(
    engine: FaceEngine,
    run: GalleryRun,
    on_total: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    if run.references < 1:
        raise DatasetError("--references must be at least 1")
    dataset = LabelledImages.scan(run.data_dir)
    all_images = dataset.all_images()
    paths = [path for _, path in all_images]
    names = sorted(dataset.persons)
    person_index = {name: i for i, name in enumerate(names)}
    if on_total is not None:
        on_total(len(paths))
    embedded = embed_files(engine, paths, threads=run.threads, on_progress=on_progress)
    images_of: dict[int, list[int]] = {}
    for index, (person, _) in enumerate(all_images):
        if embedded.enrolled[index]:
            images_of.setdefault(person_index[person], []).append(index)
    persons = sorted(images_of)
    rng = np.random.default_rng(run.seed)
    draws, score_lines = [], []
    for draw in range(run.draws):
        result, lines = run_draw(embedded.vectors, images_of, persons, rng, run)
        draws.append(result)
        if draw == 0:
            score_lines = [
                ScoreLine(names[top], names[truth], f"draw0:{paths[i].stem}", score)
                for i, top, truth, score in lines
            ]

    def spread(values: list[float]) -> dict[str, float]:
        array = np.array(values)
        return {
            "mean": float(array.mean()),
            "median": float(np.median(array)),
            "std": float(array.std()),
            "min": float(array.min()),
            "max": float(array.max()),
        }

    summary: dict[str, Any] = {
        "data": str(run.data_dir),
        "model": engine.model,
        "gallery_size": run.gallery_size,
        "references": run.references,
        "draws": run.draws,
        "seed": run.seed,
        "images": len(paths),
        "failure_to_enrol": embedded.failure_to_enrol,
        "rank1": spread([d.rank1 for d in draws]),
        "fnir_at_fpir": {
            f"{target:g}": {
                **spread([d.fnir[target] for d in draws]),
                "threshold_mean": float(np.mean([d.thresholds[target] for d in draws])),
            }
            for target in FPIR_TARGETS
        },
        "cmc": [float(x) for x in np.mean([d.cmc for d in draws], axis=0)],
        # A non-mated capture this close to a gallery entry is almost always the same photo
        # under another name (LFW has such label errors); with ~3,000 non-mated captures a
        # draw's FPIR 1e-3 threshold sits above its 4th-highest score, so a few of these
        # decide that draw. Reported, not removed.
        "non_mated_above_0_9": int(sum(int((d.non_mated_top >= 0.9).sum()) for d in draws)),
    }
    if run.operating_threshold is not None:
        summary["at_operating_threshold"] = {
            "threshold": run.operating_threshold,
            "fnir": spread([d.at_operating[0] for d in draws if d.at_operating]),
            "fpir": spread([d.at_operating[1] for d in draws if d.at_operating]),
        }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(run.out_dir / "scores.txt", score_lines)
    (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _plots(draws, run.out_dir, f"{engine.model}, gallery {run.gallery_size}, {run.references} ref")
    return summary


def _plots(draws: list[DrawResult], out_dir: Path, title: str) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    cmc = np.mean([d.cmc for d in draws], axis=0)
    axes.plot(range(1, CMC_RANKS + 1), cmc * 100, marker="o")
    axes.set_xlabel("rank")
    axes.set_ylabel("identification rate (%)")
    axes.set_title(f"CMC: {title}")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_dir / "cmc.png")
    plt.close(figure)

    mated_top = np.concatenate([d.mated_top for d in draws])
    correct = np.concatenate([d.mated_correct for d in draws])
    non_mated = np.concatenate([d.non_mated_top for d in draws])
    thresholds = np.unique(np.quantile(non_mated, np.linspace(0.5, 1.0, 400)))
    fpir = np.array([(non_mated >= t).mean() for t in thresholds])
    fnir = np.array([1.0 - (correct & (mated_top >= t)).mean() for t in thresholds])
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    axes.loglog(np.clip(fpir, 1e-5, 1), np.clip(fnir, 1e-4, 1))
    axes.set_xlabel("FPIR (non-mated captures matched)")
    axes.set_ylabel("FNIR (mated captures not matched)")
    axes.set_title(f"FNIR vs FPIR: {title}")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_dir / "fnir_fpir.png")
    plt.close(figure)
