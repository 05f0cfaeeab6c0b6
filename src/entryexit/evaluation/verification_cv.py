"""1:1 thresholds and their demographic differentials on held-out persons.

Persons are split into folds; for each fold the 1:1 thresholds (FMR targets) are fitted on
every impostor pair among the *other* folds' images and the held-out fold's pairs are
measured: overall FMR, and per group (sex, for lfw-dev) the within-group FMR and the FNMR,
with raw scores and with adaptive S-norm scores (cohort: the fit persons' reference
templates). Every person is held out exactly once, so the per-group rates pool every person,
each scored at a threshold and with a cohort that never saw them. Intervals resample
persons; a ratio's interval resamples the persons of both groups.

Groups label persons for the report only; no threshold or score depends on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.domain.normalisation import s_norm
from entryexit.evaluation.crossval import Cohort, Population
from entryexit.evaluation.fairness import MIN_GENUINE_PAIRS, person_rate
from entryexit.evaluation.metrics import threshold_at_far

RAW = "raw"
AS_NORM = "as-norm"
# Fair score normalisation (Terhoerst et al., "Post-comparison mitigation of demographic bias
# in face recognition using fair score normalization", Pattern Recognition Letters 2020):
# unsupervised clusters of the templates, each cluster's own FMR threshold on the fit
# persons' impostor pairs, and every score shifted by the mean of its two templates'
# cluster offsets (global threshold minus cluster threshold). No label enters: the clusters
# are found in the templates alone, which is also why they may stand in for a group.
FSN = "fsn"


@dataclass(frozen=True, slots=True)
class FairScoreNormalisation:
    """Cluster centres (unit rows) and each cluster's offset to add (half per template)."""

    centres: NDArray[np.float64]
    offsets: NDArray[np.float64]

    def cluster_of(self, vectors: NDArray[np.floating]) -> NDArray[np.int64]:
        return np.asarray(np.argmax(np.asarray(vectors) @ self.centres.T, axis=1), dtype=np.int64)

    def normalise(
        self, raw: NDArray[np.floating], first: NDArray[np.floating], second: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        shift_first = self.offsets[self.cluster_of(first)]
        shift_second = self.offsets[self.cluster_of(second)]
        return np.asarray(raw, dtype=np.float64) + 0.5 * (
            shift_first[:, np.newaxis] + shift_second[np.newaxis, :]
        )


def spherical_k_means(
    vectors: NDArray[np.floating], clusters: int, rng: np.random.Generator, iterations: int = 30
) -> NDArray[np.float64]:
    """Unit cluster centres of unit vectors (Lloyd's iterations on cosine similarity, seeded
    from distinct rows); an emptied cluster is reseeded at the worst-served vector."""
    data = np.asarray(vectors, dtype=np.float64)
    centres = data[rng.choice(len(data), size=clusters, replace=False)].copy()
    for _ in range(iterations):
        similarity = data @ centres.T
        assigned = np.argmax(similarity, axis=1)
        for cluster in range(clusters):
            members = data[assigned == cluster]
            if len(members) == 0:
                members = data[[int(np.argmin(similarity.max(axis=1)))]]
            mean = members.sum(axis=0)
            centres[cluster] = mean / np.linalg.norm(mean)
    return centres


def fit_fair_score_normalisation(
    vectors: NDArray[np.floating],
    owners: NDArray[np.int64],
    clusters: int,
    target: float,
    rng: np.random.Generator,
) -> FairScoreNormalisation:
    """Centres from the fit templates; each cluster's threshold at FMR ``target`` over the
    impostor pairs in which one of its templates takes part, the global one over all."""
    centres = spherical_k_means(vectors, clusters, rng)
    model = FairScoreNormalisation(centres, np.zeros(clusters))
    assigned = model.cluster_of(vectors)
    raw = np.asarray(vectors @ vectors.T, dtype=np.float64)
    impostor = owners[:, np.newaxis] != owners[np.newaxis, :]
    upper = np.triu(np.ones(raw.shape, dtype=bool), k=1)
    global_threshold = threshold_at_far(raw[upper & impostor], target)
    offsets = np.zeros(clusters)
    for cluster in range(clusters):
        rows = assigned == cluster
        scores = raw[rows][impostor[rows]]
        if scores.size >= 10 / target:
            offsets[cluster] = global_threshold - threshold_at_far(scores, target)
    return FairScoreNormalisation(centres, offsets)


@dataclass(frozen=True, slots=True)
class PairMatrix:
    """Every pair of a set of images: the score matrix (upper triangle used), the owners."""

    scores: NDArray[np.float64]
    owners: NDArray[np.int64]

    def impostor_scores(self, same_group: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        upper = np.triu(np.ones(self.scores.shape, dtype=bool), k=1)
        mask = upper & (self.owners[:, None] != self.owners[None, :])
        if same_group is not None:
            mask &= same_group
        return np.asarray(self.scores[mask], dtype=np.float64)


def pair_matrix(
    population: Population,
    rows: NDArray[np.int64],
    scoring: str,
    cohort: Cohort,
    fair: FairScoreNormalisation | None = None,
) -> PairMatrix:
    owners = population.person_of_image()[rows]
    vectors = population.captures[rows]
    raw = np.asarray(vectors @ vectors.T, dtype=np.float64)
    if scoring == RAW:
        return PairMatrix(raw, owners)
    if scoring == FSN:
        if fair is None:
            raise ValueError("fair score normalisation needs its fitted clusters")
        return PairMatrix(fair.normalise(raw, vectors, vectors), owners)
    stats = cohort.statistics(vectors, owners)
    return PairMatrix(s_norm(raw, stats, stats), owners)


def per_person_counts(
    matrix: PairMatrix, threshold: float, persons: int, group_of_row: NDArray[np.str_], group: str
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Within-group impostor errors/trials and genuine errors/trials per person (each pair
    charged to both its persons; rates are unchanged and resampling stays per person)."""
    in_group = group_of_row == group
    upper = np.triu(np.ones(matrix.scores.shape, dtype=bool), k=1)
    both = in_group[:, None] & in_group[None, :] & upper
    same = matrix.owners[:, None] == matrix.owners[None, :]
    accepted = matrix.scores >= threshold
    counts = []
    for mask, error in ((both & ~same, accepted), (both & same, ~accepted)):
        first, second = np.nonzero(mask)
        wrong = error[first, second].astype(np.float64)
        owners = np.concatenate([matrix.owners[first], matrix.owners[second]])
        errors = np.bincount(owners, weights=np.concatenate([wrong, wrong]), minlength=persons)
        trials = np.bincount(owners, minlength=persons)
        counts += [errors.astype(np.int64), trials.astype(np.int64)]
    return counts[0], counts[1], counts[2], counts[3]


def ratio_interval(
    errors_a: NDArray[np.int64],
    trials_a: NDArray[np.int64],
    errors_b: NDArray[np.int64],
    trials_b: NDArray[np.int64],
    rng: np.random.Generator,
    resamples: int = 1000,
) -> tuple[float | None, float | None, float | None]:
    """Rate of A over rate of B (pair-weighted), with a 95% interval resampling each group's
    persons; None where B has no errors."""
    keep_a, keep_b = trials_a > 0, trials_b > 0
    ea, ta, eb, tb = errors_a[keep_a], trials_a[keep_a], errors_b[keep_b], trials_b[keep_b]
    if eb.sum() == 0 or ta.sum() == 0:
        return None, None, None
    value = (ea.sum() / ta.sum()) / (eb.sum() / tb.sum())
    pa = rng.integers(0, ea.size, size=(resamples, ea.size))
    pb = rng.integers(0, eb.size, size=(resamples, eb.size))
    rate_b = eb[pb].sum(axis=1) / tb[pb].sum(axis=1)
    ratios = (ea[pa].sum(axis=1) / ta[pa].sum(axis=1)) / np.where(rate_b > 0, rate_b, np.nan)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(value), float(low), float(high)


def verification_cross_validation(
    population: Population,
    folds: Sequence[Sequence[int]],
    targets: Sequence[float],
    fixed: Mapping[str, float],
    top_k: int,
    seed: int = 0,
    fairness_target: float = 1e-3,
    fsn_clusters: int = 0,
) -> dict[str, Any]:
    """Fit thresholds per fold on the others, measure the held-out fold; pool per person.
    ``fsn_clusters``: also fair score normalisation with that many clusters, fitted on the
    fit fold's templates at ``fairness_target``."""
    rng = np.random.default_rng(seed)
    owners_all = population.person_of_image()
    persons = int(max(population.images_of)) + 1
    groups = sorted(set(population.group_of_person.values()))
    group_of_image = np.array(
        [population.group_of_person.get(int(o), "") for o in owners_all], dtype=str
    )
    overall: dict[str, dict[str, list[float]]] = {}
    # (scoring, threshold name) -> group -> four per-person count arrays (summed over folds)
    tallies: dict[tuple[str, str], dict[str, list[NDArray[np.int64]]]] = {}
    thresholds_seen: dict[str, list[float]] = {}
    for index, test in enumerate(folds):
        fit = [p for k, fold in enumerate(folds) if k != index for p in fold]
        cohort = Cohort.of(population, fit, top_k)
        fit_rows = np.array(sorted(i for p in fit for i in population.images_of[p]))
        test_rows = np.array(sorted(i for p in test for i in population.images_of[p]))
        fair = (
            fit_fair_score_normalisation(
                population.captures[fit_rows],
                owners_all[fit_rows],
                fsn_clusters,
                fairness_target,
                np.random.default_rng([seed, index]),
            )
            if fsn_clusters
            else None
        )
        for scoring in (RAW, AS_NORM, FSN) if fair is not None else (RAW, AS_NORM):
            fit_pairs = pair_matrix(population, fit_rows, scoring, cohort, fair).impostor_scores()
            test_matrix = pair_matrix(population, test_rows, scoring, cohort, fair)
            test_impostors = test_matrix.impostor_scores()
            named: dict[str, float] = {}
            for target in targets:
                threshold = threshold_at_far(fit_pairs, target)
                name = f"FMR {target:g}"
                named[name] = threshold
                thresholds_seen.setdefault(f"{scoring}:{name}", []).append(threshold)
                overall.setdefault(f"{scoring}:{name}", {"fmr": [], "trials": []})
                overall[f"{scoring}:{name}"]["fmr"].append(
                    float(np.mean(test_impostors >= threshold))
                )
                overall[f"{scoring}:{name}"]["trials"].append(float(test_impostors.size))
            if scoring == RAW:
                named.update(fixed)
            for name, threshold in named.items():
                if name.startswith("FMR ") and name != f"FMR {fairness_target:g}":
                    continue
                for group in groups:
                    counts = per_person_counts(
                        test_matrix, threshold, persons, group_of_image[test_rows], group
                    )
                    slot = tallies.setdefault((scoring, name), {}).setdefault(
                        group, [np.zeros(persons, dtype=np.int64) for _ in range(4)]
                    )
                    for k in range(4):
                        slot[k] += counts[k]
    report: dict[str, Any] = {
        "folds": len(folds),
        "thresholds": {
            name: {"per_fold": values, "mean": float(np.mean(values))}
            for name, values in thresholds_seen.items()
        },
        "held_out_fmr": {
            name: {
                "per_fold": rows["fmr"],
                "pooled": float(np.average(rows["fmr"], weights=rows["trials"])),
                "impostor_pairs": int(sum(rows["trials"])),
            }
            for name, rows in overall.items()
        },
        "by_group": {},
    }
    minimum_impostors = int(np.ceil(10 / fairness_target))
    for (scoring, name), by_group in tallies.items():
        rows_out: dict[str, Any] = {}
        for group, (fe, ft, ge, gt) in by_group.items():
            rows_out[group] = {
                "fmr": person_rate(fe, ft, rng, minimum_impostors).as_dict(),
                "fnmr_pair_weighted": person_rate(ge, gt, rng, MIN_GENUINE_PAIRS).as_dict(),
                "fnmr_person_averaged": person_rate(
                    ge, gt, rng, MIN_GENUINE_PAIRS, person_averaged=True
                ).as_dict(),
            }
        if len(groups) == 2:
            first, second = groups
            ratio = ratio_interval(
                by_group[first][0],
                by_group[first][1],
                by_group[second][0],
                by_group[second][1],
                rng,
            )
            rows_out["fmr_ratio"] = {
                "groups": f"{first}/{second}",
                "value": ratio[0],
                "ci95": [ratio[1], ratio[2]],
            }
        report["by_group"][f"{scoring}:{name}"] = rows_out
    return report
