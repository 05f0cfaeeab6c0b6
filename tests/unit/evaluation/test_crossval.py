from __future__ import annotations

import numpy as np
import pytest

from entryexit.biometrics.recognizer import parse_recognizer_manifest
from entryexit.errors import DatasetError
from entryexit.evaluation.crossval import (
    AS_NORM,
    RAW,
    Cohort,
    CrossValidation,
    Population,
    _normal_quantile,
    calibrate_on_everyone,
    calibration_toml,
    confident_threshold,
    cross_validate,
    draw_flight,
    person_folds,
    population_of,
    score_flight,
    split_context,
    summarise,
    weighted_threshold_at_far,
)
from entryexit.evaluation.metrics import threshold_at_far
from tests.onnx_builder import tiny_manifest


def synthetic(persons: int = 80, dimension: int = 24, seed: int = 0) -> Population:
    """Each person an identity direction; 1-4 photos near it; person 0 an attractor
    (near the mean of everyone)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(persons, dimension))
    centres[0] = centres[1:].mean(axis=0) * 4 + rng.normal(size=dimension) * 0.2
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows, names = [], []
    for person in range(persons):
        for _ in range(1 + person % 4):
            vector = centres[person] + rng.normal(size=dimension) * 0.35
            rows.append(vector / np.linalg.norm(vector))
            names.append(f"p{person:03d}")
    vectors = np.array(rows, dtype=np.float32)
    groups = {i: ("F" if int(n[1:]) % 3 == 0 else "M") for i, n in enumerate(names)}
    enrolled = np.ones(len(rows), dtype=bool)
    population, _ = population_of(vectors, vectors, enrolled, enrolled, names, groups)
    return population


def test_person_folds_are_disjoint_and_cover_everyone() -> None:
    folds = person_folds(list(range(11)), 3, np.random.default_rng(0))
    assert sorted(p for fold in folds for p in fold) == list(range(11))
    assert {len(fold) for fold in folds} <= {3, 4}
    with pytest.raises(DatasetError):
        person_folds([1, 2, 3], 2, np.random.default_rng(0))


def test_unit_weights_give_the_unweighted_threshold() -> None:
    scores = np.random.default_rng(1).normal(size=5000)
    for far in (1e-1, 1e-2, 1e-3):
        assert weighted_threshold_at_far(scores, np.ones_like(scores), far) == pytest.approx(
            threshold_at_far(scores, far)
        )


def test_a_flight_keeps_travelers_out_of_the_non_mated_captures() -> None:
    population = synthetic()
    flight = draw_flight(population, list(range(40)), 10, 1, np.random.default_rng(0))
    owners = population.person_of_image()
    assert not set(owners[list(flight.non_mated)]) & set(flight.travelers)
    assert set(owners[list(flight.non_mated)]) <= set(range(40))
    for image, row in flight.mated:
        assert owners[image] == flight.travelers[row]
        assert image != population.images_of[flight.travelers[row]][0]  # not the reference


def test_the_cohort_never_holds_the_scored_person_and_as_norm_is_finite() -> None:
    population = synthetic()
    cohort = Cohort.of(population, list(range(40, 80)), top_k=10)
    context = split_context(population, list(range(40)), 1, cohort)
    flight = draw_flight(population, list(range(40)), 10, 1, np.random.default_rng(0))
    scores = score_flight(context, flight, AS_NORM)
    assert np.all(np.isfinite(scores.non_mated_top))
    assert np.all(np.isfinite(scores.mated_top))
    # Fit-side cohort (the same persons as the flight's): own person left out, still works.
    fit_cohort = Cohort.of(population, list(range(40)), top_k=10)
    stats = fit_cohort.statistics(population.captures[:3], population.person_of_image()[:3])
    assert np.all(stats.mean < 0.99)


def test_cross_validation_measures_every_scoring_on_held_out_persons_only() -> None:
    population = synthetic()
    config = CrossValidation(
        folds=3,
        repeats=1,
        draws=3,
        gallery_size=15,
        references=(1, 2),
        target=1e-2,
        top_k=10,
        bootstrap_resamples=20,
    )
    result = cross_validate(population, config)
    assert len(result["splits"]) == 3
    assert result["gallery_sizes"][2] <= result["gallery_sizes"][1] == 15
    for number, split in enumerate(result["splits"]):
        for key, fitted in split["thresholds"].items():
            assert fitted["confident"] >= fitted["point"], key
        flights = result["held_out_flights"][(number, 1, RAW)]
        assert len(flights) == 3
    summary = summarise(result, config, {"fixed": 0.5})
    raw = summary[f"1:{RAW}"]
    assert 0 <= raw["point"]["fpir"] <= 1
    assert 0 <= raw["confident"]["fnir"] <= 1
    assert raw["confident"]["fpir"] <= raw["point"]["fpir"]
    assert "fixed" in raw
    assert "fixed" not in summary[f"1:{AS_NORM}"]


def test_the_confident_threshold_ignores_a_few_replicates_that_jump_over_a_cluster() -> None:
    replicates = np.concatenate([np.full(90, 0.50), np.full(10, 0.74)])
    replicates[:45] -= 0.01
    bound = confident_threshold(0.495, replicates, 0.9)
    assert 0.495 <= bound < 0.52  # the 10% of jumps to 0.74 do not drag it up
    assert confident_threshold(0.6, replicates, 0.9) == 0.6  # never below the point
    assert _normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-5)
    assert _normal_quantile(0.01) == pytest.approx(-2.326348, abs=1e-5)


def test_normalised_scorings_refuse_two_folds_there_is_no_cohort_fold() -> None:
    with pytest.raises(DatasetError, match="three folds"):
        cross_validate(synthetic(), CrossValidation(folds=2, repeats=1, draws=1))


def test_the_written_calibration_ships_a_threshold_per_reference_count_the_service_reads() -> None:
    population = synthetic()
    config = CrossValidation(
        folds=3,
        repeats=1,
        draws=3,
        gallery_size=15,
        references=(1, 2),
        target=1e-2,
        scorings=(RAW,),
        bootstrap_resamples=20,
    )
    summary = summarise(cross_validate(population, config), config)
    everyone = calibrate_on_everyone(population, config, (1e-2,))
    by_references = everyone["shipped_by_references"][RAW]
    assert everyone["shipped"][RAW]["0.01"] == max(by_references[r]["0.01"] for r in by_references)
    facts = {
        "data": "synthetic",
        "identities": 80,
        "images": 200,
        "same_person_groups_merged": 0,
        "quality_gate": True,
    }
    text = calibration_toml("flip", everyone, summary, config, facts, "the command")
    # The manifest's own [calibration.flip] tables are replaced by the written ones.
    manifest = tiny_manifest().split("[calibration")[0] + text
    calibration = parse_recognizer_manifest(manifest).calibration("flip")
    for references in (1, 2):
        shipped = calibration.gallery_threshold(1e-2, references=references)
        fitted = by_references[str(references)]["0.01"]
        assert fitted <= shipped < fitted + 0.001 + 1e-9  # rounded up, never down
    assert calibration.gallery_threshold(1e-2, references=3) == max(
        calibration.gallery_threshold(1e-2, references=r) for r in (1, 2)
    )
    assert "held_out_fpir_refs_2" in text
    assert "strict_margin_refs_1" in text
