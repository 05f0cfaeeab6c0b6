"""Person-disjoint cross-validated calibration of the 1:N threshold, with and without
attractor-aware score normalisation.

The question a calibration must answer is how the threshold behaves on people it has never
seen. So the persons are split into ``folds`` (repeated ``repeats`` times with fresh
shuffles); for each split a threshold is fitted on seeded flights drawn only from the *fit*
persons and then measured on flights drawn only from the *held-out* persons (gallery and
non-mated captures alike). Pooled over every held-out flight, the false positive
identification rate (FPIR) at the fitted threshold is what a deployment can expect; the
spread over flights is what one flight can see.

A fitted threshold is the target quantile of the pooled non-mated top scores (the previous
method). Its uncertainty comes from *persons*: a few attractor templates take most false
positives, and whether the fit persons hold such a template is luck. The *confident*
threshold is therefore the ``confidence`` quantile of that threshold over a person-level
Poisson bootstrap of the fit flights (each non-mated search weighted by its probe's and its
top entry's person weights), so that the shipped threshold errs strict by a margin measured
on the fit data alone, and the held-out figures stay honest.

Scores: ``raw`` cosine similarity; ``z-norm`` of each gallery entry against a cohort of
impostor reference templates; ``as-norm`` (adaptive symmetric normalisation, entry and probe
sides). The cohort is always persons disjoint from the person scored: the fit persons'
reference templates (a template's own person left out), so held-out flights are normalised
by persons who are not on them at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceEngine
from entryexit.domain.normalisation import (
    DEFAULT_TOP_K,
    CohortStatistics,
    s_norm,
    top_k_statistics,
    z_norm,
)
from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import (
    CAPTURE_RECIPE,
    REFERENCE_RECIPE,
    ProgressCallback,
    embed_files_cached,
)
from entryexit.evaluation.fairness import read_labels
from entryexit.evaluation.metrics import threshold_at_far

RAW = "raw"
Z_NORM = "z-norm"
AS_NORM = "as-norm"
SCORINGS = (RAW, Z_NORM, AS_NORM)


@dataclass(frozen=True, slots=True)
class Population:
    """Templates of a labelled collection, row per image.

    ``captures``: the capture recipe; ``references``: the reference recipe (at least for each
    identity's first photos); ``acquired``: the quality gate's verdict (a capture it refuses
    is a failure to acquire, counted in FNIR); ``images_of``: each identity's enrolled images
    in order; ``group_of_person``: an optional label (for reports only, never for a decision).
    """

    captures: NDArray[np.float32]
    references: NDArray[np.float32]
    acquired: NDArray[np.bool_]
    images_of: Mapping[int, Sequence[int]]
    group_of_person: Mapping[int, str] = field(default_factory=dict)

    def person_of_image(self) -> NDArray[np.int64]:
        owner = np.full(len(self.captures), -1, dtype=np.int64)
        for person, images in self.images_of.items():
            owner[list(images)] = person
        return owner

    def entry(self, person: int, references: int) -> NDArray[np.float32]:
        """A gallery entry as the service fuses it: the normalised mean of the references."""
        vector = self.references[list(self.images_of[person][:references])].mean(axis=0)
        return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def person_folds(persons: Sequence[int], folds: int, rng: np.random.Generator) -> list[list[int]]:
    """``folds`` disjoint, near-equal groups of the persons, shuffled."""
    if folds < 2:
        raise DatasetError("person-disjoint cross-validation needs at least two folds")
    if len(persons) < 2 * folds:
        raise DatasetError(f"{len(persons)} persons are too few for {folds} folds")
    order = rng.permutation(np.asarray(persons, dtype=np.int64))
    return [sorted(int(p) for p in part) for part in np.array_split(order, folds)]


@dataclass(frozen=True, slots=True)
class Cohort:
    """Impostor reference templates (one per cohort person) and whose they are."""

    templates: NDArray[np.float32]
    persons: NDArray[np.int64]
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def of(cls, population: Population, persons: Sequence[int], top_k: int) -> Cohort:
        members = [p for p in persons if population.images_of[p]]
        rows = [population.images_of[p][0] for p in members]
        return cls(population.references[rows], np.asarray(members, dtype=np.int64), top_k)

    def statistics(
        self, templates: NDArray[np.float32], owners: NDArray[np.int64]
    ) -> CohortStatistics:
        """Top-k statistics of each template, its own person left out of the cohort."""
        excluded = owners[:, np.newaxis] == self.persons[np.newaxis, :]
        return top_k_statistics(templates @ self.templates.T, self.top_k, excluded)


@dataclass(frozen=True, slots=True)
class FlightScores:
    """One flight under one scoring: per mated capture its top score and whether the top
    entry is its own; per non-mated capture its top score; groups for the reports."""

    mated_top: NDArray[np.float64]
    mated_correct: NDArray[np.bool_]
    mated_groups: NDArray[np.str_]
    total_mated: int
    missed_groups: NDArray[np.str_]
    non_mated_top: NDArray[np.float64]
    non_mated_groups: NDArray[np.str_]
    non_mated_probe_person: NDArray[np.int64]
    non_mated_entry_person: NDArray[np.int64]

    def fpir(self, threshold: float) -> float:
        return float(np.mean(self.non_mated_top >= threshold))

    def false_positives(self, threshold: float) -> int:
        return int(np.count_nonzero(self.non_mated_top >= threshold))

    def misses(self, threshold: float) -> int:
        hits = int(np.count_nonzero(self.mated_correct & (self.mated_top >= threshold)))
        return self.total_mated - hits


@dataclass(frozen=True, slots=True)
class Flight:
    travelers: tuple[int, ...]
    mated: tuple[tuple[int, int], ...]  # (image, gallery row), acquired or not
    non_mated: tuple[int, ...]


def draw_flight(
    population: Population,
    pool: Sequence[int],
    gallery_size: int,
    references: int,
    rng: np.random.Generator,
) -> Flight:
    """Seeded flight from ``pool``: ``gallery_size`` travelers with at least ``references``
    photos; their other photos are mated captures; every photo of every other pool person is
    a non-mated capture."""
    eligible = [p for p in pool if len(population.images_of[p]) >= references]
    size = min(gallery_size, len(eligible))
    chosen = tuple(int(p) for p in rng.choice(eligible, size=size, replace=False))
    aboard = set(chosen)
    mated = tuple(
        (int(i), row) for row, p in enumerate(chosen) for i in population.images_of[p][references:]
    )
    non_mated = tuple(int(i) for p in pool if p not in aboard for i in population.images_of[p])
    if not mated or not non_mated:
        raise DatasetError("a flight needs mated and non-mated captures; use more persons")
    return Flight(chosen, mated, non_mated)


@dataclass(frozen=True, slots=True)
class SplitContext:
    """What scoring a split's flights needs, computed once per split."""

    population: Population
    owners: NDArray[np.int64]
    references: int
    entries: Mapping[int, int]  # person -> row of entry_templates
    entry_templates: NDArray[np.float32]
    entry_statistics: CohortStatistics | None
    probe_statistics: CohortStatistics | None  # one row per image


def split_context(
    population: Population, persons: Sequence[int], references: int, cohort: Cohort | None
) -> SplitContext:
    eligible = [p for p in persons if len(population.images_of[p]) >= references]
    entries = {p: row for row, p in enumerate(eligible)}
    templates = np.stack([population.entry(p, references) for p in eligible])
    owners = population.person_of_image()
    entry_stats = probe_stats = None
    if cohort is not None:
        entry_stats = cohort.statistics(templates, np.asarray(eligible, dtype=np.int64))
        probe_stats = cohort.statistics(population.captures, owners)
    return SplitContext(
        population, owners, references, entries, templates, entry_stats, probe_stats
    )


def score_flight(context: SplitContext, flight: Flight, scoring: str) -> FlightScores:
    population = context.population
    rows = [context.entries[p] for p in flight.travelers]
    gallery = context.entry_templates[rows]
    acquired = population.acquired
    mated = [(i, row) for i, row in flight.mated if acquired[i]]
    non_mated = [i for i in flight.non_mated if acquired[i]]

    def scored(probes: list[int]) -> NDArray[np.float64]:
        raw = np.asarray(population.captures[probes] @ gallery.T, dtype=np.float64)
        if scoring == RAW:
            return raw
        if context.entry_statistics is None or context.probe_statistics is None:
            raise DatasetError(f"{scoring} scores need a cohort")
        entry_stats = context.entry_statistics.subset(rows)
        if scoring == Z_NORM:
            return z_norm(raw, entry_stats)
        if scoring == AS_NORM:
            return s_norm(raw, entry_stats, context.probe_statistics.subset(probes))
        raise DatasetError(f"unknown scoring {scoring!r}")

    groups = population.group_of_person
    mated_scores = scored([i for i, _ in mated])
    truth = np.array([row for _, row in mated], dtype=np.int64)
    best = mated_scores.argmax(axis=1)
    non_mated_scores = scored(non_mated)
    non_mated_best = non_mated_scores.argmax(axis=1)
    travelers = np.asarray(flight.travelers, dtype=np.int64)
    refused = [i for i, _ in flight.mated if not acquired[i]]
    return FlightScores(
        mated_top=mated_scores[np.arange(len(mated)), best],
        mated_correct=best == truth,
        mated_groups=np.array(
            [groups.get(int(context.owners[i]), "") for i, _ in mated], dtype=str
        ),
        total_mated=len(flight.mated),
        missed_groups=np.array(
            [groups.get(int(context.owners[i]), "") for i in refused], dtype=str
        ),
        non_mated_top=non_mated_scores[np.arange(len(non_mated)), non_mated_best],
        non_mated_groups=np.array(
            [groups.get(int(context.owners[i]), "") for i in non_mated], dtype=str
        ),
        non_mated_probe_person=context.owners[non_mated],
        non_mated_entry_person=travelers[non_mated_best],
    )


def weighted_threshold_at_far(
    scores: NDArray[np.floating], weights: NDArray[np.floating], far: float
) -> float:
    """:func:`threshold_at_far` with a weight per score (a bootstrap replicate)."""
    values = np.asarray(scores, dtype=np.float64)
    weight = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    values, weight = values[order], weight[order]
    cumulative = np.cumsum(weight)
    allowed = far * cumulative[-1]
    over = np.flatnonzero(cumulative > allowed + 1e-12)
    if over.size == 0:
        return float(values[-1])
    return float(np.nextafter(values[over[0]], np.inf))


def bootstrap_thresholds(
    flights: Sequence[FlightScores],
    target: float,
    rng: np.random.Generator,
    resamples: int = 200,
) -> NDArray[np.float64]:
    """The pooled threshold for ``target`` under a person-level Poisson bootstrap: every
    person gets a weight ~ Poisson(1), and a non-mated search the product of its probe's and
    its top entry's weights (the entry's person decides whether an attractor is in)."""
    top = np.concatenate([f.non_mated_top for f in flights])
    probe = np.concatenate([f.non_mated_probe_person for f in flights])
    entry = np.concatenate([f.non_mated_entry_person for f in flights])
    persons = int(max(probe.max(), entry.max())) + 1
    # Only the upper tail can move a low-FPIR threshold; the rest enters through the total.
    keep = np.argsort(-top)[: max(50, int(np.ceil(target * top.size * 20)))]
    rest = np.setdiff1d(np.arange(top.size), keep)
    thresholds = np.empty(resamples, dtype=np.float64)
    for b in range(resamples):
        person_weight = rng.poisson(1.0, size=persons).astype(np.float64)
        weight = person_weight[probe] * person_weight[entry]
        tail_weight = weight[keep]
        total = weight.sum()
        order = np.argsort(-top[keep], kind="stable")
        cumulative = np.cumsum(tail_weight[order])
        over = np.flatnonzero(cumulative > target * total + 1e-12)
        if over.size == 0:
            below = top[rest].max() if rest.size else top[keep][order][-1]
            thresholds[b] = float(np.nextafter(below, np.inf))
        else:
            thresholds[b] = float(np.nextafter(top[keep][order][over[0]], np.inf))
    return thresholds


@dataclass(frozen=True, slots=True)
class FittedThreshold:
    point: float
    confident: float
    bootstrap_std: float


def fit_threshold(
    flights: Sequence[FlightScores],
    target: float,
    confidence: float,
    rng: np.random.Generator,
    resamples: int = 200,
) -> FittedThreshold:
    pooled = np.concatenate([f.non_mated_top for f in flights])
    point = threshold_at_far(pooled, target)
    replicates = bootstrap_thresholds(flights, target, rng, resamples)
    confident = max(point, float(np.quantile(replicates, confidence)))
    return FittedThreshold(point, confident, float(replicates.std()))


def held_out_rates(flights: Sequence[FlightScores], threshold: float) -> dict[str, Any]:
    """Pooled FPIR and FNIR over the flights at one threshold, and their per-flight spread."""
    false_positives = sum(f.false_positives(threshold) for f in flights)
    searches = sum(f.non_mated_top.size for f in flights)
    misses = sum(f.misses(threshold) for f in flights)
    mated = sum(f.total_mated for f in flights)
    per_flight_fpir = np.array([f.fpir(threshold) for f in flights])
    per_flight_fnir = np.array([f.misses(threshold) / f.total_mated for f in flights])
    return {
        "threshold": threshold,
        "fpir": false_positives / searches,
        "false_positives": false_positives,
        "non_mated_searches": searches,
        "fnir": misses / mated,
        "mated": mated,
        "fpir_per_flight": spread(per_flight_fpir),
        "fnir_per_flight": spread(per_flight_fnir),
        "flights": len(flights),
    }


def spread(values: NDArray[np.floating]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "p5": float(np.percentile(array, 5)),
        "median": float(np.median(array)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
        "share_of_flights_above_1_5x": 0.0,
    }


def rates_by_group(flights: Sequence[FlightScores], threshold: float) -> dict[str, dict[str, Any]]:
    """FNIR and FPIR by the probe's group (reports only)."""
    tallies: dict[str, dict[str, int]] = {}
    for f in flights:
        hit = f.mated_correct & (f.mated_top >= threshold)
        for group in np.unique(np.concatenate([f.mated_groups, f.non_mated_groups])):
            if not group:
                continue
            tally = tallies.setdefault(
                str(group), {"mated": 0, "missed": 0, "non_mated": 0, "false_positives": 0}
            )
            in_group = f.mated_groups == group
            refused = int(np.count_nonzero(f.missed_groups == group))
            tally["mated"] += int(in_group.sum()) + refused
            tally["missed"] += int(np.count_nonzero(in_group & ~hit)) + refused
            non_mated = f.non_mated_groups == group
            tally["non_mated"] += int(non_mated.sum())
            tally["false_positives"] += int(
                np.count_nonzero(non_mated & (f.non_mated_top >= threshold))
            )
    return {
        group: {
            **t,
            "fnir": t["missed"] / t["mated"] if t["mated"] else None,
            "fpir": t["false_positives"] / t["non_mated"] if t["non_mated"] else None,
        }
        for group, t in sorted(tallies.items())
    }


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """How to cross-validate: folds x repeats splits, ``draws`` flights per side of each."""

    folds: int = 2
    repeats: int = 5
    draws: int = 20
    gallery_size: int = 300
    references: tuple[int, ...] = (1, 2)
    # A flight holds at most this share of a fold's eligible persons (so that flights differ;
    # it binds for two references, where few persons have two photos).
    flight_share: float = 0.8
    target: float = 1e-3
    confidence: float = 0.9
    top_k: int = DEFAULT_TOP_K
    scorings: tuple[str, ...] = SCORINGS
    seed: int = 0
    bootstrap_resamples: int = 200


def gallery_size_for(
    population: Population, folds: list[list[int]], references: int, config: CrossValidation
) -> int:
    """The configured size (300), or as many travelers as every fold allows (a share of the
    fewest eligible persons in any fold): with two references, fewer."""
    eligible = min(
        sum(1 for p in fold if len(population.images_of[p]) >= references) for fold in folds
    )
    return min(config.gallery_size, int(eligible * config.flight_share))


def cross_validate(population: Population, config: CrossValidation) -> dict[str, Any]:
    """Every split: fit on the fit persons' flights, measure on the held-out persons'.

    Returns per reference count and scoring the fitted thresholds of every split and the
    pooled held-out rates at the fitted point threshold (the previous method), at the
    confident threshold (this method), and at each split's max over reference counts (one
    threshold for a service that cannot know how many photos a traveler has)."""
    rng = np.random.default_rng(config.seed)
    persons = sorted(p for p, images in population.images_of.items() if images)
    held: dict[tuple[int, int, str], list[FlightScores]] = {}
    splits: list[dict[str, Any]] = []
    sizes: dict[int, int] = {}
    for repeat in range(config.repeats):
        folds = person_folds(persons, config.folds, rng)
        for references in config.references:
            sizes[references] = min(
                sizes.get(references, 10**9),
                gallery_size_for(population, folds, references, config),
            )
        for index, test in enumerate(folds):
            fit = [p for k, fold in enumerate(folds) if k != index for p in fold]
            cohort = Cohort.of(population, fit, config.top_k)
            split: dict[str, Any] = {
                "repeat": repeat,
                "fold": index,
                "fit_persons": len(fit),
                "held_out_persons": len(test),
                "thresholds": {},
            }
            for references in config.references:
                context_fit = split_context(population, fit, references, cohort)
                context_test = split_context(population, test, references, cohort)
                fit_flights = [
                    draw_flight(population, fit, sizes[references], references, rng)
                    for _ in range(config.draws)
                ]
                test_flights = [
                    draw_flight(population, test, sizes[references], references, rng)
                    for _ in range(config.draws)
                ]
                for scoring in config.scorings:
                    fitted = fit_threshold(
                        [score_flight(context_fit, f, scoring) for f in fit_flights],
                        config.target,
                        config.confidence,
                        rng,
                        config.bootstrap_resamples,
                    )
                    split["thresholds"][f"{references}:{scoring}"] = {
                        "point": fitted.point,
                        "confident": fitted.confident,
                        "bootstrap_std": fitted.bootstrap_std,
                    }
                    held[(len(splits), references, scoring)] = [
                        score_flight(context_test, f, scoring) for f in test_flights
                    ]
            splits.append(split)
    return {
        "splits": splits,
        "held_out_flights": held,
        "gallery_sizes": sizes,
    }


def summarise(
    result: Mapping[str, Any],
    config: CrossValidation,
    fixed_thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Pooled held-out rates per reference count and scoring, at each split's thresholds."""
    splits: list[dict[str, Any]] = result["splits"]
    held: dict[tuple[int, int, str], list[FlightScores]] = result["held_out_flights"]
    summary: dict[str, Any] = {}
    for references in config.references:
        for scoring in config.scorings:
            rules: dict[str, list[tuple[float, list[FlightScores]]]] = {
                "point": [],
                "confident": [],
                "confident_one_threshold": [],
            }
            for number, split in enumerate(splits):
                flights = held[(number, references, scoring)]
                fitted = split["thresholds"][f"{references}:{scoring}"]
                rules["point"].append((fitted["point"], flights))
                rules["confident"].append((fitted["confident"], flights))
                shared = max(
                    split["thresholds"][f"{r}:{scoring}"]["confident"] for r in config.references
                )
                rules["confident_one_threshold"].append((shared, flights))
            entry: dict[str, Any] = {}
            for rule, pairs in rules.items():
                entry[rule] = _pooled(pairs, config.target)
            if scoring == RAW and fixed_thresholds:
                for name, threshold in fixed_thresholds.items():
                    entry[name] = _pooled(
                        [(threshold, flights) for _, flights in rules["point"]], config.target
                    )
            entry["thresholds"] = spread(np.array([t for t, _ in rules["confident"]]))
            entry["point_thresholds"] = spread(np.array([t for t, _ in rules["point"]]))
            summary[f"{references}:{scoring}"] = entry
    return summary


def _pooled(pairs: list[tuple[float, list[FlightScores]]], target: float) -> dict[str, Any]:
    false_positives = searches = misses = mated = 0
    per_flight_fpir, per_flight_fnir, per_split_fpir = [], [], []
    for threshold, flights in pairs:
        split_fp = sum(f.false_positives(threshold) for f in flights)
        split_searches = sum(f.non_mated_top.size for f in flights)
        false_positives += split_fp
        searches += split_searches
        misses += sum(f.misses(threshold) for f in flights)
        mated += sum(f.total_mated for f in flights)
        per_flight_fpir += [f.fpir(threshold) for f in flights]
        per_flight_fnir += [f.misses(threshold) / f.total_mated for f in flights]
        per_split_fpir.append(split_fp / split_searches)
    flights_fpir = spread(np.array(per_flight_fpir))
    flights_fpir["share_of_flights_above_1_5x"] = float(
        np.mean(np.array(per_flight_fpir) > 1.5 * target)
    )
    split_fpir = spread(np.array(per_split_fpir))
    split_fpir["share_of_flights_above_1_5x"] = float(
        np.mean(np.array(per_split_fpir) > 1.5 * target)
    )
    return {
        "fpir": false_positives / searches,
        "fpir_to_target": false_positives / searches / target,
        "false_positives": false_positives,
        "non_mated_searches": searches,
        "fnir": misses / mated,
        "mated": mated,
        "fpir_per_flight": flights_fpir,
        "fpir_per_split": split_fpir,
        "fnir_per_flight": spread(np.array(per_flight_fnir)),
    }


def population_of(
    captures: NDArray[np.float32],
    references: NDArray[np.float32],
    acquired: NDArray[np.bool_],
    enrolled: NDArray[np.bool_],
    identity_of_image: Sequence[str],
    group_of_image: Mapping[int, str] | None = None,
) -> tuple[Population, list[str]]:
    """A :class:`Population` from row-aligned templates and each image's identity (after any
    same-person errata); images that failed to enrol belong to no one. A person's group is
    the label of their images where all agree (else none)."""
    names = sorted(set(identity_of_image))
    index = {name: i for i, name in enumerate(names)}
    images_of: dict[int, list[int]] = {}
    for row, name in enumerate(identity_of_image):
        if enrolled[row]:
            images_of.setdefault(index[name], []).append(row)
    groups: dict[int, str] = {}
    if group_of_image:
        for person, rows in images_of.items():
            labels = {group_of_image.get(row) for row in rows}
            if len(labels) == 1 and None not in labels:
                groups[person] = str(labels.pop())
    return Population(captures, references, acquired, images_of, groups), names


def embed_population(
    engine: FaceEngine,
    data_dir: Path,
    cache_dir: Path | None,
    threads: int = 2,
    same_person_file: Path | None = None,
    labels_file: Path | None = None,
    quality_gate: bool = True,
    on_total: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Population, dict[str, Any]]:
    """Every image of ``data_dir`` embedded with the capture recipe and with the reference
    recipe (all of them: any image may be a reference or a cohort template in some split;
    one cache serves every run), identities mended by the same-person errata, optional
    group labels (``image<TAB>label``)."""
    dataset = LabelledImages.scan(data_dir)
    images = dataset.all_images()
    paths = [path for _, path in images]
    if on_total is not None:
        on_total(2 * len(paths))
    captured = embed_files_cached(engine, paths, cache_dir, threads, on_progress, CAPTURE_RECIPE)
    enrolled = embed_files_cached(engine, paths, cache_dir, threads, on_progress, REFERENCE_RECIPE)
    identity = {name: name for name in dataset.persons}
    merged = 0
    if same_person_file is not None:
        for group in read_same_person_groups(same_person_file):
            present = [name for name in group if name in identity]
            for name in present[1:]:
                identity[name] = present[0]
            merged += len(present) > 1
    group_of_image: dict[int, str] = {}
    if labels_file is not None:
        labels = read_labels(labels_file)
        for row, (person, path) in enumerate(images):
            label = labels.get(f"{person}/{path.name}")
            if label is not None:
                group_of_image[row] = label
    population, _ = population_of(
        captured.vectors,
        enrolled.vectors,
        captured.acceptable if quality_gate else captured.enrolled,
        captured.enrolled & enrolled.enrolled,
        [identity[person] for person, _ in images],
        group_of_image,
    )
    facts = {
        "data": str(data_dir),
        "images": len(paths),
        "identities": len(population.images_of),
        "same_person_groups_merged": merged,
        "failure_to_enrol": int((~(captured.enrolled & enrolled.enrolled)).sum()),
        "quality_gate": quality_gate,
    }
    return population, facts


def calibrate_on_everyone(
    population: Population, config: CrossValidation, targets: Sequence[float]
) -> dict[str, Any]:
    """The thresholds to ship: the same rule fitted on flights of every person (cohort:
    everyone, each template's own person left out), per reference count, scoring and target,
    and per scoring and target the strictest over reference counts (the service cannot know
    how many photos a traveler's entry fuses)."""
    rng = np.random.default_rng(config.seed + 1)
    persons = sorted(p for p, images in population.images_of.items() if images)
    cohort = Cohort.of(population, persons, config.top_k)
    fitted: dict[str, dict[str, dict[str, float]]] = {}
    sizes = {}
    for references in config.references:
        sizes[references] = gallery_size_for(population, [persons], references, config)
        context = split_context(population, persons, references, cohort)
        flights = [
            draw_flight(population, persons, sizes[references], references, rng)
            for _ in range(config.draws)
        ]
        for scoring in config.scorings:
            scored = [score_flight(context, f, scoring) for f in flights]
            for target in targets:
                result = fit_threshold(
                    scored, target, config.confidence, rng, config.bootstrap_resamples
                )
                fitted.setdefault(f"{references}:{scoring}", {})[f"{target:g}"] = {
                    "point": result.point,
                    "confident": result.confident,
                    "bootstrap_std": result.bootstrap_std,
                }
    shipped = {
        scoring: {
            f"{target:g}": max(
                fitted[f"{r}:{scoring}"][f"{target:g}"]["confident"] for r in config.references
            )
            for target in targets
        }
        for scoring in config.scorings
    }
    return {"fitted": fitted, "shipped": shipped, "gallery_sizes": sizes}


def calibration_toml(
    recipe: str,
    everyone: Mapping[str, Any],
    summary: Mapping[str, Any],
    config: CrossValidation,
    facts: Mapping[str, Any],
    command: str,
) -> str:
    """The ``[calibration.<recipe>]`` tables of a recognizer manifest from a cross-validated
    run, with how they were made (the parser reads the thresholds and ignores the record)."""
    shipped = everyone["shipped"][RAW]
    target = f"{config.target:g}"
    sizes = ", ".join(f"refs_{r} = {s}" for r, s in everyone["gallery_sizes"].items())
    lines = [
        f"[calibration.{recipe}]",
        f"gallery_size = {config.gallery_size}",
        f'source = "{command}"',
        "",
        f"[calibration.{recipe}.gallery_fpir]",
        *(
            f'"{rate}" = {np.ceil(threshold * 1000) / 1000:.3f}'
            for rate, threshold in shipped.items()
        ),
        "",
        f"[calibration.{recipe}.cross_validation]",
        f'data = "{facts["data"]}"',
        f"identities = {facts['identities']}",
        f"images = {facts['images']}",
        f"same_person_groups_merged = {facts['same_person_groups_merged']}",
        f"quality_gate = {str(facts['quality_gate']).lower()}",
        f"folds = {config.folds}",
        f"repeats = {config.repeats}",
        f"flights_per_split_side = {config.draws}",
        f"seed = {config.seed}",
        f"confidence = {config.confidence}",
        f"bootstrap_resamples = {config.bootstrap_resamples}",
        f"cohort_top_k = {config.top_k}",
        'rule = "threshold = max over reference counts of the confidence-quantile of the pooled'
        " FPIR threshold over a person-level Poisson bootstrap of seeded flights; rounded up"
        ' to 0.001"',
        f"gallery_sizes = {{ {sizes} }}",
    ]
    for references in config.references:
        held = summary[f"{references}:{RAW}"]["confident"]
        lines.append(
            f"held_out_fpir_refs_{references} = {held['fpir']:.6f}  # target {target};"
            f" per-flight p5-p95 {held['fpir_per_flight']['p5']:.5f}-"
            f"{held['fpir_per_flight']['p95']:.5f}; FNIR {held['fnir']:.4f}"
        )
    return "\n".join(lines) + "\n"
