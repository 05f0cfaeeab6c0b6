"""How far a fused burst's 1:N threshold moves against two-photo gallery entries.

    .venv/bin/python benchmarks/burst_two_photo_shift.py --data ../shared/data/lfw-dev \\
        --same-person benchmarks/lfw-dev-same-person.tsv --cache /tmp/mf-cache

The service holds a k-frame probe to the strictest single-frame threshold plus the shift
measured for bursts on one-reference galleries (``evaluate gallery --frames K``, lower bound:
synthetic bursts of each photo). This measures the same shift with gallery entries fused from
two reference photos, and with one reference on the same flights for comparison: flights of
``--travelers`` persons with at least three photos (two references and a mated capture), every
photo of the persons not aboard a non-mated k-frame burst; the threshold for FPIR 1e-3 over
the pooled non-mated searches of all flights, per k. Needs the synthetic burst cache that
``evaluate gallery --frames 3`` writes (embedding bursts takes hours on a loaded machine).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from entryexit.biometrics.engine import RECIPE_REVISION
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.bursts import fused_probe
from entryexit.evaluation.crossval import embed_population, population_of
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import CAPTURE_RECIPE, embed_files_cached
from entryexit.evaluation.metrics import threshold_at_far


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--travelers", type=int, default=120)
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--captures-only",
        action="store_true",
        help="capture-recipe templates stand in for the reference ones in gallery entries",
    )
    parser.add_argument(
        "--bursts-file",
        type=Path,
        help="a burst cache of these images (rows in scan order) written under another path",
    )
    args = parser.parse_args()
    engine = build_face_engine(Settings(engine_workers=2))
    paths = [path for _, path in LabelledImages.scan(args.data).all_images()]
    if args.captures_only:
        dataset = LabelledImages.scan(args.data)
        images = dataset.all_images()
        captured = embed_files_cached(engine, paths, args.cache, 2, recipe=CAPTURE_RECIPE)
        identity = {name: name for name in dataset.persons}
        if args.same_person is not None:
            for group in read_same_person_groups(args.same_person):
                present = [name for name in group if name in identity]
                for name in present[1:]:
                    identity[name] = present[0]
        population, _ = population_of(
            captured.vectors,
            captured.vectors,
            captured.enrolled,
            captured.enrolled,
            [identity[person] for person, _ in images],
        )
    else:
        population, _ = embed_population(
            engine, args.data, args.cache, 2, args.same_person, quality_gate=False
        )

    # The key ``embed_bursts`` files its cache under: without it, embedding takes hours.
    digest = hashlib.sha256(
        f"{engine.model}\n{RECIPE_REVISION}\nburst\n{args.frames}\n0\n".encode()
    )
    for path in paths:
        digest.update(f"{path}\t{path.stat().st_size}\n".encode())
    stored = args.bursts_file or args.cache / f"bursts-{digest.hexdigest()[:24]}.npz"
    if not stored.is_file():
        print(f"no synthetic burst cache {stored}: not measured", file=sys.stderr)
        return 3
    with np.load(stored) as cached:
        vectors, weights = cached["vectors"], cached["weights"]
    if vectors.shape[:2] != (len(paths), args.frames):
        print(f"{stored} holds {vectors.shape[:2]} bursts, not these images", file=sys.stderr)
        return 3
    persons = sorted(population.images_of)
    eligible = [p for p in persons if len(population.images_of[p]) >= 3]
    probes = {
        k: {
            i: fused_probe(vectors[i, :k], weights[i, :k])
            for images in population.images_of.values()
            for i in images
        }
        for k in range(1, args.frames + 1)
    }
    rng = np.random.default_rng(args.seed)
    tops: dict[tuple[int, int], list[np.ndarray]] = {}
    for _ in range(args.draws):
        aboard = [int(p) for p in rng.choice(eligible, size=args.travelers, replace=False)]
        chosen = set(aboard)
        others = [i for p in persons if p not in chosen for i in population.images_of[p]]
        for references in (1, 2):
            gallery = np.stack([population.entry(p, references) for p in aboard])
            for k in range(1, args.frames + 1):
                fused = [probes[k][i] for i in others]
                matrix = np.stack([v for v in fused if v is not None])
                tops.setdefault((references, k), []).append((matrix @ gallery.T).max(axis=1))
    print(
        f"{args.draws} flights of {args.travelers} travelers (persons with 3+ photos:"
        f" {len(eligible)}); non-mated k-frame synthetic bursts of everyone else\n"
    )
    print("| references | frames | threshold at FPIR 1e-3 (pooled) | shift over one frame |")
    print("| --- | --- | --- | --- |")
    for references in (1, 2):
        base = threshold_at_far(np.concatenate(tops[(references, 1)]), 1e-3)
        for k in range(1, args.frames + 1):
            value = threshold_at_far(np.concatenate(tops[(references, k)]), 1e-3)
            print(f"| {references} | {k} | {value:.4f} | {value - base:+.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
