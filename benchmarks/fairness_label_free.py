"""Label-free ways to narrow the women/men false-match gap, measured on held-out persons.

    .venv/bin/python benchmarks/dlib_descriptors.py --data ../shared/data/lfw-dev \\
        --cache /tmp/mf-cache
    .venv/bin/python benchmarks/fairness_label_free.py --data ../shared/data/lfw-dev \\
        --labels ../shared/data/lfw-dev/sex.tsv --same-person benchmarks/lfw-dev-same-person.tsv \\
        --cache /tmp/mf-cache [--dlib] [--methods raw pca-4 ...]

Persons in three folds; each rotation takes one fold as the cohort (the "enrolled templates"
every label-free statistic is fitted on: one reference template per person, no label), one as
the fit fold (the 1:1 threshold at FMR 1e-3 over all its impostor pairs; the 1:N threshold at
FPIR 1e-3 over its flights' non-mated searches) and measures the third; three rotations hold
every person out once. So the cohort, the threshold and the measured persons are disjoint.

1:1 (capture recipe on both sides, as ``evaluate lfw``): within-sex FMR and FNMR of the
held-out persons at the refitted threshold, 95% intervals resampling persons, the F/M FMR
ratio's interval resampling both groups. 1:N: 300-traveler flights with one reference
(reference recipe) drawn within the fit and the held-out folds, every photo of the persons
not aboard a non-mated search; held-out FPIR and FNIR, overall and by the probe's sex.

Methods (each fitted on the cohort fold's templates only):
- ``raw``: cosine;
- ``center``: subtract the cohort mean, renormalise, cosine;
- ``pca-K``: subtract the cohort mean, remove the cohort's top K principal directions,
  renormalise, cosine (the leading directions of face space carry sex, age, pose, light);
- ``csls-K``: cross-domain similarity local scaling 2 cos(a, b) - r(a) - r(b), r the mean of a
  template's K highest cohort similarities (hubness reduction, Conneau et al. 2018);
  ``hub-K-A``: cos(a, b) - A (r(a) + r(b)) / 2, a stronger (A > 1) correction;
- ``ls-K``: local scaling -d^2 / (sigma_a sigma_b), sigma the distance to the K-th nearest
  cohort template (Zelnik-Manor and Perona 2004; hubness, Schnitzer et al. 2012);
- ``mp``: mutual proximity, Gaussian form: P(a's cohort score < s) P(b's cohort score < s),
  ranked by -log(1 - MP) (Schnitzer et al. 2012);
- ``as-norm``: adaptive S-norm, top 100 (the product's domain function);
- with ``--dlib``: the same on dlib's descriptor (``dlib:raw`` ...) and on the fused template
  [sqrt(w) sface, sqrt(1 - w) dlib] (``fuse-W:raw`` ...): cosine w s_sface + (1 - w) s_dlib.

Labels are read for the report only; no method sees them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr  # type: ignore[import-untyped]

from entryexit.biometrics.engine import FaceEngine
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.domain.normalisation import s_norm, top_k_statistics
from entryexit.evaluation.crossval import (
    Population,
    embed_population,
    person_folds,
    population_of,
)
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import CAPTURE_RECIPE, embed_files_cached
from entryexit.evaluation.fairness import MIN_GENUINE_PAIRS, person_rate, read_labels
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.verification_cv import PairMatrix, per_person_counts, ratio_interval

Matrix = NDArray[np.float64]
Scorer = Callable[[NDArray[np.floating], NDArray[np.floating]], Matrix]


def unit(rows: NDArray[np.floating]) -> NDArray[np.float64]:
    data = np.asarray(rows, dtype=np.float64)
    normalised: NDArray[np.float64] = data / np.maximum(
        np.linalg.norm(data, axis=1, keepdims=True), 1e-12
    )
    return normalised


def fit_method(name: str, cohort: NDArray[np.floating]) -> Scorer:
    """A scorer fitted on the cohort's templates (rows, unit length)."""
    cohort = unit(cohort)
    if name == "raw":
        return lambda a, b: np.asarray(unit(a) @ unit(b).T)
    if name == "center" or name.startswith("pca-"):
        mean = cohort.mean(axis=0)
        removed = 0 if name == "center" else int(name.split("-")[1])
        _, _, directions = np.linalg.svd(cohort - mean, full_matrices=False)
        top = directions[:removed]

        def project(rows: NDArray[np.floating]) -> NDArray[np.float64]:
            centred = unit(rows) - mean
            return unit(centred - (centred @ top.T) @ top)

        return lambda a, b: np.asarray(project(a) @ project(b).T)
    if name.startswith(("csls-", "hub-")):
        # hub-K-A: cos(a, b) - A (r(a) + r(b)) / 2; csls-K ranks as hub-K-1.
        k = int(name.split("-")[1])
        weight = float(name.split("-")[2]) if name.startswith("hub-") else 1.0

        def r(rows: NDArray[np.floating]) -> NDArray[np.float64]:
            scores = unit(rows) @ cohort.T
            return np.asarray(-np.sort(-scores, axis=1)[:, :k].mean(axis=1))

        if name.startswith("csls-"):
            return lambda a, b: np.asarray(
                2 * (unit(a) @ unit(b).T) - r(a)[:, None] - r(b)[None, :]
            )
        return lambda a, b: np.asarray(
            (unit(a) @ unit(b).T) - weight * 0.5 * (r(a)[:, None] + r(b)[None, :])
        )
    if name.startswith("ls-"):
        k = int(name.split("-")[1])

        def sigma(rows: NDArray[np.floating]) -> NDArray[np.float64]:
            scores = -np.sort(-(unit(rows) @ cohort.T), axis=1)[:, k - 1]
            return np.sqrt(np.maximum(2 - 2 * scores, 1e-9))

        def local_scaling(a: NDArray[np.floating], b: NDArray[np.floating]) -> Matrix:
            distance2 = np.maximum(2 - 2 * (unit(a) @ unit(b).T), 0.0)
            return np.asarray(-distance2 / (sigma(a)[:, None] * sigma(b)[None, :]))

        return local_scaling
    if name == "mp":

        def moments(rows: NDArray[np.floating]) -> tuple[Matrix, Matrix]:
            scores = unit(rows) @ cohort.T
            return scores.mean(axis=1), np.maximum(scores.std(axis=1), 1e-3)

        def mutual_proximity(a: NDArray[np.floating], b: NDArray[np.floating]) -> Matrix:
            raw = unit(a) @ unit(b).T
            (ma, sa), (mb, sb) = moments(a), moments(b)
            # log P(X > s) for each side; 1 - MP = pa + pb - pa pb.
            la = log_ndtr(-(raw - ma[:, None]) / sa[:, None])
            lb = log_ndtr(-(raw - mb[None, :]) / sb[None, :])
            high, low = np.maximum(la, lb), np.minimum(la, lb)
            log_either = high + np.log1p(np.exp(low - high) - np.exp(low))
            return np.asarray(-log_either)

        return mutual_proximity
    if name == "as-norm":

        def as_norm(a: NDArray[np.floating], b: NDArray[np.floating]) -> Matrix:
            ua, ub = unit(a), unit(b)
            stats_a = top_k_statistics(ua @ cohort.T, 100, None)
            stats_b = top_k_statistics(ub @ cohort.T, 100, None)
            return np.asarray(s_norm(ua @ ub.T, stats_b, stats_a))

        return as_norm
    raise SystemExit(f"unknown method {name!r}")


@dataclass(frozen=True, slots=True)
class Space:
    """Row-aligned capture and reference templates of one feature space."""

    captures: NDArray[np.float32]
    references: NDArray[np.float32]


def rotations(folds: Sequence[Sequence[int]]) -> list[tuple[list[int], list[int], list[int]]]:
    n = len(folds)
    return [(list(folds[k]), list(folds[(k + 1) % n]), list(folds[(k + 2) % n])) for k in range(n)]


def rows_of(population: Population, persons: Sequence[int]) -> NDArray[np.int64]:
    return np.array(sorted(i for p in persons for i in population.images_of[p]), dtype=np.int64)


def upper_impostors(scores: Matrix, owners: NDArray[np.int64]) -> Matrix:
    mask = np.triu(np.ones(scores.shape, dtype=bool), k=1) & (owners[:, None] != owners[None, :])
    return np.asarray(scores[mask], dtype=np.float64)


def verification(
    population: Population,
    space: Space,
    method: str,
    folds: Sequence[Sequence[int]],
    fixed: float | None,
    rng: np.random.Generator,
) -> dict[str, Any]:
    owners_all = population.person_of_image()
    persons = int(max(population.images_of)) + 1
    groups = sorted(set(population.group_of_person.values()))
    group_of_image = np.array(
        [population.group_of_person.get(int(o), "") for o in owners_all], dtype=str
    )
    slots = {g: [np.zeros(persons, dtype=np.int64) for _ in range(4)] for g in groups}
    thresholds, held_out = [], []
    for cohort, fit, test in rotations(folds):
        cohort_rows = [population.images_of[p][0] for p in cohort]
        scorer = fit_method(method, space.references[cohort_rows])
        fit_rows, test_rows = rows_of(population, fit), rows_of(population, test)
        fit_scores = scorer(space.captures[fit_rows], space.captures[fit_rows])
        threshold = (
            fixed
            if fixed is not None
            else threshold_at_far(upper_impostors(fit_scores, owners_all[fit_rows]), 1e-3)
        )
        thresholds.append(threshold)
        test_scores = scorer(space.captures[test_rows], space.captures[test_rows])
        # Symmetrise (AS-norm and the like are symmetric already; guard against rounding).
        test_scores = 0.5 * (test_scores + test_scores.T)
        matrix = PairMatrix(test_scores, owners_all[test_rows])
        held_out.append(float(np.mean(matrix.impostor_scores() >= threshold)))
        for group in groups:
            counts = per_person_counts(matrix, threshold, persons, group_of_image[test_rows], group)
            for k in range(4):
                slots[group][k] += counts[k]
    report: dict[str, Any] = {"thresholds": thresholds, "held_out_fmr": held_out}
    for group, (fe, ft, ge, gt) in slots.items():
        report[group] = {
            "fmr": person_rate(fe, ft, rng, 10_000),
            "fnmr_person": person_rate(ge, gt, rng, MIN_GENUINE_PAIRS, person_averaged=True),
            "fnmr_pairs": person_rate(ge, gt, rng, MIN_GENUINE_PAIRS),
        }
    first, second = groups
    report["ratio"] = ratio_interval(
        slots[first][0], slots[first][1], slots[second][0], slots[second][1], rng
    )
    return report


def flights(
    population: Population,
    pool: Sequence[int],
    count: int,
    rng: np.random.Generator,
    travelers: int = 300,
) -> list[tuple[list[int], list[tuple[int, int]], list[int]]]:
    drawn = []
    for _ in range(count):
        aboard = [
            int(p) for p in rng.choice(pool, size=min(travelers, len(pool) // 2), replace=False)
        ]
        chosen = set(aboard)
        mated = [(i, row) for row, p in enumerate(aboard) for i in population.images_of[p][1:]]
        non_mated = [i for p in pool if p not in chosen for i in population.images_of[p]]
        drawn.append((aboard, mated, non_mated))
    return drawn


def identification(
    population: Population,
    space: Space,
    method: str,
    folds: Sequence[Sequence[int]],
    draws: int,
    seed: int,
) -> dict[str, Any]:
    owners = population.person_of_image()
    group_of = population.group_of_person
    tally: dict[str, dict[str, int]] = {}
    fpir_per_flight: list[float] = []
    thresholds = []
    for number, (cohort, fit, test) in enumerate(rotations(folds)):
        cohort_rows = [population.images_of[p][0] for p in cohort]
        scorer = fit_method(method, space.references[cohort_rows])

        def search(
            flight: tuple[list[int], list[tuple[int, int]], list[int]], scorer: Scorer = scorer
        ) -> tuple[Matrix, NDArray[np.bool_], Matrix]:
            aboard, mated, non_mated = flight
            gallery = space.references[[population.images_of[p][0] for p in aboard]]
            mated_scores = scorer(space.captures[[i for i, _ in mated]], gallery)
            truth = np.array([row for _, row in mated])
            correct = mated_scores.argmax(axis=1) == truth
            return (
                mated_scores.max(axis=1),
                correct,
                scorer(space.captures[non_mated], gallery).max(axis=1),
            )

        rng = np.random.default_rng([seed, number])
        fit_tops = [search(f)[2] for f in flights(population, fit, draws, rng)]
        threshold = threshold_at_far(np.concatenate(fit_tops), 1e-3)
        thresholds.append(threshold)
        for flight in flights(population, test, draws, rng):
            mated_top, correct, non_mated_top = search(flight)
            _, mated, non_mated = flight
            fpir_per_flight.append(float(np.mean(non_mated_top >= threshold)))
            for (image, _), top, right in zip(mated, mated_top, correct, strict=True):
                row = tally.setdefault(group_of.get(int(owners[image]), "?"), _empty())
                row["mated"] += 1
                row["missed"] += int(not (right and top >= threshold))
            for image, top in zip(non_mated, non_mated_top, strict=True):
                row = tally.setdefault(group_of.get(int(owners[image]), "?"), _empty())
                row["non_mated"] += 1
                row["false_positives"] += int(top >= threshold)
    return {"thresholds": thresholds, "by_group": tally, "fpir_per_flight": fpir_per_flight}


def _empty() -> dict[str, int]:
    return {"mated": 0, "missed": 0, "non_mated": 0, "false_positives": 0}


def percent(rate: Any, digits: int = 3) -> str:
    if rate.value is None:
        return f"n/a ({rate.errors}/{rate.trials})"
    value, low, high = rate.value * 100, rate.low * 100, rate.high * 100
    return f"{value:.{digits}f}% [{low:.{digits}f}, {high:.{digits}f}]"


def captures_only_population(
    engine: FaceEngine, args: argparse.Namespace
) -> tuple[Population, dict[str, Any]]:
    dataset = LabelledImages.scan(args.data)
    images = dataset.all_images()
    captured = embed_files_cached(
        engine, [path for _, path in images], args.cache, 2, recipe=CAPTURE_RECIPE
    )
    identity = {name: name for name in dataset.persons}
    if args.same_person is not None:
        for group in read_same_person_groups(args.same_person):
            present = [name for name in group if name in identity]
            for name in present[1:]:
                identity[name] = present[0]
    labels = read_labels(args.labels)
    group_of_image = {
        row: labels[f"{person}/{path.name}"]
        for row, (person, path) in enumerate(images)
        if f"{person}/{path.name}" in labels
    }
    population, _ = population_of(
        captured.vectors,
        captured.vectors,
        captured.enrolled,
        captured.enrolled,
        [identity[person] for person, _ in images],
        group_of_image,
    )
    return population, {"identities": len(population.images_of)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    parser.add_argument("--dlib", action="store_true", help="also dlib and SFace+dlib fusion")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--fusion-weights", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gallery", action="store_true")
    parser.add_argument("--skip-sface", action="store_true", help="with --dlib: only dlib, fusion")
    parser.add_argument(
        "--captures-only",
        action="store_true",
        help="capture-recipe templates stand in for the reference ones (gallery entries and"
        " cohort): no reference embedding pass",
    )
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    if args.captures_only:
        population, facts = captures_only_population(engine, args)
    else:
        population, facts = embed_population(
            engine, args.data, args.cache, 2, args.same_person, args.labels, quality_gate=False
        )
    spaces = {"": Space(population.captures, population.references)}
    if args.dlib:
        from dlib_descriptors import dlib_descriptors

        paths = [path for _, path in LabelledImages.scan(args.data).all_images()]
        described = dlib_descriptors(engine, paths, args.cache)
        keep: NDArray[np.bool_] = np.asarray(described.any(axis=1), dtype=bool)
        # Every method on the same images: those both models described.
        images_of = {p: [i for i in rows if keep[i]] for p, rows in population.images_of.items()}
        population = Population(
            population.captures,
            population.references,
            population.acquired,
            {p: rows for p, rows in images_of.items() if rows},
            population.group_of_person,
        )
        spaces["dlib:"] = Space(described, described)
        for weight in args.fusion_weights:
            a, b = np.sqrt(weight), np.sqrt(1 - weight)
            spaces[f"fuse-{weight}:"] = Space(
                unit(np.hstack([a * population.captures, b * described])).astype(np.float32),
                unit(np.hstack([a * population.references, b * described])).astype(np.float32),
            )
    counts: dict[str, int] = {}
    for group in population.group_of_person.values():
        counts[group] = counts.get(group, 0) + 1
    print(
        f"{len(population.images_of)} identities ({facts['identities']} before), labelled: {counts}"
    )
    folds = person_folds(sorted(population.images_of), 3, np.random.default_rng(args.seed))
    methods = args.methods or [
        "raw",
        "center",
        "pca-1",
        "pca-2",
        "pca-4",
        "pca-8",
        "pca-16",
        "csls-10",
        "ls-10",
        "mp",
        "as-norm",
    ]
    print(
        "\n| method | 1:1 threshold (per rotation) | held-out FMR | FMR F [95%] | FMR M [95%] |"
        " **F/M** [95%] | FNMR F person-avg [95%] | FNMR M person-avg [95%] |"
        " FNMR F / M pairs | 1:N threshold | FPIR (x 1e-3) | flights p95 | FNIR | FNIR F / M |"
        " FPIR F / M |"
    )
    print("| --- " * 15 + "|")
    for prefix, space in spaces.items():
        if args.skip_sface and not prefix:
            continue
        for method in methods:
            rng = np.random.default_rng(args.seed)
            one = verification(population, space, method, folds, None, rng)
            row = [
                f"{prefix}{method}",
                ", ".join(f"{t:.4f}" for t in one["thresholds"]),
                f"{np.mean(one['held_out_fmr']):.2e}",
                percent(one["F"]["fmr"]),
                percent(one["M"]["fmr"]),
                "**{:.2f}** [{:.2f}, {:.2f}]".format(*one["ratio"]),
                percent(one["F"]["fnmr_person"], 2),
                percent(one["M"]["fnmr_person"], 2),
                f"{one['F']['fnmr_pairs'].value * 100:.2f}% / "
                f"{one['M']['fnmr_pairs'].value * 100:.2f}%",
            ]
            if not args.no_gallery:
                many = identification(population, space, method, folds, args.draws, args.seed)
                by = many["by_group"]
                total = {k: sum(r[k] for r in by.values()) for k in _empty()}
                fpir = total["false_positives"] / total["non_mated"]
                row += [
                    ", ".join(f"{t:.4f}" for t in many["thresholds"]),
                    f"{fpir:.2e} ({fpir / 1e-3:.2f}x, {total['false_positives']})",
                    f"{np.percentile(many['fpir_per_flight'], 95):.1e}",
                    f"{100 * total['missed'] / total['mated']:.2f}%",
                    f"{100 * by['F']['missed'] / by['F']['mated']:.2f}% / "
                    f"{100 * by['M']['missed'] / by['M']['mated']:.2f}%",
                    f"{100 * by['F']['false_positives'] / by['F']['non_mated']:.3f}% / "
                    f"{100 * by['M']['false_positives'] / by['M']['non_mated']:.3f}%",
                ]
            else:
                row += [""] * 6
            print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
