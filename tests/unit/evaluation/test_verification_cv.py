"""Fair score normalisation: unsupervised clusters, no labels, and the 1:1 FMR gap it closes
when one region of face space draws more impostor scores than another."""

from __future__ import annotations

import numpy as np

from entryexit.evaluation.crossval import person_folds, population_of
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.verification_cv import (
    FSN,
    RAW,
    fit_fair_score_normalisation,
    spherical_k_means,
    verification_cross_validation,
)


def two_regions(persons: int = 160, seed: int = 0) -> tuple[np.ndarray, list[str], dict[int, str]]:
    """Persons of group A crowd around one direction (their impostors score high), persons
    of group B spread out around the opposite one; three photos each."""
    rng = np.random.default_rng(seed)
    dimension = 16
    hub = np.zeros(dimension)
    hub[0] = 1.0
    rows: list[np.ndarray] = []
    names: list[str] = []
    groups: dict[int, str] = {}
    for person in range(persons):
        crowded = person % 2 == 0
        spread = rng.normal(size=dimension)
        spread[0] = 0.0
        centre = hub + 0.3 * spread if crowded else -hub + 0.8 * spread
        centre /= np.linalg.norm(centre)
        for _ in range(3):
            vector = centre + rng.normal(size=dimension) * 0.1
            groups[len(rows)] = "A" if crowded else "B"
            rows.append(vector / np.linalg.norm(vector))
            names.append(f"p{person:03d}")
    return np.array(rows, dtype=np.float32), names, groups


def test_k_means_finds_unit_centres_of_two_separated_clouds() -> None:
    vectors, _, groups = two_regions()
    centres = spherical_k_means(vectors, 2, np.random.default_rng(1))
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    assigned = np.argmax(vectors @ centres.T, axis=1)
    labels = np.array([groups[i] for i in range(len(vectors))])
    # Each cluster is (almost) one group, though no label was given.
    purity = max(np.mean(assigned[labels == "A"] == k) for k in (0, 1))
    assert purity > 0.9


def test_the_crowded_cluster_gets_a_negative_offset_and_the_gap_closes() -> None:
    vectors, names, groups = two_regions()
    owners = np.array([int(n[1:]) for n in names])
    fair = fit_fair_score_normalisation(vectors, owners, 2, 1e-2, np.random.default_rng(1))
    labels = np.array([groups[i] for i in range(len(vectors))])
    crowded_cluster = np.bincount(fair.cluster_of(vectors[labels == "A"])).argmax()
    assert fair.offsets[crowded_cluster] < 0 < fair.offsets[1 - crowded_cluster]

    def fmr_ratio(scores: np.ndarray) -> float:
        upper = np.triu(np.ones(scores.shape, dtype=bool), k=1)
        impostor = upper & (owners[:, None] != owners[None, :])
        threshold = threshold_at_far(scores[impostor], 1e-2)
        rates = []
        for group in ("A", "B"):
            within = impostor & (labels[:, None] == group) & (labels[None, :] == group)
            rates.append(np.mean(scores[within] >= threshold))
        return float(rates[0] / max(rates[1], 1e-9))

    raw = np.asarray(vectors @ vectors.T, dtype=np.float64)
    assert fmr_ratio(raw) > 3
    assert fmr_ratio(fair.normalise(raw, vectors, vectors)) < 0.5 * fmr_ratio(raw)


def test_held_out_1_to_1_reports_fair_score_normalisation_beside_raw_scores() -> None:
    vectors, names, groups = two_regions()
    enrolled = np.ones(len(vectors), dtype=bool)
    population, _ = population_of(vectors, vectors, enrolled, enrolled, names, groups)
    folds = person_folds(sorted(population.images_of), 2, np.random.default_rng(0))
    report = verification_cross_validation(
        population, folds, (1e-2,), {}, top_k=10, fairness_target=1e-2, fsn_clusters=2
    )
    raw = report["by_group"][f"{RAW}:FMR 0.01"]["fmr_ratio"]["value"]
    fair = report["by_group"][f"{FSN}:FMR 0.01"]["fmr_ratio"]["value"]
    assert raw is not None
    assert fair is not None
    assert fair < raw
