"""The verification service through its real HTTP API, as a separate process.

Measures capture-to-decision latency (single client) for galleries of 300 and 1,000 travelers
with 640x480 JPEG captures, sustained captures per second with 1, 4 and 16 concurrent gate
clients, staging time for 300 travelers, and the service process's memory.

    .venv/bin/python benchmarks/bench_service.py [--data ../shared/data/lfw-dev]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np

from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"


def gate_frame(path: Path, rng: random.Random) -> bytes:
    """An lfw-dev photo placed at a random spot in a 640x480 frame, as a gate camera sees it."""
    face = cv2.imread(str(path))
    size = rng.randrange(220, 300)
    frame = np.full((480, 640, 3), rng.randrange(80, 160), np.uint8)
    x, y = rng.randrange(0, 640 - size), rng.randrange(0, 480 - size)
    frame[y : y + size, x : x + size] = cv2.resize(face, (size, size))
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def start_service(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "ENTRYEXIT_DATA_DIR": str(data_dir),
        # Keys outside the data directory, as the service requires (and not the user's own).
        "ENTRYEXIT_KEY_DIR": str(data_dir.parent / f"{data_dir.name}-keys"),
        "ENTRYEXIT_MODEL_DIR": str(Settings().resolved_model_dir),
        "ENTRYEXIT_PORT": str(port),
    }
    subprocess.run(
        [sys.executable, "-m", "entryexit", "keys", "init"],
        env=env,
        check=True,
        capture_output=True,
    )
    log = data_dir / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "entryexit", "serve"], stdout=output, stderr=output, env=env
        )
    base = f"http://127.0.0.1:{port}"
    token = ""
    for _ in range(600):
        if not token and (match := re.search(r"eex_\w+_[\w-]+", log.read_text())):
            token = match.group(0)
        try:
            if token and httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base, token
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"the service did not start:\n{log.read_text()}")


def memory_mib(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (all its threads): unlike latency, this hardly
    moves when other processes share the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_flight(client: httpx.Client, persons: list[str]) -> tuple[str, float]:
    departure = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    flight = client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": "7",
            "scheduled_departure": departure,
            "origin": "AAA",
            "destination": "BBB",
            "direction": "exit",
        },
    ).json()
    rows = [
        {
            "surname": f"P{i}",
            "given_names": "",
            "date_of_birth": "1970-01-01",
            "sex": "X",
            "nationality": "UTO",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"B{i:08d}",
            "issuing_state": "UTO",
            "document_expiry": "2031-01-01",
        }
        for i, _ in enumerate(persons)
    ]
    client.put(f"/v1/flights/{flight['id']}/manifest", json=rows).raise_for_status()
    started = time.perf_counter()
    client.post(f"/v1/flights/{flight['id']}/gallery").raise_for_status()
    return str(flight["id"]), time.perf_counter() - started


def captures(
    client: httpx.Client, flight_id: str, frames: list[bytes], clients: int
) -> tuple[list[float], float]:
    latencies: list[float] = []

    def one(frame: bytes) -> None:
        began = time.perf_counter()
        response = client.post(
            f"/v1/flights/{flight_id}/captures",
            files={"photo": ("c.jpg", frame, "image/jpeg")},
            data={"gate": "G1", "device": "bench"},
        )
        response.raise_for_status()
        latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, frames))
    return latencies, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--captures", type=int, default=300)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: data set not found at {args.data}")
        return 0
    dataset = LabelledImages.scan(args.data)
    rng = random.Random(0)
    persons = rng.sample(sorted(dataset.persons), 1000)
    with_more = [p for p in persons if len(dataset.persons[p]) >= 2]
    with tempfile.TemporaryDirectory() as scratch:
        process, base, token = start_service(Path(scratch))
        try:
            with httpx.Client(
                base_url=base,
                headers={"X-API-Key": token},
                timeout=120,
                limits=httpx.Limits(max_connections=32),
            ) as client:
                began = time.perf_counter()

                def enrol(item: tuple[int, str]) -> None:
                    index, person = item
                    photo = dataset.persons[person][0].read_bytes()
                    client.post(
                        f"/v1/documents/UTO/B{index:08d}/photos",
                        files={"photo": ("p.jpg", photo, "image/jpeg")},
                    ).raise_for_status()

                with ThreadPoolExecutor(max_workers=4) as pool:
                    list(pool.map(enrol, enumerate(persons)))
                enrol_seconds = time.perf_counter() - began
                print(f"enrolled 1000 reference photos in {enrol_seconds:.1f} s (4 clients)")

                mated = [p for p in with_more if persons.index(p) < 300]
                frames_300 = [
                    gate_frame(rng.choice(dataset.persons[p][1:]), rng)
                    for p in rng.choices(mated, k=args.captures)
                ]
                frames_1000 = [
                    gate_frame(rng.choice(dataset.persons[p][1:]), rng)
                    for p in rng.choices(with_more, k=args.captures)
                ]
                for size, frames in ((300, frames_300), (1000, frames_1000)):
                    flight_id, staging = make_flight(client, persons[:size])
                    print(f"\ngallery of {size}: staged in {staging * 1000:.0f} ms")
                    captures(client, flight_id, frames[:10], 1)  # warm-up
                    cpu_before = cpu_seconds(process.pid)
                    latencies, _ = captures(client, flight_id, frames, 1)
                    cpu_each = (cpu_seconds(process.pid) - cpu_before) / len(frames) * 1000
                    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
                    print(
                        f"  single client latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms,"
                        f" p99 {p99:.1f} ms ({len(frames)} captures);"
                        f" service CPU {cpu_each:.1f} ms a capture"
                    )
                    if size == 300:
                        for clients in (1, 4, 16):
                            cpu_before = cpu_seconds(process.pid)
                            lat, seconds = captures(client, flight_id, frames, clients)
                            cpu_each = (cpu_seconds(process.pid) - cpu_before) / len(frames)
                            q50, q99 = np.percentile(lat, [50, 99])
                            rate = len(frames) / seconds
                            print(
                                f"  {clients:2} clients: {rate:5.1f} captures/s"
                                f" (p50 {q50:.0f} ms, p99 {q99:.0f} ms;"
                                f" service CPU {cpu_each * 1000:.1f} ms a capture)"
                            )
            rss, peak = memory_mib(process.pid)
            print(f"\nservice process memory: {rss:.0f} MiB resident, peak {peak:.0f} MiB")
        finally:
            process.terminate()
            process.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
