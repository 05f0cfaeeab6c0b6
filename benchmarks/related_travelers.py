"""How often the related-travelers rule would fire on simulated flights (issue 18).

    .venv/bin/python benchmarks/related_travelers.py --data ../shared/data/lfw-dev \\
        --same-person benchmarks/lfw-dev-same-person.tsv --cache /tmp/eval-cache --threshold 0.5

lfw-dev has no bookings and no relatives, so the groups are synthetic, seeded, and of two
kinds: *random* bookings (group sizes 1/2/3/4 in proportion 55/30/10/5 of travelers, an
assumption, not a measurement; it prices the rule: how many good matches it sends to an
officer) and *look-alike* bookings (each traveler booked with the one other traveler whose
reference is most like theirs, greedily: a stand-in for relatives who resemble each other,
the case the rule is for). In both, 1% of travelers are given a twin (same surname and birth
date) on another booking. A capture is matched as the service decides (threshold, margin
0.03); the rule then turns it ambiguous when its two best candidates are related: "any"
(any related runner-up) and "both above" (the runner-up also reaches the threshold).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.domain.normalisation import TravelerFacts, related_ambiguity
from entryexit.evaluation.crossval import draw_flight, embed_population

MARGIN = 0.03
GROUP_SIZES = (1, 2, 3, 4)
GROUP_SHARES = (0.55, 0.30, 0.10, 0.05)  # of travelers
# A group of size k holds k travelers: the chance of drawing a group size is share / k.
GROUP_CHANCES = np.array(GROUP_SHARES) / np.array(GROUP_SIZES)
GROUP_CHANCES /= GROUP_CHANCES.sum()


def random_bookings(count: int, rng: np.random.Generator) -> list[str]:
    labels: list[str] = []
    order = rng.permutation(count)
    booking = 0
    while len(labels) < count:
        size = int(rng.choice(GROUP_SIZES, p=GROUP_CHANCES))
        labels += [f"R{booking}"] * size
        booking += 1
    result = [""] * count
    for position, traveler in enumerate(order):
        result[int(traveler)] = labels[position]
    return result


def look_alike_bookings(gallery: np.ndarray) -> list[str]:
    similarity = gallery @ gallery.T
    np.fill_diagonal(similarity, -np.inf)
    result = [""] * len(gallery)
    pairs = np.dstack(np.unravel_index(np.argsort(-similarity, axis=None), similarity.shape))[0]
    booking = 0
    for a, b in pairs:
        if a >= b or result[a] or result[b]:
            continue
        result[a] = result[b] = f"L{booking}"
        booking += 1
        if all(result):
            break
    return [label or f"S{i}" for i, label in enumerate(result)]


def with_twins(bookings: list[str], rng: np.random.Generator) -> list[TravelerFacts]:
    facts = [
        TravelerFacts(booking, f"SURNAME{i}", f"19{50 + i % 50:02d}-01-{1 + i % 28:02d}")
        for i, booking in enumerate(bookings)
    ]
    twins = rng.choice(len(facts), size=max(2, len(facts) // 100) // 2 * 2, replace=False)
    for a, b in twins.reshape(-1, 2):
        facts[b] = TravelerFacts(
            facts[b].booking_reference, facts[a].surname, facts[a].date_of_birth
        )
    return facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--gallery-size", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    population, _ = embed_population(engine, args.data, args.cache, 2, args.same_person)
    persons = sorted(population.images_of)
    rng = np.random.default_rng(args.seed)
    tallies = {
        (kind, rule): dict.fromkeys(
            (
                "mated",
                "matched_right",
                "matched_wrong",
                "fired_right",
                "fired_wrong",
                "non_mated",
                "false_positive",
                "fired_false_positive",
                "flights_fired",
            ),
            0,
        )
        for kind in ("random", "look-alike")
        for rule in ("any", "both above")
    }
    for _ in range(args.draws):
        flight = draw_flight(population, persons, args.gallery_size, 1, rng)
        gallery = np.stack([population.entry(p, 1) for p in flight.travelers])
        acquired = population.acquired
        mated = [(i, row) for i, row in flight.mated if acquired[i]]
        non_mated = [i for i in flight.non_mated if acquired[i]]
        mated_scores = population.captures[[i for i, _ in mated]] @ gallery.T
        non_mated_scores = population.captures[non_mated] @ gallery.T
        for kind, bookings in (
            ("random", random_bookings(len(gallery), rng)),
            ("look-alike", look_alike_bookings(gallery)),
        ):
            facts = with_twins(bookings, rng)
            for rule, floor in (("any", None), ("both above", args.threshold)):
                tally = tallies[(kind, rule)]
                fired_in_flight = 0
                for (_, truth), scores in zip(mated, mated_scores, strict=True):
                    order = np.argsort(-scores)
                    top, second = scores[order[0]], scores[order[1]]
                    tally["mated"] += 1
                    if top < args.threshold or top - second < MARGIN:
                        continue
                    right = int(order[0]) == truth
                    tally["matched_right" if right else "matched_wrong"] += 1
                    if related_ambiguity(scores, facts, args.threshold, floor):
                        tally["fired_right" if right else "fired_wrong"] += 1
                        fired_in_flight += 1
                for scores in non_mated_scores:
                    tally["non_mated"] += 1
                    order = np.argsort(-scores)
                    if (
                        scores[order[0]] < args.threshold
                        or scores[order[0]] - scores[order[1]] < MARGIN
                    ):
                        continue
                    tally["false_positive"] += 1
                    if related_ambiguity(scores, facts, args.threshold, floor):
                        tally["fired_false_positive"] += 1
                        fired_in_flight += 1
                tally["flights_fired"] += fired_in_flight > 0
    size, threshold = args.gallery_size, args.threshold
    print(f"{args.draws} flights of {size}, threshold {threshold}, margin {MARGIN}\n")
    print(
        "| bookings | rule | fires on matched captures | of them right matches (cost)"
        " | wrong matches stopped | false positives stopped | flights where it fired |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (kind, rule), t in tallies.items():
        matched = t["matched_right"] + t["matched_wrong"]
        fired = t["fired_right"] + t["fired_wrong"]
        print(
            f"| {kind} | {rule} | {fired} of {matched} ({100 * fired / matched:.2f}%) |"
            f" {t['fired_right']} | {t['fired_wrong']} of {t['matched_wrong']} |"
            f" {t['fired_false_positive']} of {t['false_positive']} |"
            f" {t['flights_fired']} of {args.draws} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
