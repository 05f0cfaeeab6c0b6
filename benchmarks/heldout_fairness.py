"""One threshold for everyone, measured on held-out persons, before and after normalisation.

    .venv/bin/python benchmarks/heldout_fairness.py --data ../shared/data/lfw-dev \\
        --labels ../shared/data/lfw-dev/sex.tsv \\
        --same-person benchmarks/lfw-dev-same-person.tsv --cache /tmp/eval-cache \\
        --verification-threshold 0.367 --gallery-threshold 0.484

1:1: persons split in two folds; each fold's thresholds fitted on the other fold's impostor
pairs (capture recipe on both sides, as ``evaluate lfw``), raw and adaptive S-norm (cohort:
the fit fold's reference templates); within-group FMR and FNMR of the held-out fold, every
person held out once, 95% intervals resampling persons, the F/M FMR ratio's interval
resampling both groups. 1:N: FNIR and FPIR by the probe's group on held-out 300-traveler
flights (one reference; three folds, a cohort fold for S-norm) at the given raw thresholds
and at each split's fitted thresholds.
The labels are used for the report only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.crossval import (
    AS_NORM,
    RAW,
    CrossValidation,
    cross_validate,
    embed_population,
    person_folds,
    rates_by_group,
)
from entryexit.evaluation.metrics import threshold_at_far
from entryexit.evaluation.verification_cv import verification_cross_validation


def percent(rate: dict[str, Any], digits: int = 3) -> str:
    if rate["value"] is None:
        return f"too few to say ({rate['errors']}/{rate['trials']})"
    low, high = rate["ci95"]
    return f"{rate['value'] * 100:.{digits}f}% [{low * 100:.{digits}f}, {high * 100:.{digits}f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    parser.add_argument("--verification-threshold", type=float, nargs="+", required=True)
    parser.add_argument("--gallery-threshold", type=float, nargs="+", required=True)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fsn-clusters",
        type=int,
        default=0,
        help="Also fair score normalisation at 1:1 with this many unsupervised clusters.",
    )
    parser.add_argument(
        "--no-gallery", action="store_true", help="Only the 1:1 part (skip the 1:N flights)."
    )
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    population, facts = embed_population(
        engine, args.data, args.cache, 2, args.same_person, args.labels, quality_gate=False
    )
    groups: dict[str, int] = {}
    for group in population.group_of_person.values():
        groups[group] = groups.get(group, 0) + 1
    print(f"{facts['identities']} identities; labelled persons by group: {groups}\n")
    everyone = np.array(sorted(i for images in population.images_of.values() for i in images))
    owners = population.person_of_image()[everyone]
    vectors = population.captures[everyone]
    scores = vectors @ vectors.T
    upper = np.triu(np.ones(scores.shape, dtype=bool), k=1) & (owners[:, None] != owners[None, :])
    impostors = scores[upper].astype(np.float64)
    print(f"1:1 thresholds on every impostor pair ({impostors.size:,} pairs, every person):")
    for target in (1e-2, 1e-3, 1e-4):
        print(f"  FMR {target:g}: {threshold_at_far(impostors, target):.4f}")
    del scores, upper, impostors
    folds = person_folds(sorted(population.images_of), 2, np.random.default_rng(args.seed))
    fixed = {f"deployed {t}": t for t in args.verification_threshold}
    report = verification_cross_validation(
        population,
        folds,
        (1e-2, 1e-3, 1e-4),
        fixed,
        args.top_k,
        args.seed,
        fsn_clusters=args.fsn_clusters,
    )
    print("### 1:1, held-out FMR at thresholds fitted on the other fold\n")
    print("| scoring | target | thresholds (per fold) | held-out FMR (pooled) | per fold |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in report["held_out_fmr"].items():
        scoring, target = name.split(":")
        thresholds = report["thresholds"][name]["per_fold"]
        print(
            f"| {scoring} | {target} | {', '.join(f'{t:.4f}' for t in thresholds)} |"
            f" {row['pooled']:.2e} | {', '.join(f'{v:.2e}' for v in row['per_fold'])} |"
        )
    print("\n### 1:1 by group (within-group impostors; every person held out once)\n")
    print(
        "| scoring | threshold | group | FMR [95%] | FNMR pair-weighted [95%] |"
        " FNMR person-averaged [95%] |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rows in report["by_group"].items():
        scoring, label = name.split(":", 1)
        for group, row in rows.items():
            if group == "fmr_ratio":
                continue
            print(
                f"| {scoring} | {label} | {group} | {percent(row['fmr'], 4)} |"
                f" {percent(row['fnmr_pair_weighted'], 2)} |"
                f" {percent(row['fnmr_person_averaged'], 2)} |"
            )
        ratio = rows.get("fmr_ratio")
        if ratio and ratio["value"] is not None:
            low, high = ratio["ci95"]
            print(
                f"| {scoring} | {label} | FMR ratio {ratio['groups']} |"
                f" **{ratio['value']:.2f}** [{low:.2f}, {high:.2f}] | | |"
            )
    if args.no_gallery:
        return 0
    config = CrossValidation(
        folds=3,
        repeats=args.repeats,
        draws=args.draws,
        references=(1,),
        scorings=(RAW, AS_NORM),
        top_k=args.top_k,
        seed=args.seed,
    )
    result = cross_validate(population, config)
    print("\n### 1:N by the probe's group, held-out 300-traveler flights, one reference\n")
    print("| scoring | threshold | group | mated | FNIR | non-mated | FPIR |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rules: list[tuple[str, str, Any]] = [
        (RAW, f"deployed {t}", t) for t in args.gallery_threshold
    ] + [(RAW, "fitted (confident)", None), (AS_NORM, "fitted (confident)", None)]
    for scoring, label, fixed_threshold in rules:
        tallies: dict[str, dict[str, int]] = {}
        for number, split in enumerate(result["splits"]):
            flights = result["held_out_flights"][(number, 1, scoring)]
            threshold = (
                fixed_threshold
                if fixed_threshold is not None
                else split["thresholds"][f"1:{scoring}"]["confident"]
            )
            for group, row in rates_by_group(flights, threshold).items():
                tally = tallies.setdefault(
                    group, dict.fromkeys(("mated", "missed", "non_mated", "false_positives"), 0)
                )
                for key in tally:
                    tally[key] += row[key]
        for group, t in sorted(tallies.items()):
            print(
                f"| {scoring} | {label} | {group} | {t['mated']} |"
                f" {100 * t['missed'] / t['mated']:.2f}% | {t['non_mated']} |"
                f" {100 * t['false_positives'] / t['non_mated']:.3f}% |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
