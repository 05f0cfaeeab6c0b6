"""The fleet under load: gate captures per second and latency p50/p99 through HAProxy (TLS,
the shipped deploy/haproxy/entryexit.cfg) in front of 1, 2 and 3 service instances on one
PostgreSQL primary, then the failover: one instance SIGKILLed mid-load, and how long its
in-flight captures take to be answered by the gates' retries (same Idempotency-Key).

Every instance runs on the same machine, so they share its cores: on a 2-core host a third
instance adds processes, not CPU. The figures say what the topology costs and how it fails
over here, not how an agency's fleet of separate hosts scales.

    .venv/bin/python benchmarks/bench_fleet.py [--data ../shared/data/lfw-dev]
        [--captures 300] [--clients 6]

Needs what the fleet test needs: root (PostgreSQL runs as the postgres user), Debian's
PostgreSQL server and haproxy (scripts/lib/postgres.sh, scripts/lib/haproxy.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lfw-dev"


@dataclass
class Attempted:
    """One capture as its gate saw it: every try with the same key, until a decision."""

    key: str
    first_sent: float = 0.0
    latency: float | None = None  # the successful try's own round trip
    decided_after: float | None = None  # from the first try to the decision
    failures: list[str] = field(default_factory=list)
    capture_ids: set[str] = field(default_factory=set)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def send_capture(
    client: httpx.Client, fleet: Any, flight_id: str, photo: bytes, item: Attempted
) -> None:
    """As a gate does: retry with the same key on anything that is not a decision."""
    headers = {"X-API-Key": fleet.keys["gate"], "Idempotency-Key": item.key}
    item.first_sent = time.monotonic()
    for attempt in range(20):
        began = time.monotonic()
        try:
            response = client.post(
                f"/v1/flights/{flight_id}/captures",
                files={"photo": ("c.jpg", photo, "image/jpeg")},
                data={"gate": "G1", "device": "bench"},
                headers=headers,
            )
        except httpx.TransportError as exc:
            item.failures.append(type(exc).__name__)
        else:
            if response.status_code == 200:
                now = time.monotonic()
                item.latency = now - began
                item.decided_after = now - item.first_sent
                item.capture_ids.add(response.json()["capture_id"])
                return
            item.failures.append(str(response.status_code))
            if response.status_code < 500 and response.status_code != 429:
                return
        time.sleep(min(0.2 * (attempt + 1), 1.5))


def load(
    fleet: Any, work: list[tuple[str, bytes]], clients: int, during: Any = None
) -> tuple[list[Attempted], float]:
    items = [Attempted(str(uuid.uuid4())) for _ in work]
    local = threading.local()

    def one(index: int) -> None:
        if not hasattr(local, "client"):
            local.client = fleet.client(timeout=60)
        flight_id, photo = work[index]
        send_capture(local.client, fleet, flight_id, photo, items[index])

    began = time.monotonic()
    watcher = None
    if during is not None:
        watcher = threading.Thread(target=during, args=(items,), daemon=True)
        watcher.start()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(len(work))))
    if watcher is not None:
        watcher.join(timeout=60)
    return items, time.monotonic() - began


def summary(items: list[Attempted], seconds: float) -> dict[str, Any]:
    latencies = [i.latency * 1000 for i in items if i.latency is not None]
    result: dict[str, Any] = {
        "captures": len(items),
        "decided": len(latencies),
        "seconds": round(seconds, 1),
        "captures_per_second": round(len(latencies) / seconds, 2),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "retried": sum(1 for i in items if i.failures),
        "failures": sorted({f for i in items for f in i.failures}),
        "keys_with_two_capture_ids": sum(1 for i in items if len(i.capture_ids) > 1),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--captures", type=int, default=300, help="per configuration")
    parser.add_argument("--clients", type=int, default=6, help="concurrent gates")
    args = parser.parse_args()
    if not (args.data / "images").is_dir():
        parser.error(f"no lfw-dev images in {args.data}")

    sys.path.insert(0, str(REPO))
    from tests.fleet import cluster as launch
    from tests.fleet.test_fleet import _board_setup, _photo

    from entryexit.config import Settings

    model_dir = Settings().resolved_model_dir
    results: dict[str, Any] = {"clients": args.clients, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        root = Path(scratch)
        with launch.cluster(root, model_dir, instances=3) as running:
            with launch.balancer(running, 3, "setup") as fleet:
                boarding = _board_setup(fleet, args.data)
            photos = [(flight, _photo(args.data, person, 2)) for flight, person in boarding]
            work = [photos[n % len(photos)] for n in range(args.captures)]
            for use in (1, 2, 3):
                with launch.balancer(running, use, f"lb-{use}") as fleet:
                    load(fleet, photos[: 2 * use * args.clients // 2], args.clients)  # warm up
                    items, seconds = load(fleet, work, args.clients)
                results[f"instances_{use}"] = summary(items, seconds)
                print(f"{use} instance(s): {json.dumps(results[f'instances_{use}'])}", flush=True)

            with launch.balancer(running, 3, "failover") as fleet:
                victim = running.instances[0]
                killed_at: list[float] = []

                def kill_mid_load(items: list[Attempted]) -> None:
                    while sum(1 for i in items if i.decided_after is not None) < len(items) // 3:
                        time.sleep(0.05)
                    victim.send_signal(signal.SIGKILL)
                    killed_at.append(time.monotonic())

                items, seconds = load(fleet, work, args.clients, during=kill_mid_load)
            # In flight when the instance died: sent before the kill, answered only by a retry.
            hit = [
                i
                for i in items
                if i.failures
                and killed_at
                and i.first_sent <= killed_at[0] < i.first_sent + (i.decided_after or 1e9)
            ]
            after_kill = [
                i.first_sent + (i.decided_after or 0) - killed_at[0]
                for i in hit
                if i.decided_after is not None
            ]
            results["failover"] = {
                **summary(items, seconds),
                "in_flight_at_kill_retried": len(hit),
                "retried_decided": len(after_kill),
                "decided_after_kill_s_max": round(max(after_kill, default=0.0), 2),
                "decided_after_kill_s_median": round(statistics.median(after_kill), 2)
                if after_kill
                else None,
                "first_try_to_decision_s_max": round(
                    max((i.decided_after or 0.0 for i in hit), default=0.0), 2
                ),
                "failures_seen_by_them": sorted({f for i in hit for f in i.failures}),
            }
            print(f"failover: {json.dumps(results['failover'])}", flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
