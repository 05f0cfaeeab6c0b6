"""Demographic differentials at an operating point: FMR and FNMR per group (as NIST IR 8280
reports them), open-set FNIR and FPIR per group, with person-level bootstrap intervals.

Pairs of one person are correlated, so intervals resample persons, not pairs; a figure from too
few persons or pairs is reported as "too few to say" rather than as a number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceEngine
from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages
from entryexit.evaluation.embedding import (
    ProgressCallback,
    embed_files_cached,
    with_reference_rows,
)
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.plots import pyplot

MIN_PERSONS = 10
MIN_GENUINE_PAIRS = 30


def read_labels(path: Path) -> dict[str, str]:
    """``image<TAB>value`` lines (a header line ``image<TAB>...`` is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the label file {path}") from exc
    labels: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.lower().startswith("image\t")):
            continue
        image, separator, value = line.partition("\t")
        if not separator or not value.strip():
            raise DatasetError(f"{path.name} line {number}: expected 'image<TAB>value'")
        labels[image.strip()] = value.strip()
    if not labels:
        raise DatasetError(f"{path} has no labels")
    return labels


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate with its counts, a bootstrap interval, and whether there is enough to say."""

    errors: int
    trials: int
    persons: int
    value: float | None
    low: float | None
    high: float | None

    @property
    def enough(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci95": [self.low, self.high] if self.value is not None else None,
            "errors": self.errors,
            "trials": self.trials,
            "persons": self.persons,
            "note": None if self.value is not None else "too few to say",
        }


def person_rate(
    errors_by_person: NDArray[np.int64],
    trials_by_person: NDArray[np.int64],
    rng: np.random.Generator,
    minimum_trials: int,
    person_averaged: bool = False,
    resamples: int = 1000,
) -> Rate:
    """Pair-weighted (sum of errors / sum of trials) or person-averaged (mean of each person's
    rate) error rate, with a 95% interval from resampling persons."""
    errors = np.asarray(errors_by_person, dtype=np.int64)
    trials = np.asarray(trials_by_person, dtype=np.int64)
    keep = trials > 0
    errors, trials = errors[keep], trials[keep]
    persons = int(errors.size)
    total_errors, total_trials = int(errors.sum()), int(trials.sum())
    if persons < MIN_PERSONS or total_trials < minimum_trials:
        return Rate(total_errors, total_trials, persons, None, None, None)

    def statistic(e: NDArray[np.int64], t: NDArray[np.int64]) -> NDArray[np.float64]:
        if person_averaged:
            return np.asarray((e / t).mean(axis=-1), dtype=np.float64)
        return np.asarray(e.sum(axis=-1) / t.sum(axis=-1), dtype=np.float64)

    value = float(statistic(errors[np.newaxis, :], trials[np.newaxis, :])[0])
    picks = rng.integers(0, persons, size=(resamples, persons))
    samples = statistic(errors[picks], trials[picks])
    low, high = np.percentile(samples, [2.5, 97.5])
    return Rate(total_errors, total_trials, persons, value, float(low), float(high))


@dataclass(frozen=True, slots=True)
class PairScores:
    """Scores of pairs with, for each pair, the person it is charged to (for resampling)."""

    scores: NDArray[np.float64]
    person: NDArray[np.int64]

    def per_person(
        self, threshold: float, count: int, genuine: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        wrong = self.scores < threshold if genuine else self.scores >= threshold
        errors = np.bincount(self.person, weights=wrong.astype(np.float64), minlength=count)
        trials = np.bincount(self.person, minlength=count)
        return errors.astype(np.int64), trials.astype(np.int64)


def within_group_pairs(
    vectors: NDArray[np.float32],
    persons: NDArray[np.int64],
    members: NDArray[np.int64],
    rng: np.random.Generator,
    impostor_pairs: int,
) -> tuple[PairScores, PairScores]:
    """All genuine pairs of the group's images, and ``impostor_pairs`` seeded impostor pairs
    (or all of them, where there are fewer) between different persons of the group."""
    members = np.asarray(members)
    group_persons = persons[members]
    genuine_scores, genuine_persons = [], []
    for person in np.unique(group_persons):
        images = members[group_persons == person]
        if images.size < 2:
            continue
        block = vectors[images] @ vectors[images].T
        upper = np.triu_indices(images.size, k=1)
        genuine_scores.append(block[upper])
        genuine_persons.append(np.full(upper[0].size, person))
    n = members.size
    all_pairs = n * (n - 1) // 2
    if all_pairs <= impostor_pairs:
        first, second = np.triu_indices(n, k=1)
    else:
        first = rng.integers(0, n, size=impostor_pairs * 2)
        second = rng.integers(0, n, size=impostor_pairs * 2)
        keep = first != second
        first, second = first[keep][:impostor_pairs], second[keep][:impostor_pairs]
    different = group_persons[first] != group_persons[second]
    first, second = first[different], second[different]
    impostor_scores = np.einsum("ij,ij->i", vectors[members[first]], vectors[members[second]])
    genuine = PairScores(
        np.concatenate(genuine_scores).astype(np.float64) if genuine_scores else np.empty(0),
        np.concatenate(genuine_persons).astype(np.int64)
        if genuine_persons
        else np.empty(0, np.int64),
    )
    impostor = PairScores(impostor_scores.astype(np.float64), group_persons[first].astype(np.int64))
    return genuine, impostor


@dataclass(frozen=True, slots=True)
class GroupReport:
    group: str
    persons: int
    images: int
    fmr: Rate
    fnmr_pairs: Rate
    fnmr_persons: Rate
    fmr_ratio_to_lowest: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "persons": self.persons,
            "images": self.images,
            "fmr": self.fmr.as_dict(),
            "fmr_ratio_to_lowest": self.fmr_ratio_to_lowest,
            "fnmr_pair_weighted": self.fnmr_pairs.as_dict(),
            "fnmr_person_averaged": self.fnmr_persons.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    name: str
    threshold: float
    groups: tuple[GroupReport, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "groups": [g.as_dict() for g in self.groups],
        }


def with_ratios(groups: Sequence[GroupReport]) -> tuple[GroupReport, ...]:
    """Each group's FMR relative to the lowest group FMR (NIST IR 8280's presentation)."""
    known = [g.fmr.value for g in groups if g.fmr.value is not None and g.fmr.value > 0]
    lowest = min(known) if known else None
    return tuple(
        GroupReport(
            g.group,
            g.persons,
            g.images,
            g.fmr,
            g.fnmr_pairs,
            g.fnmr_persons,
            (g.fmr.value / lowest) if lowest and g.fmr.value is not None else None,
        )
        for g in groups
    )


def group_report(
    group: str,
    genuine: PairScores,
    impostor: PairScores,
    threshold: float,
    person_count: int,
    persons_in_group: int,
    images: int,
    rng: np.random.Generator,
    target_fmr: float,
) -> GroupReport:
    impostor_errors, impostor_trials = impostor.per_person(threshold, person_count, genuine=False)
    genuine_errors, genuine_trials = genuine.per_person(threshold, person_count, genuine=True)
    # To say anything about an FMR near the target, about 10 expected false matches are needed.
    minimum_impostors = int(np.ceil(10 / max(target_fmr, 1e-9)))
    return GroupReport(
        group=group,
        persons=persons_in_group,
        images=images,
        fmr=person_rate(impostor_errors, impostor_trials, rng, minimum_impostors),
        fnmr_pairs=person_rate(genuine_errors, genuine_trials, rng, MIN_GENUINE_PAIRS),
        fnmr_persons=person_rate(
            genuine_errors, genuine_trials, rng, MIN_GENUINE_PAIRS, person_averaged=True
        ),
    )


def open_set_by_group(
    vectors: NDArray[np.float32],
    persons: NDArray[np.int64],
    group_of_person: Mapping[int, str],
    threshold: float,
    gallery_size: int,
    draws: int,
    rng: np.random.Generator,
    gallery_vectors: NDArray[np.float32] | None = None,
) -> dict[str, dict[str, Any]]:
    """Seeded flights: the first image of ``gallery_size`` persons is the gallery, their other
    images are mated probes, one image of every other person a non-mated probe. FNIR (mated
    probe not matched to its own entry) and FPIR (non-mated probe matched) by the probe's group.
    ``gallery_vectors`` (same rows) are the gallery entries' templates when references are
    embedded with another recipe than probes."""
    references = vectors if gallery_vectors is None else gallery_vectors
    person_ids = np.unique(persons)
    first_image = {p: int(np.flatnonzero(persons == p)[0]) for p in person_ids}
    with_more = [p for p in person_ids if np.count_nonzero(persons == p) >= 2]
    size = min(gallery_size, len(with_more))
    counts: dict[str, dict[str, int]] = {}
    for _ in range(draws):
        chosen = rng.choice(with_more, size=size, replace=False)
        gallery = references[[first_image[p] for p in chosen]]
        index_of = {p: i for i, p in enumerate(chosen)}
        on = set(chosen.tolist())
        mated = [
            i for i in range(len(persons)) if persons[i] in on and i != first_image[persons[i]]
        ]
        others = [first_image[p] for p in person_ids if p not in on]
        for probes, is_mated in ((mated, True), (others, False)):
            if not probes:
                continue
            scores = vectors[probes] @ gallery.T
            best = scores.argmax(axis=1)
            top = scores[np.arange(len(probes)), best]
            for probe, b, s in zip(probes, best, top, strict=True):
                group = group_of_person.get(int(persons[probe]))
                if group is None:
                    continue
                tally = counts.setdefault(
                    group, {"mated": 0, "missed": 0, "non_mated": 0, "false_positive": 0}
                )
                if is_mated:
                    tally["mated"] += 1
                    tally["missed"] += int(s < threshold or b != index_of[persons[probe]])
                else:
                    tally["non_mated"] += 1
                    tally["false_positive"] += int(s >= threshold)
    return {
        group: {
            **tally,
            "fnir": tally["missed"] / tally["mated"] if tally["mated"] else None,
            "fpir": tally["false_positive"] / tally["non_mated"] if tally["non_mated"] else None,
        }
        for group, tally in sorted(counts.items())
    }


@dataclass(frozen=True, slots=True)
class FairnessRun:
    data_dir: Path
    labels_file: Path
    out_dir: Path
    attribute: str
    deployed_threshold: float
    gallery_threshold: float
    target_fmr: float = 1e-3
    impostor_pairs_per_group: int = 200_000
    gallery_size: int = 300
    draws: int = 10
    seed: int = 0
    threads: int = 2
    # Open set: gallery entries with the service's reference recipe, as enrolment makes them.
    reference_recipe: bool = True
    cache_dir: Path | None = None


def evaluate_fairness(
    engine: FaceEngine,
    run: FairnessRun,
    on_total: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    dataset = LabelledImages.scan(run.data_dir)
    labels = read_labels(run.labels_file)
    person_index: dict[str, int] = {}
    paths: list[Path] = []
    person_of: list[int] = []
    group_of_image: list[str] = []
    groups_of_person: dict[int, set[str]] = {}
    for person, images in dataset.persons.items():
        for path in images:
            label = labels.get(f"{person}/{path.name}")
            if label is None:
                continue
            index = person_index.setdefault(person, len(person_index))
            paths.append(path)
            person_of.append(index)
            group_of_image.append(label)
            groups_of_person.setdefault(index, set()).add(label)
    if not paths:
        raise DatasetError(f"no image under {run.data_dir} has a label in {run.labels_file.name}")
    mixed = {p for p, g in groups_of_person.items() if len(g) > 1}
    if on_total is not None:
        on_total(len(paths))
    embedded = embed_files_cached(engine, paths, run.cache_dir, run.threads, on_progress)
    usable = np.array(
        [embedded.enrolled[i] and person_of[i] not in mixed for i in range(len(paths))]
    )
    vectors = embedded.vectors
    persons = np.array(person_of, dtype=np.int64)
    groups = np.array(group_of_image)
    rng = np.random.default_rng(run.seed)

    pairs: dict[str, tuple[PairScores, PairScores]] = {}
    sizes: dict[str, tuple[int, int, int]] = {}
    for group in sorted(set(group_of_image)):
        members = np.flatnonzero(usable & (groups == group))
        pairs[group] = within_group_pairs(
            vectors, persons, members, rng, run.impostor_pairs_per_group
        )
        failed = int(np.count_nonzero((groups == group) & ~embedded.enrolled))
        sizes[group] = (int(np.unique(persons[members]).size), int(members.size), failed)
    all_impostors = np.concatenate([impostor.scores for _, impostor in pairs.values()])
    target_threshold = threshold_at_far(all_impostors, run.target_fmr)

    points = []
    for name, threshold in (
        ("deployed", run.deployed_threshold),
        (f"overall FMR {run.target_fmr:g}", target_threshold),
    ):
        reports = [
            group_report(
                group,
                genuine,
                impostor,
                threshold,
                len(person_index),
                sizes[group][0],
                sizes[group][1],
                rng,
                run.target_fmr,
            )
            for group, (genuine, impostor) in pairs.items()
        ]
        points.append(OperatingPoint(name, threshold, with_ratios(reports)))
    group_of_person = {p: next(iter(g)) for p, g in groups_of_person.items() if p not in mixed}
    usable_rows = np.flatnonzero(usable)
    reference_vectors = vectors[usable_rows]
    if run.reference_recipe:
        # Only the rows that can be gallery entries: each usable person's first image.
        first_rows = sorted(
            {
                int(usable_rows[persons[usable_rows] == p][0])
                for p in np.unique(persons[usable_rows])
            }
        )
        if on_total is not None:
            on_total(len(paths) + len(first_rows))
        reference_vectors = with_reference_rows(
            engine, paths, vectors, first_rows, run.cache_dir, run.threads, on_progress
        )[usable_rows]
    open_set = open_set_by_group(
        vectors[usable],
        persons[usable],
        group_of_person,
        run.gallery_threshold,
        run.gallery_size,
        run.draws,
        rng,
        gallery_vectors=reference_vectors,
    )
    summary: dict[str, Any] = {
        "data": str(run.data_dir),
        "labels": str(run.labels_file),
        "attribute": run.attribute,
        "model": engine.model,
        "open_set_reference_recipe": run.reference_recipe,
        "seed": run.seed,
        "groups": {
            g: {"persons": s[0], "images": s[1], "failure_to_enrol": s[2]} for g, s in sizes.items()
        },
        "persons_with_conflicting_labels": len(mixed),
        "operating_points": [p.as_dict() for p in points],
        "open_set": {
            "threshold": run.gallery_threshold,
            "gallery_size": run.gallery_size,
            "draws": run.draws,
            "by_group": open_set,
        },
    }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / "fairness.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (run.out_dir / "fairness.md").write_text(markdown_report(summary), encoding="utf-8")
    plot_rates_by_group(
        pairs, run.out_dir / "fairness.png", run.attribute, target_threshold, run.deployed_threshold
    )
    return summary


def _percent(rate: Mapping[str, Any], digits: int = 3) -> str:
    if rate["value"] is None:
        return f"too few to say ({rate['errors']}/{rate['trials']})"
    low, high = rate["ci95"]
    value = f"{rate['value'] * 100:.{digits}f}%"
    interval = f"[{low * 100:.{digits}f}, {high * 100:.{digits}f}]"
    return f"{value} {interval} ({rate['errors']}/{rate['trials']})"


def markdown_report(summary: Mapping[str, Any]) -> str:
    lines = [
        f"# Demographic differentials by {summary['attribute']}",
        "",
        f"Model `{summary['model']}`; data `{summary['data']}`; labels `{summary['labels']}`;"
        f" seed {summary['seed']}.",
        "Intervals are 95% bootstrap intervals over persons; counts are errors/trials.",
        "",
    ]
    for point in summary["operating_points"]:
        lines += [
            f"## Operating point: {point['name']} (threshold {point['threshold']:.4f})",
            "",
            "| group | persons | FMR (within group) | FMR ratio to lowest"
            " | FNMR pair-weighted | FNMR person-averaged |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for group in point["groups"]:
            ratio = group["fmr_ratio_to_lowest"]
            lines.append(
                f"| {group['group']} | {group['persons']} | {_percent(group['fmr'], 4)} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} |"
                f" {_percent(group['fnmr_pair_weighted'], 2)} | "
                f"{_percent(group['fnmr_person_averaged'], 2)} |"
            )
        lines.append("")
    open_set = summary["open_set"]
    lines += [
        f"## Open set: flights of {open_set['gallery_size']}, {open_set['draws']} draws,"
        f" threshold {open_set['threshold']}",
        "",
        "| group | mated probes | FNIR | non-mated probes | FPIR |",
        "| --- | --- | --- | --- | --- |",
    ]
    for group, row in open_set["by_group"].items():
        fnir = "n/a" if row["fnir"] is None else f"{row['fnir'] * 100:.2f}%"
        fpir = "n/a" if row["fpir"] is None else f"{row['fpir'] * 100:.2f}%"
        lines.append(f"| {group} | {row['mated']} | {fnir} | {row['non_mated']} | {fpir} |")
    return "\n".join(lines) + "\n"


def plot_rates_by_group(
    pairs: Mapping[str, tuple[PairScores, PairScores]],
    path: Path,
    attribute: str,
    target_threshold: float,
    deployed_threshold: float,
) -> None:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    thresholds = np.linspace(0.1, 0.7, 121)
    for group, (genuine, impostor) in pairs.items():
        if impostor.scores.size:
            fmr = [(impostor.scores >= t).mean() for t in thresholds]
            left.semilogy(thresholds, np.clip(fmr, 1e-6, 1), label=group)
        if genuine.scores.size:
            fnmr = [(genuine.scores < t).mean() for t in thresholds]
            right.semilogy(thresholds, np.clip(fnmr, 1e-4, 1), label=group)
    for axes, title in ((left, "FMR (within-group impostors)"), (right, "FNMR (genuine pairs)")):
        axes.axvline(
            deployed_threshold, color="black", linestyle="--", linewidth=1, label="deployed"
        )
        axes.axvline(
            target_threshold, color="grey", linestyle=":", linewidth=1, label="overall FMR target"
        )
        axes.set_xlabel("threshold (cosine similarity)")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(f"Error rates by {attribute}")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
