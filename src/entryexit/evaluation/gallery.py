"""Open-set 1:N evaluation on flight-sized galleries: rank-1, FNIR at fixed FPIR, CMC.

Seeded random flights: each traveler's first image (or first ``references``, fused as the
service fuses them: the normalised mean) is the reference, embedded with the service's
reference recipe; the traveler's other images are mated captures, embedded with the capture
recipe; every image of every person not on the flight is a non-mated capture. For each draw
the threshold for a target FPIR is set on that draw's non-mated top scores.

Captures the service's quality gate would send back for a recapture are counted as failures
to acquire (FTA): reported on their own *and* counted in FNIR as not matched, never dropped.
With ``gallery_size=None`` (the whole data set) every person with a mated capture is on one
flight and every other person's images are the non-mated captures.
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
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import (
    CAPTURE_RECIPE,
    REFERENCE_RECIPE,
    ProgressCallback,
    embed_files_cached,
    with_reference_rows,
)
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.plots import pyplot
from entryexit.evaluation.scorefile import ScoreLine, write_scores

FPIR_TARGETS = (1e-2, 1e-3)
CMC_RANKS = 20


@dataclass(frozen=True, slots=True)
class GalleryRun:
    data_dir: Path
    out_dir: Path
    gallery_size: int | None = 300
    draws: int = 50
    references: int = 1
    seed: int = 0
    threads: int = 2
    operating_threshold: float | None = None
    reference_recipe: bool = True
    quality_gate: bool = True
    same_person_file: Path | None = None
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    """What a draw needs: capture templates, reference templates, and the quality gate."""

    captures: NDArray[np.float32]
    references: NDArray[np.float32]
    acquired: NDArray[np.bool_]


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
    mated_fta: float
    non_mated_fta: float
    total_mated: int


def run_draw(
    embeddings: Embeddings,
    images_of: dict[int, list[int]],
    persons: list[int],
    rng: np.random.Generator,
    run: GalleryRun,
) -> tuple[DrawResult, list[tuple[int, int, int, float]]]:
    references = run.references
    if run.gallery_size is None:
        chosen = [p for p in persons if len(images_of[p]) > references]
    else:
        eligible = [p for p in persons if len(images_of[p]) >= references]
        size = min(run.gallery_size, len(eligible))
        chosen = [int(p) for p in rng.choice(eligible, size=size, replace=False)]
    gallery = l2_normalise(
        np.stack([embeddings.references[images_of[p][:references]].mean(axis=0) for p in chosen])
    )
    on_flight = set(chosen)
    mated_all = [(i, row) for row, p in enumerate(chosen) for i in images_of[p][references:]]
    non_mated_all = [i for p in persons if p not in on_flight for i in images_of[p]]
    if not mated_all or not non_mated_all:
        raise DatasetError("a flight needs mated and non-mated captures; use more persons")
    acquired = embeddings.acquired
    mated = [(i, row) for i, row in mated_all if acquired[i]]
    non_mated = [i for i in non_mated_all if acquired[i]]
    captures = embeddings.captures
    mated_scores = captures[[i for i, _ in mated]] @ gallery.T
    truth = np.array([row for _, row in mated])
    order = np.argsort(-mated_scores, axis=1)
    ranks = np.argmax(order == truth[:, None], axis=1)
    # Rates are over all mated captures: one the gate sent back counts as not identified.
    total_mated = len(mated_all)
    cmc = np.array([(ranks < r).sum() / total_mated for r in range(1, CMC_RANKS + 1)])
    mated_top = mated_scores.max(axis=1)
    mated_correct = order[:, 0] == truth
    non_mated_scores = captures[non_mated] @ gallery.T
    non_mated_best = non_mated_scores.argmax(axis=1)
    non_mated_top = non_mated_scores.max(axis=1)

    def fnir_at(threshold: float) -> float:
        return 1.0 - float(np.sum(mated_correct & (mated_top >= threshold))) / total_mated

    fnir, thresholds = {}, {}
    for target in FPIR_TARGETS:
        threshold = threshold_at_far(non_mated_top, target)
        thresholds[target] = threshold
        fnir[target] = fnir_at(threshold)
    at_operating = None
    if run.operating_threshold is not None:
        t = run.operating_threshold
        at_operating = (fnir_at(t), float(np.mean(non_mated_top >= t)))
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
            rank1=float(mated_correct.sum()) / total_mated,
            fnir=fnir,
            thresholds=thresholds,
            cmc=cmc,
            mated_top=mated_top,
            mated_correct=mated_correct,
            non_mated_top=non_mated_top,
            at_operating=at_operating,
            mated_fta=1.0 - len(mated) / total_mated,
            non_mated_fta=1.0 - len(non_mated) / len(non_mated_all),
            total_mated=total_mated,
        ),
        lines,
    )


def _spread(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


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
    identity_of = {name: name for name in dataset.persons}
    merged_groups = 0
    if run.same_person_file is not None:
        for group in read_same_person_groups(run.same_person_file):
            present = [name for name in group if name in identity_of]
            for name in present[1:]:
                identity_of[name] = present[0]
            merged_groups += len(present) > 1
    names = sorted(set(identity_of.values()))
    person_index = {name: i for i, name in enumerate(names)}

    if on_total is not None:
        on_total(len(paths))
    captured = embed_files_cached(
        engine, paths, run.cache_dir, run.threads, on_progress, recipe=CAPTURE_RECIPE
    )
    # References are each identity's first photos that the engine could enrol.
    images_of: dict[int, list[int]] = {}
    for index, (person, _) in enumerate(all_images):
        if captured.enrolled[index]:
            images_of.setdefault(person_index[identity_of[person]], []).append(index)
    reference_indices = sorted(i for images in images_of.values() for i in images[: run.references])
    if run.cache_dir is not None:
        # With a cache, every image gets the reference recipe once: one cache then serves
        # one- and two-reference runs, with or without errata, and the cross-validation.
        reference_indices = list(range(len(paths)))
    reference_vectors = captured.vectors
    if run.reference_recipe:
        if on_total is not None:
            on_total(len(paths) + len(reference_indices))
        reference_vectors = with_reference_rows(
            engine,
            paths,
            captured.vectors,
            reference_indices,
            run.cache_dir,
            run.threads,
            on_progress,
        )
    embeddings = Embeddings(
        captures=captured.vectors,
        references=reference_vectors,
        acquired=captured.acceptable if run.quality_gate else captured.enrolled,
    )
    persons = sorted(images_of)
    rng = np.random.default_rng(run.seed)
    draws_to_run = 1 if run.gallery_size is None else run.draws
    draws, score_lines = [], []
    for draw in range(draws_to_run):
        result, lines = run_draw(embeddings, images_of, persons, rng, run)
        draws.append(result)
        if draw == 0:
            score_lines = [
                ScoreLine(names[top], names[truth], f"draw0:{paths[i].stem}", score)
                for i, top, truth, score in lines
            ]

    summary: dict[str, Any] = {
        "data": str(run.data_dir),
        "model": engine.model,
        "reference_recipe": REFERENCE_RECIPE if run.reference_recipe else CAPTURE_RECIPE,
        "quality_gate": run.quality_gate,
        "gallery_size": run.gallery_size if run.gallery_size is not None else "all",
        "references": run.references,
        "draws": draws_to_run,
        "seed": run.seed,
        "images": len(paths),
        "identities": len(persons),
        "same_person_groups_merged": merged_groups,
        "failure_to_enrol": captured.failure_to_enrol,
        "failure_to_acquire": {
            "mated": _spread([d.mated_fta for d in draws]),
            "non_mated": _spread([d.non_mated_fta for d in draws]),
        },
        "rank1": _spread([d.rank1 for d in draws]),
        "fnir_at_fpir": {
            f"{target:g}": {
                **_spread([d.fnir[target] for d in draws]),
                "threshold_mean": float(np.mean([d.thresholds[target] for d in draws])),
            }
            for target in FPIR_TARGETS
        },
        "cmc": [float(x) for x in np.mean([d.cmc for d in draws], axis=0)],
        # A non-mated capture this close to a gallery entry is almost always the same person
        # under another name (LFW has such label errors); with ~3,000 non-mated captures a
        # draw's FPIR 1e-3 threshold sits above its 4th-highest score, so a few of these
        # decide that draw. Reported, and mended only by an explicit --same-person file.
        "non_mated_above_0_9": int(sum(int((d.non_mated_top >= 0.9).sum()) for d in draws)),
    }
    # The deployable threshold for each target: set on the non-mated top scores of all flights
    # pooled (steadier than any one flight's), so the service's FPIR is the target on average.
    pooled_non_mated = np.concatenate([d.non_mated_top for d in draws])
    summary["calibration"] = {
        "gallery_fpir": {
            f"{target:g}": round(threshold_at_far(pooled_non_mated, target), 4)
            for target in FPIR_TARGETS
        },
        "gallery_size": summary["gallery_size"],
        "non_mated_searches": int(pooled_non_mated.size),
    }
    if run.operating_threshold is not None:
        summary["at_operating_threshold"] = {
            "threshold": run.operating_threshold,
            "fnir": _spread([d.at_operating[0] for d in draws if d.at_operating]),
            "fpir": _spread([d.at_operating[1] for d in draws if d.at_operating]),
        }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(run.out_dir / "scores.txt", score_lines)
    (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (run.out_dir / "calibration.toml").write_text(
        calibration_fragment(summary, engine.recipe), encoding="utf-8"
    )
    size = summary["gallery_size"]
    _plots(draws, run.out_dir, f"{engine.model}, gallery {size}, {run.references} ref")
    return summary


def calibration_fragment(summary: dict[str, Any], recipe: str) -> str:
    """The ``[calibration.<recipe>]`` lines of a recognizer manifest, from this run."""
    calibration = summary["calibration"]
    lines = [
        f"[calibration.{recipe}]",
        f"gallery_size = {calibration['gallery_size'] if summary['gallery_size'] != 'all' else 0}",
        f'source = "entryexit evaluate gallery on {summary["data"]}, {summary["draws"]} flights,'
        f' {calibration["non_mated_searches"]} non-mated searches"',
        "",
        f"[calibration.{recipe}.gallery_fpir]",
        *(f'"{target}" = {threshold}' for target, threshold in calibration["gallery_fpir"].items()),
        "",
    ]
    return "\n".join(lines)


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
    total_mated = sum(d.total_mated for d in draws)
    fnir = np.array([1.0 - (correct & (mated_top >= t)).sum() / total_mated for t in thresholds])
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    axes.loglog(np.clip(fpir, 1e-5, 1), np.clip(fnir, 1e-4, 1))
    axes.set_xlabel("FPIR (non-mated captures matched)")
    axes.set_ylabel("FNIR (mated captures not matched)")
    axes.set_title(f"FNIR vs FPIR: {title}")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_dir / "fnir_fpir.png")
    plt.close(figure)
