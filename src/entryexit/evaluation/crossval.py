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
threshold is therefore a one-sided ``confidence`` bound on that threshold over a
person-level Poisson bootstrap of the fit flights (each non-mated search weighted by its
probe's and its top entry's person weights; median plus the normal quantile times a robust
scale, see :func:`confident_threshold`), so that the shipped threshold errs strict by a
margin measured on the fit data alone, and the held-out figures stay honest.

Scores: ``raw`` cosine similarity; ``z-norm`` of each gallery entry against a cohort of
impostor reference templates; ``as-norm`` (adaptive symmetric normalisation, entry and probe
sides). The cohort is another fold's reference templates, so it never holds anyone on the
flight it normalises (traveler or non-mated capture), in fitting and in measuring alike.
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
    weighting: str = "product",
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
        weight = person_weight[entry]
        if weighting == "product":
            weight = weight * person_weight[probe]
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
    weighting: str = "product",
) -> FittedThreshold:
    pooled = np.concatenate([f.non_mated_top for f in flights])
    point = threshold_at_far(pooled, target)
    replicates = bootstrap_thresholds(flights, target, rng, resamples, weighting)
    return FittedThreshold(
        point, confident_threshold(point, replicates, confidence), float(replicates.std())
    )


def confident_threshold(point: float, replicates: NDArray[np.float64], confidence: float) -> float:
    """A one-sided ``confidence`` bound on the threshold: the bootstrap median plus the
    normal quantile times a robust scale (1.4826 MAD), never below the point estimate.

    The robust scale, not the raw quantile: the threshold is a step function of the data,
    and in a few replicates a cluster of near-identical faces under two names (a label
    error, or twins: cases no threshold separates, left to the errata and to the ambiguity
    rules) takes so much weight that the threshold jumps above the whole cluster. A quantile
    would then follow the jump and cost a fifth of the genuine matches; the MAD does not."""
    median = float(np.median(replicates))
    scale = 1.4826 * float(np.median(np.abs(replicates - median)))
    z = float(_normal_quantile(confidence))
    return max(point, median + z * scale)


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    if not 0 < p < 1:
        raise DatasetError("a confidence lies strictly between 0 and 1")
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.357751867269,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (
        -54.47609879822406,
        161.5858368580409,
        -155.6989798598866,
        66.80131188771972,
        -13.28068155288572,
    )
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = np.sqrt(-2 * np.log(p))
        return float(
            (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        )
    if p > 1 - low:
        return -_normal_quantile(1 - p)
    q = p - 0.5
    r = q * q
    return float(
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    )


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

    folds: int = 3
    repeats: int = 3
    draws: int = 20
    gallery_size: int = 300
    references: tuple[int, ...] = (1, 2)
    # A flight holds at most this share of a fold's eligible persons (so that flights differ;
    # it binds for two references, where few persons have two photos).
    flight_share: float = 0.8
    target: float = 1e-3
    confidence: float = 0.9
    # "product": a search weighs its probe's times its top entry's person weight;
    # "entry": only its top entry's (the gallery side, where attractors sit).
    bootstrap_weighting: str = "product"
    top_k: int = DEFAULT_TOP_K
    scorings: tuple[str, ...] = SCORINGS
    seed: int = 0
    bootstrap_resamples: int = 200
    # Flights smaller than ``gallery_size`` (two references: the data allows ~120 travelers)
    # are fitted and measured at the FPIR that the same per-entry false-match rate gives on
    # them, so every reference count's threshold holds ``target`` on a full-size flight, and
    # so on a flight that mixes counts too. False: the target as is, whatever the size.
    scale_to_gallery_size: bool = True

    def target_for(self, target: float, travelers: int) -> float:
        """The FPIR on a flight of ``travelers`` entries whose per-entry false-match rate
        gives ``target`` on ``gallery_size`` entries: 1 - (1 - target)^(travelers / size)."""
        if not self.scale_to_gallery_size or travelers >= self.gallery_size:
            return target
        return float(1 - (1 - target) ** (travelers / self.gallery_size))


def gallery_size_for(
    population: Population, folds: list[list[int]], references: int, config: CrossValidation
) -> int:
    """The configured size (300), or as many travelers as every fold allows (a share of the
    fewest eligible persons in any fold): with two references, fewer."""
    eligible = min(
        sum(1 for p in fold if len(population.images_of[p]) >= references) for fold in folds
    )
    return min(config.gallery_size, int(eligible * config.flight_share))


def _pooled_flights(
    population: Population,
    pools: Sequence[Sequence[int]],
    cohorts: Sequence[Sequence[int] | None],
    references: int,
    size: int,
    draws: int,
    config: CrossValidation,
    rng: np.random.Generator,
) -> dict[str, list[FlightScores]]:
    """``draws`` flights spread over the pools in turn, the k-th pool's flights normalised
    by the k-th cohort (persons disjoint from the pool), scored every configured way."""
    scored: dict[str, list[FlightScores]] = {scoring: [] for scoring in config.scorings}
    contexts: dict[int, SplitContext] = {}
    for draw in range(draws):
        k = draw % len(pools)
        if k not in contexts:
            cohort_persons = cohorts[k]
            cohort = (
                Cohort.of(population, cohort_persons, config.top_k)
                if cohort_persons is not None
                else None
            )
            contexts[k] = split_context(population, pools[k], references, cohort)
        flight = draw_flight(population, pools[k], size, references, rng)
        for scoring in config.scorings:
            scored[scoring].append(score_flight(contexts[k], flight, scoring))
    return scored


def _bootstrap_rng(seed: int, split: int, references: int, scoring: str) -> np.random.Generator:
    """A bootstrap stream of its own per split, reference count and scoring, so that the
    flights (drawn from the main stream) and every scoring's results do not depend on which
    other scorings were asked for."""
    return np.random.default_rng([seed, split, references, SCORINGS.index(scoring)])


def _needs_cohort(config: CrossValidation) -> bool:
    return any(scoring != RAW for scoring in config.scorings)


def cross_validate(population: Population, config: CrossValidation) -> dict[str, Any]:
    """Every split: fit on flights of the other folds' persons, measure on flights of the
    held-out fold's persons.

    Flights are drawn within one fold at a time, so that a cohort can be another fold: the
    fit flights of fold j are normalised by fold j+1, the held-out flights by the fit folds in
    turn; every flight, fitted or held out, is drawn from and normalised by the same number
    of persons, and its cohort never holds anyone on it (traveler or non-mated capture).
    Normalised scorings need at least three folds; raw scores work with two."""
    if _needs_cohort(config) and config.folds < 3:
        raise DatasetError("normalised scores need three folds or more (a cohort fold)")
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
            others = [fold for k, fold in enumerate(folds) if k != index]
            fit_cohorts: list[Sequence[int] | None] = [
                others[(k + 1) % len(others)] if _needs_cohort(config) else None
                for k in range(len(others))
            ]
            test_cohorts: list[Sequence[int] | None] = [
                fold if _needs_cohort(config) else None for fold in others
            ]
            split: dict[str, Any] = {
                "repeat": repeat,
                "fold": index,
                "fit_persons": sum(len(fold) for fold in others),
                "held_out_persons": len(test),
                "thresholds": {},
            }
            for references in config.references:
                size = sizes[references]
                fit_scored = _pooled_flights(
                    population, others, fit_cohorts, references, size, config.draws, config, rng
                )
                test_scored = _pooled_flights(
                    population,
                    [test] * len(others),
                    test_cohorts,
                    references,
                    size,
                    config.draws,
                    config,
                    rng,
                )
                for scoring in config.scorings:
                    fitted = fit_threshold(
                        fit_scored[scoring],
                        config.target_for(config.target, size),
                        config.confidence,
                        _bootstrap_rng(config.seed, len(splits), references, scoring),
                        config.bootstrap_resamples,
                        config.bootstrap_weighting,
                    )
                    split["thresholds"][f"{references}:{scoring}"] = {
                        "point": fitted.point,
                        "confident": fitted.confident,
                        "bootstrap_std": fitted.bootstrap_std,
                    }
                    held[(len(splits), references, scoring)] = test_scored[scoring]
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
        target = config.target_for(config.target, result["gallery_sizes"][references])
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
                entry[rule] = _pooled(pairs, target)
            if scoring == RAW and fixed_thresholds:
                for name, threshold in fixed_thresholds.items():
                    entry[name] = _pooled(
                        [(threshold, flights) for _, flights in rules["point"]], target
                    )
            entry["target"] = target
            entry["thresholds"] = spread(np.array([t for t, _ in rules["confident"]]))
            entry["point_thresholds"] = spread(np.array([t for t, _ in rules["point"]]))
            summary[f"{references}:{scoring}"] = entry
    return summary


def _pooled(pairs: list[tuple[float, list[FlightScores]]], target: float) -> dict[str, Any]:
    false_positives = searches = misses = mated = 0
    per_flight_fpir, per_flight_fnir, per_split_fpir = [], [], []
    per_flight_count: list[int] = []
    for threshold, flights in pairs:
        per_flight_count += [f.false_positives(threshold) for f in flights]
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
    counts = np.array(per_flight_count, dtype=np.float64)
    return {
        "fpir": false_positives / searches,
        "fpir_to_target": false_positives / searches / target,
        # Variance over mean of a flight's false positives: 1 if they fell independently
        # (Poisson), far above 1 when attractors bunch them into a few flights.
        "dispersion": float(counts.var() / counts.mean()) if counts.mean() > 0 else None,
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
    """The thresholds to ship: the same rule on every person (split into ``folds`` pools,
    each pool's flights normalised by the next pool, as in the cross-validation), per
    reference count, scoring and target (``shipped_by_references``: the service holds each
    gallery entry to its own count's), and per scoring and target the strictest over
    reference counts (``shipped``: for counts not calibrated, 3 or more)."""
    rng = np.random.default_rng(config.seed + 1)
    persons = sorted(p for p, images in population.images_of.items() if images)
    pools = person_folds(persons, config.folds, rng)
    cohorts: list[Sequence[int] | None] = [
        pools[(k + 1) % len(pools)] if _needs_cohort(config) else None for k in range(len(pools))
    ]
    fitted: dict[str, dict[str, dict[str, float]]] = {}
    sizes = {}
    for references in config.references:
        sizes[references] = gallery_size_for(population, pools, references, config)
        scored = _pooled_flights(
            population,
            pools,
            cohorts,
            references,
            sizes[references],
            config.draws * len(pools),
            config,
            rng,
        )
        for scoring in config.scorings:
            for target in targets:
                result = fit_threshold(
                    scored[scoring],
                    config.target_for(target, sizes[references]),
                    config.confidence,
                    _bootstrap_rng(config.seed + 1, int(target * 1e6), references, scoring),
                    config.bootstrap_resamples,
                    config.bootstrap_weighting,
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
    shipped_by_references = {
        scoring: {
            str(r): {
                f"{target:g}": fitted[f"{r}:{scoring}"][f"{target:g}"]["confident"]
                for target in targets
            }
            for r in config.references
        }
        for scoring in config.scorings
    }
    return {
        "fitted": fitted,
        "shipped": shipped,
        "shipped_by_references": shipped_by_references,
        "gallery_sizes": sizes,
    }


def shipped_threshold(threshold: float) -> float:
    """A fitted threshold as shipped: rounded up (strict) to 0.001."""
    return float(np.ceil(threshold * 1000 - 1e-9) / 1000)


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
    by_references = everyone["shipped_by_references"][RAW]
    fitted = everyone["fitted"]
    target = f"{config.target:g}"
    sizes = ", ".join(f"refs_{r} = {s}" for r, s in everyone["gallery_sizes"].items())
    lines = [
        f"[calibration.{recipe}]",
        f"gallery_size = {config.gallery_size}",
        f'source = "{command}"',
        "",
        "# Entries fused from a reference count without a table of its own (3 or more) are",
        "# held to the strictest calibrated threshold.",
        f"[calibration.{recipe}.gallery_fpir]",
        *(f'"{rate}" = {shipped_threshold(threshold):.3f}' for rate, threshold in shipped.items()),
        "",
        f"[calibration.{recipe}.gallery_fpir_by_references]",
        *(
            f'"{references}" = {{ '
            + ", ".join(
                f'"{rate}" = {shipped_threshold(threshold):.3f}'
                for rate, threshold in rates.items()
            )
            + " }"
            for references, rates in by_references.items()
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
        'rule = "per reference count: a one-sided confidence bound (bootstrap median'
        " + z * 1.4826 MAD) on the pooled FPIR threshold of seeded flights, persons resampled"
        " (Poisson weights of probe x top entry), rounded up to 0.001; flights smaller than"
        " gallery_size at the FPIR of the same per-entry rate, 1 - (1 - target)^(n / size);"
        ' reference counts without their own (3 or more): the strictest"',
        f"scale_to_gallery_size = {str(config.scale_to_gallery_size).lower()}",
        f"gallery_sizes = {{ {sizes} }}",
    ]
    for references in config.references:
        point = fitted[f"{references}:{RAW}"][target]["point"]
        confident = fitted[f"{references}:{RAW}"][target]["confident"]
        lines.append(
            f"strict_margin_refs_{references} = {confident - point:.4f}  # shipped bound"
            f" {confident:.4f} above the point fit {point:.4f} (everyone, FPIR {target})"
        )
    for references in config.references:
        held = summary[f"{references}:{RAW}"]["confident"]
        flights = held["fpir_per_flight"]
        scaled = summary[f"{references}:{RAW}"]["target"]
        lines.append(
            f"held_out_fpir_refs_{references} = {held['fpir']:.6f}  # target {scaled:.2e}"
            f" ({target} on {config.gallery_size} travelers; {held['fpir_to_target']:.2f}x);"
            " per-flight p5 / median / p95"
            f" {flights['p5']:.5f} / {flights['median']:.5f} / {flights['p95']:.5f};"
            f" FNIR {held['fnir']:.4f}"
        )
    return "\n".join(lines) + "\n"
