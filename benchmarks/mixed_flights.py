"""The per-reference-count rule on held-out flights that mix reference counts, as real ones do.

    .venv/bin/python benchmarks/mixed_flights.py --data ../shared/data/lfw-dev \\
        --same-person benchmarks/lfw-dev-same-person.tsv --cache /tmp/mf-cache --seed 0

The cross-validation (``entryexit evaluate gallery``) fits each split's threshold per
reference count on flights of one count only. Here every split's thresholds are applied to
flights drawn from its held-out fold in which each traveler is enrolled with every photo up to
two (so about a quarter of entries fuse two photos, the rest one; photos beyond the
references are mated captures): a capture is matched when
its top entry reaches the threshold of that entry's own count. Compared with holding every
entry to the stricter threshold, and to the one-reference threshold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.crossval import (
    RAW,
    CrossValidation,
    Population,
    cross_validate,
    embed_population,
    person_folds,
)


def mixed_flight(
    population: Population,
    pool: list[int],
    size: int,
    most: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], list[int]]:
    """Entries (one per traveler, fusing up to ``most`` photos), their reference counts, the
    mated captures (image, row) and the non-mated ones."""
    chosen = [int(p) for p in rng.choice(pool, size=min(size, len(pool)), replace=False)]
    counts = np.array([min(most, len(population.images_of[p])) for p in chosen])
    entries = np.stack([population.entry(p, int(c)) for p, c in zip(chosen, counts, strict=True)])
    mated = [
        (int(i), row)
        for row, (p, c) in enumerate(zip(chosen, counts, strict=True))
        for i in population.images_of[p][int(c) :]
    ]
    aboard = set(chosen)
    non_mated = [int(i) for p in pool if p not in aboard for i in population.images_of[p]]
    return entries, counts, mated, non_mated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flights", type=int, default=20, help="Held-out flights per split.")
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    population, _ = embed_population(engine, args.data, args.cache, 2, args.same_person)
    config = CrossValidation(scorings=(RAW,), seed=args.seed)
    result = cross_validate(population, config)
    # The same folds again: cross_validate draws them first from a generator of this seed.
    rng = np.random.default_rng(config.seed)
    persons = sorted(p for p, images in population.images_of.items() if images)
    folds_by_repeat = []
    for _ in range(config.repeats):
        folds_by_repeat.append(person_folds(persons, config.folds, rng))
        break  # later repeats' folds depend on the flights drawn in between
    flights_rng = np.random.default_rng([args.seed, 7])
    rules = ("own count", "stricter for all", "one-reference for all")
    tally = {rule: {"fp": 0, "searches": 0, "missed": 0, "mated": 0} for rule in rules}
    per_flight: dict[str, list[float]] = {rule: [] for rule in rules}
    share_two: list[float] = []
    for number, split in enumerate(result["splits"][: config.folds]):
        test = folds_by_repeat[0][split["fold"]]
        one = split["thresholds"]["1:raw"]["confident"]
        two = split["thresholds"]["2:raw"]["confident"]
        for _ in range(args.flights):
            entries, counts, mated, non_mated = mixed_flight(
                population, test, config.gallery_size, 2, flights_rng
            )
            share_two.append(float(np.mean(counts == 2)))
            acquired = population.acquired
            mated = [(i, row) for i, row in mated if acquired[i]]
            non_mated = [i for i in non_mated if acquired[i]]
            own = np.where(counts == 2, two, one)
            thresholds = {
                "own count": own,
                "stricter for all": np.full(len(counts), max(one, two)),
                "one-reference for all": np.full(len(counts), one),
            }
            scores = population.captures[non_mated] @ entries.T
            top = scores.argmax(axis=1)
            top_score = scores[np.arange(len(non_mated)), top]
            mated_scores = population.captures[[i for i, _ in mated]] @ entries.T
            mated_top = mated_scores.argmax(axis=1)
            truth = np.array([row for _, row in mated])
            mated_top_score = mated_scores[np.arange(len(mated)), mated_top]
            for rule, per_entry in thresholds.items():
                fp = int(np.count_nonzero(top_score >= per_entry[top]))
                hit = (mated_top == truth) & (mated_top_score >= per_entry[mated_top])
                tally[rule]["fp"] += fp
                tally[rule]["searches"] += len(non_mated)
                tally[rule]["missed"] += int(np.count_nonzero(~hit))
                tally[rule]["mated"] += len(mated)
                per_flight[rule].append(fp / len(non_mated))
        print(f"split {number}: thresholds one {one:.4f}, two {two:.4f}")
    print(
        f"\n{len(share_two)} held-out mixed flights of {config.gallery_size} travelers"
        f" (seed {args.seed}, first repeat's three splits); entries fusing two photos:"
        f" {np.mean(share_two) * 100:.0f}% on average\n"
    )
    print("| rule | held-out FPIR | x 1e-3 | per-flight p95 | FNIR |")
    print("| --- | --- | --- | --- | --- |")
    for rule in rules:
        t = tally[rule]
        fpir = t["fp"] / t["searches"]
        print(
            f"| {rule} | {fpir:.2e} ({t['fp']} of {t['searches']:,}) | {fpir / 1e-3:.2f} |"
            f" {np.percentile(per_flight[rule], 95):.1e} | {t['missed'] / t['mated'] * 100:.2f}% |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
