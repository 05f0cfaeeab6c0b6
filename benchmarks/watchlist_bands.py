"""Watchlist alert thresholds by list size, from the false-match tail of lfw-dev (issue 18).

    .venv/bin/python benchmarks/watchlist_bands.py --data ../shared/data/lfw-dev \\
        --same-person benchmarks/lfw-dev-same-person.tsv --cache /tmp/eval-cache

Entries: each identity's first photo, enrolled with the reference recipe (as the watchlist
enrols); probes: every photo (capture recipe); impostor pairs: every probe against every
entry of another identity. The threshold for a list of N entries at a target FPIR is the
one whose per-comparison FMR is 1 - (1 - FPIR)^(1/N), read from the data where at least ten
impostor pairs lie above it and from a generalised Pareto tail beyond; the interval resamples
persons. Lists drawn from lfw-dev itself (N up to about 1,500) check the formula against
searches actually made. Prints a Markdown table and the calibration TOML fragment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.crossval import embed_population
from entryexit.evaluation.watchlist import fpir_from_fmr, watchlist_bands

SIZES = (300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 2_000_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    parser.add_argument("--targets", type=float, nargs="+", default=[1e-3, 1e-2])
    parser.add_argument("--tail-fraction", type=float, default=1e-3)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    population, facts = embed_population(
        engine, args.data, args.cache, 2, args.same_person, quality_gate=False
    )
    persons = np.array(sorted(population.images_of), dtype=np.int64)
    entries = np.stack([population.entry(int(p), 1) for p in persons])
    probes = np.array(sorted(i for p in persons for i in population.images_of[int(p)]))
    owners = population.person_of_image()[probes]
    scores = population.captures[probes] @ entries.T
    impostor_mask = owners[:, None] != persons[None, :]
    impostor = scores[impostor_mask].astype(np.float64)
    probe_person = np.broadcast_to(owners[:, None], scores.shape)[impostor_mask]
    entry_person = np.broadcast_to(persons[None, :], scores.shape)[impostor_mask]
    print(
        f"{facts['identities']} identities, {probes.size} probes, {impostor.size:,} impostor"
        f" pairs; tail above the top {args.tail_fraction:g}"
    )
    rng = np.random.default_rng(args.seed)
    toml = []
    for target in args.targets:
        bands = watchlist_bands(
            impostor,
            probe_person,
            entry_person,
            SIZES,
            target,
            rng,
            args.tail_fraction,
            args.resamples,
        )
        print(f"\n### Target FPIR {target:g} per search\n")
        print(
            "| list size (up to) | per-comparison FMR | threshold | 95% interval (persons)"
            " | empirical threshold | impostor pairs above |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for band in bands:
            empirical = (
                "beyond the data"
                if band.empirical_threshold is None
                else f"{band.empirical_threshold:.4f}"
            )
            print(
                f"| {band.max_entries:,} | {band.fmr:.2e} | {band.threshold:.4f} |"
                f" [{band.low:.4f}, {band.high:.4f}] | {empirical} | {band.empirical_errors} |"
            )
        # Strict side of the interval, rounded up: a watchlist alert costs an officer's time,
        # a missed one more, but the target is what the policy promises.
        toml.append(f'[calibration.flip.watchlist_fpir."{target:g}"]')
        toml += [f'"{band.max_entries}" = {np.ceil(band.high * 1000) / 1000:.3f}' for band in bands]
        toml.append("")
        print(
            "\nChecked on lists drawn from lfw-dev (probes: every photo of persons not listed):\n"
        )
        print("| list size | threshold | FPIR measured (pooled) | per-list p5 / p95 | formula |")
        print("| --- | --- | --- | --- | --- |")
        for band in bands:
            if band.max_entries > persons.size * 0.9:
                continue
            measured, per_list = [], []
            for _ in range(args.draws):
                listed = rng.choice(persons.size, size=band.max_entries, replace=False)
                on = np.zeros(persons.size, dtype=bool)
                on[listed] = True
                owner_rows = np.searchsorted(persons, owners)
                off = ~on[owner_rows]
                top = scores[np.ix_(off, listed)].max(axis=1)
                hits = int(np.count_nonzero(top >= band.threshold))
                measured.append((hits, int(off.sum())))
                per_list.append(hits / off.sum())
            fpir = sum(h for h, _ in measured) / sum(n for _, n in measured)
            fmr = float(np.mean(impostor >= band.threshold))
            predicted = float(fpir_from_fmr(fmr, band.max_entries))
            print(
                f"| {band.max_entries:,} | {band.threshold:.4f} | {fpir:.2e} |"
                f" {np.percentile(per_list, 5):.1e} / {np.percentile(per_list, 95):.1e} |"
                f" {predicted:.2e} |"
            )
    print("\n```toml\n" + "\n".join(toml) + "```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
