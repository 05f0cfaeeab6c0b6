"""The LFW verification protocol, run through the real face engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entryexit.biometrics import FaceEngine
from entryexit.biometrics.compare import similarity_matrix
from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages, Pair, draw_impostor_pairs, read_pairs
from entryexit.evaluation.embedding import REFERENCE_RECIPE, ProgressCallback, embed_files_cached
from entryexit.evaluation.metrics import (
    equal_error_rate,
    kfold_accuracy,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)
from entryexit.evaluation.plots import plot_det, plot_roc
from entryexit.evaluation.scorefile import ScoreLine, write_scores

FAILED_TO_ENROL_SCORE = -1.0
FAR_TARGETS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True, slots=True)
class LfwRun:
    data_dir: Path
    pairs_file: Path
    out_dir: Path
    impostor_pairs: int = 50_000
    seed: int = 0
    threads: int = 1
    # The service's asymmetric design: the first photo of each pair is an enrolled reference
    # (multi-crop template), the second a live capture (cheap template).
    reference_recipe: bool = False
    cache_dir: Path | None = None


def default_pairs_file(data_dir: Path) -> Path:
    for name in ("pairs-dev.tsv", "pairs.txt"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetError(f"no pairs file (pairs-dev.tsv or pairs.txt) in {data_dir}; pass --pairs")


def evaluate_lfw(
    engine: FaceEngine,
    run: LfwRun,
    on_total: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    dataset = LabelledImages.scan(run.data_dir)
    pairs = read_pairs(run.pairs_file)
    all_images = dataset.all_images()
    paths = [path for _, path in all_images]
    index_of = {path: index for index, path in enumerate(paths)}
    pair_indices = [
        (
            index_of[dataset.image_path(p.person1, p.image1)],
            index_of[dataset.image_path(p.person2, p.image2)],
        )
        for p in pairs
    ]
    drawn = draw_impostor_pairs(all_images, run.impostor_pairs, run.seed)

    if on_total is not None:
        on_total(len(paths) * (2 if run.reference_recipe else 1))
    embedded = embed_files_cached(engine, paths, run.cache_dir, run.threads, on_progress)
    references = embedded
    if run.reference_recipe:
        references = embed_files_cached(
            engine, paths, run.cache_dir, run.threads, on_progress, recipe=REFERENCE_RECIPE
        )

    def score(a: int, b: int) -> float:
        if not (embedded.enrolled[a] and embedded.enrolled[b]):
            return FAILED_TO_ENROL_SCORE
        return float(similarity_matrix(references.vectors[a], embedded.vectors[b])[0, 0])

    pair_scores = np.array([score(a, b) for a, b in pair_indices])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    drawn_scores = np.array([score(a, b) for a, b in drawn])

    genuine = pair_scores[same]
    impostor = np.concatenate([pair_scores[~same], drawn_scores])
    accuracy = kfold_accuracy(pair_scores, same, folds)
    curve = roc_curve(genuine, impostor)

    run.out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(
        run.out_dir / "scores.txt",
        _score_lines(pairs, pair_scores, all_images, drawn, drawn_scores),
    )
    title = f"{engine.detector_model} + {engine.model} on {run.data_dir.name}"
    plot_roc(curve, run.out_dir / "roc.png", title)
    plot_det(curve, run.out_dir / "det.png", title)

    pairs_involving_failures = int(np.count_nonzero(pair_scores == FAILED_TO_ENROL_SCORE))
    summary: dict[str, Any] = {
        "data": str(run.data_dir),
        "pairs_file": str(run.pairs_file),
        "model": engine.model,
        "recipe": "reference x capture" if run.reference_recipe else "capture x capture",
        "detector": engine.detector_model,
        "images": len(paths),
        "failure_to_enrol": embedded.failure_to_enrol,
        "pairs_with_failure_to_enrol": pairs_involving_failures,
        "matched_pairs": int(same.sum()),
        "mismatched_pairs": int((~same).sum()),
        "drawn_impostor_pairs": len(drawn),
        "seed": run.seed,
        "accuracy_10fold": {
            "mean": accuracy.mean,
            "std": accuracy.std,
            "per_fold": list(accuracy.per_fold),
            "thresholds": list(accuracy.thresholds),
        },
        "eer": equal_error_rate(genuine, impostor),
        "operating_points": [
            {
                "far": far,
                "threshold": threshold_at_far(impostor, far),
                "tar": tar_at_far(genuine, impostor, far),
                "impostor_pairs": int(impostor.size),
            }
            for far in FAR_TARGETS
            if far * impostor.size >= 1
        ],
        "outputs": {
            "scores": "scores.txt",
            "roc": "roc.png",
            "det": "det.png",
            "calibration": "calibration.toml",
        },
    }
    (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (run.out_dir / "calibration.toml").write_text(
        "\n".join(
            [
                f"[calibration.{engine.recipe}.verification_far]",
                f"# entryexit evaluate lfw on {run.data_dir}, {impostor.size} impostor pairs",
                *(
                    f'"{point["far"]:g}" = {point["threshold"]:.4f}'
                    for point in summary["operating_points"]
                ),
                "",
            ]
        ),
        encoding="utf-8",
    )
    return summary


def _score_lines(
    pairs: list[Pair],
    pair_scores: np.ndarray[Any, np.dtype[np.float64]],
    all_images: list[tuple[str, Path]],
    drawn: list[tuple[int, int]],
    drawn_scores: np.ndarray[Any, np.dtype[np.float64]],
) -> list[ScoreLine]:
    lines = [
        ScoreLine(
            p.person1, p.person2, f"{p.person1}_{p.image1:04d}|{p.person2}_{p.image2:04d}", float(s)
        )
        for p, s in zip(pairs, pair_scores, strict=True)
    ]
    for (a, b), s in zip(drawn, drawn_scores, strict=True):
        (person_a, path_a), (person_b, path_b) = all_images[a], all_images[b]
        lines.append(ScoreLine(person_a, person_b, f"{path_a.stem}|{path_b.stem}", float(s)))
    return lines
