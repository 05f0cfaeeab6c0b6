"""One capture against a large watchlist: latency and recall of the index the service uses.

    .venv/bin/python benchmarks/bench_watchlist.py --data ../shared/data/lfw-dev \\
        --entries 100000 1000000

The list is built from lfw-dev templates (deployed capture recipe): each person's first photo
is a real entry, and the rest of the list is filled with distractors made from all lfw-dev
templates by random rotations, one per copy of the set: each copy keeps the clustered shape of
real templates (what an IVF index partitions), while a probe meets it as an impostor (scores
around 0; a Gaussian fitted to the templates gave scores far above real impostor rates). The
true mates are the listed people's first photos. Probes are the other photos of the listed
people. Recall = share of the (probe, entry) pairs that exact search finds at or above the
operating threshold which the index also finds. Latency is per single probe (one capture).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from entryexit.adapters.search.faiss_index import EXACT_LIMIT, ExactIndex, HnswIndex
from entryexit.biometrics.compare import l2_normalise
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages
from entryexit.evaluation.embedding import embed_files_cached

THRESHOLD = 0.484  # the deployed 1:N threshold (policy target FPIR 1e-3, SFace flip recipe)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    engine = build_face_engine(Settings(engine_workers=2))
    dataset = LabelledImages.scan(args.data)
    images = dataset.all_images()
    embedded = embed_files_cached(engine, [p for _, p in images], args.cache, threads=2)
    vectors = embedded.vectors
    by_person: dict[str, list[int]] = {}
    for index, (person, _) in enumerate(images):
        if embedded.enrolled[index]:
            by_person.setdefault(person, []).append(index)
    listed = [p for p, rows in by_person.items() if len(rows) >= 2]
    real = np.stack([vectors[by_person[p][0]] for p in listed])
    probe_rows = [i for p in listed for i in by_person[p][1:]]
    probes = vectors[rng.choice(probe_rows, size=min(args.probes, len(probe_rows)), replace=False)]
    print(f"threshold {THRESHOLD}; {len(probes)} probes; exact search up to {EXACT_LIMIT:,}")
    print("| entries | search | efSearch | build s | p50 ms | p95 ms | recall at threshold |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    enrolled = vectors[embedded.enrolled]
    dimension = enrolled.shape[1]
    for count in args.entries:
        copies: list[np.ndarray] = []
        while sum(len(c) for c in copies) < count - len(real):
            rotation, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
            copies.append(enrolled @ rotation.astype(np.float32))
        fill = l2_normalise(np.vstack(copies)[: count - len(real)])
        matrix = np.vstack([real, fill]).astype(np.float32)
        del fill
        exact = ExactIndex(matrix)
        truth = {(r, c) for r, c, _ in exact.search(probes, THRESHOLD)}
        report(count, "exact", "-", 0.0, exact, probes, truth)
        start = time.perf_counter()
        hnsw = HnswIndex(matrix)
        build = time.perf_counter() - start
        for ef_search in args.ef_search:
            hnsw.ef_search = ef_search
            report(count, "HNSW", str(ef_search), build, hnsw, probes, truth)
    return 0


def report(count, kind, nprobe, build, index, probes, truth) -> None:  # type: ignore[no-untyped-def]
    timings, found = [], set()
    for row, probe in enumerate(probes):
        start = time.perf_counter()
        hits = index.search(probe[np.newaxis, :], THRESHOLD)
        timings.append((time.perf_counter() - start) * 1000)
        found |= {(row, c) for _, c, _ in hits}
    recall = len(found & truth) / len(truth) if truth else 1.0
    print(
        f"| {count:,} | {kind} | {nprobe} | {build:.1f} | {np.median(timings):.2f}"
        f" | {np.percentile(timings, 95):.2f} | {recall * 100:.2f}% ({len(truth)} pairs) |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
