"""The verification service through its real HTTP API, as a separate process, beside the
face pipeline alone on the same frames (issue 17).

Measures capture-to-decision latency (single gate client) for galleries of 300 and 1,000
travelers with 640x480 JPEG captures, sustained captures per second with 1, 4 and 16
concurrent gate clients, staging time, and the service process's memory. In the same run, the
pipeline alone (``bench_pipeline.pipeline_baseline``: decode, detect, align, quality, embed,
1:N over 300; the service's engine workers and OpenCV threads) on the same frames, interleaved
with the HTTP rounds so that both see the same machine, and the ratios:

    latency ratio X      HTTP single-client p50 / pipeline single-caller p50
    throughput ratio Y   HTTP captures/s with 4 clients / pipeline captures/s on 2 threads

    .venv/bin/python benchmarks/bench_service.py [--data ../shared/data/lfw-dev]
        [--database-url postgresql+psycopg://...]   (default: SQLite in a scratch directory)
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np

from bench_pipeline import gate_frame, pipeline_baseline, random_gallery
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import engine_settings
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages
from profile_stages import print_stages

PY_SPY_RATE = 200
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"


def service_env(data_dir: Path, database_url: str | None, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "ENTRYEXIT_DATA_DIR": str(data_dir),
        # Keys outside the data directory, as the service requires (and not the user's own).
        "ENTRYEXIT_KEY_DIR": str(data_dir.parent / f"{data_dir.name}-keys"),
        "ENTRYEXIT_MODEL_DIR": str(Settings().resolved_model_dir),
        "ENTRYEXIT_PORT": str(port),
        # One gate key stands in for many gates: its rate limit (20/s by default) would
        # measure the limiter, not the capture path (which still checks it every time).
        "ENTRYEXIT_GATE_REQUESTS_PER_SECOND": "10000",
        "ENTRYEXIT_GATE_BURST": "10000",
    }
    if database_url:
        env["ENTRYEXIT_DATABASE_URL"] = database_url
    return env


def start_service(
    data_dir: Path, database_url: str | None, memoized_model: bool = False
) -> tuple[subprocess.Popen[bytes], str, str, dict[str, str]]:
    """``entryexit serve`` in a scratch directory (or, with ``memoized_model``,
    ``serve_memoized_model.py``: the same service with each distinct frame analysed once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(data_dir, database_url, port)
    subprocess.run(
        [sys.executable, "-m", "entryexit", "keys", "init"],
        env=env,
        check=True,
        capture_output=True,
    )
    log = data_dir / "service.log"
    with log.open("wb") as output:
        command = (
            [sys.executable, str(Path(__file__).with_name("serve_memoized_model.py"))]
            if memoized_model
            else [sys.executable, "-m", "entryexit", "serve"]
        )
        process = subprocess.Popen(command, stdout=output, stderr=output, env=env)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    token = ""
    for _ in range(600):
        if not token and (match := re.search(r"eex_\w+_[\w-]+", log.read_text())):
            token = match.group(0)
        try:
            if token and httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base, token, env
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


def gate_key(env: dict[str, str]) -> str:
    """A gate's key for carrier EE (the role cameras use: it sees decisions only)."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "entryexit",
            "keys",
            "create",
            "--role=gate",
            "--name=gate",
            "--carrier=EE",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip().splitlines()[-1]


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
            "nationality": "XYZ",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"B{i:08d}",
            "issuing_state": "XYZ",
            "document_expiry": "2031-01-01",
        }
        for i, _ in enumerate(persons)
    ]
    client.put(f"/v1/flights/{flight['id']}/manifest", json=rows).raise_for_status()
    started = time.perf_counter()
    client.post(f"/v1/flights/{flight['id']}/gallery").raise_for_status()
    return str(flight["id"]), time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Run:
    latencies_ms: list[float]
    seconds: float
    service_cpu_ms: float  # a capture, the service process's CPU (all its threads)
    client_cpu_ms: float  # a capture, this process's CPU (the load generator)

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds


class GateClient:
    """The load generator's gates: one keep-alive HTTP/1.1 connection a client thread, and each
    frame's multipart body encoded once (a camera sends its bytes; the generator shares the
    service's two cores, so it should cost them as little as it can: httpx's per-request
    multipart encoding took 1.4-1.7 ms of CPU a capture, ~0.4 ms remain).
    The requests are the ones httpx sent: the same form fields, frame and headers."""

    BOUNDARY = "entryexit-bench-boundary"

    def __init__(self, base: str, key: str) -> None:
        address = base.removeprefix("http://")
        host, _, port = address.partition(":")
        self._host, self._port, self._key = host, int(port), key
        self._local = threading.local()
        self._bodies: dict[bytes, bytes] = {}
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> GateClient:
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()

    def _body(self, frame: bytes) -> bytes:
        body = self._bodies.get(frame)
        if body is None:
            parts = [
                f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
                for name, value in (("gate", "G1"), ("device", "bench"))
            ]
            parts.append(
                f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="photo";'
                ' filename="c.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            )
            body = b"".join([*parts, frame, f"\r\n--{self.BOUNDARY}--\r\n".encode()])
            self._bodies[frame] = body
        return body

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=120)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def capture(self, flight_id: str, frame: bytes) -> None:
        body = self._body(frame)
        connection = self._connection()
        connection.request(
            "POST",
            f"/v1/flights/{flight_id}/captures",
            body,
            {
                "X-API-Key": self._key,
                "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}",
                "Content-Length": str(len(body)),
            },
        )
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"capture answered {response.status}: {answer[:300]!r}")


def captures(
    gate: GateClient, flight_id: str, frames: list[bytes], clients: int, service_pid: int
) -> Run:
    latencies: list[float] = []

    def one(frame: bytes) -> None:
        began = time.perf_counter()
        gate.capture(flight_id, frame)
        latencies.append((time.perf_counter() - began) * 1000)

    service_before, client_before = cpu_seconds(service_pid), time.process_time()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, frames))
    seconds = time.perf_counter() - began
    return Run(
        latencies,
        seconds,
        (cpu_seconds(service_pid) - service_before) / len(frames) * 1000,
        (time.process_time() - client_before) / len(frames) * 1000,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--captures", type=int, default=300)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Pipeline and HTTP runs alternate this many times (both see the same load).",
    )
    parser.add_argument(
        "--only-300",
        action="store_true",
        help="Enrol 300 travelers only and skip the 1,000 gallery (a quicker comparison).",
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default SQLite).")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="Afterwards, profile the service with py-spy under 1 and 4 clients (raw samples"
        " in DIR, stages printed by profile_stages.py).",
    )
    parser.add_argument(
        "--memoized-model",
        action="store_true",
        help="Serve with each distinct frame analysed once (serve_memoized_model.py) and report"
        " the service's CPU a capture outside the models, at 1 and 4 clients.",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: data set not found at {args.data}")
        return 0
    dataset = LabelledImages.scan(args.data)
    rng = random.Random(0)
    persons = rng.sample(sorted(dataset.persons), 1000)
    with_more = [p for p in persons if len(dataset.persons[p]) >= 2]
    settings = Settings()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average"
        f" {os.getloadavg()[0]:.1f}; database: {'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        process, base, token, env = start_service(
            Path(scratch) / "data", args.database_url, args.memoized_model
        )
        try:
            with (
                httpx.Client(
                    base_url=base,
                    headers={"X-API-Key": token},
                    timeout=120,
                    limits=httpx.Limits(max_connections=32),
                ) as client,
                GateClient(base, gate_key(env)) as gate,
            ):
                began = time.perf_counter()

                def enrol(item: tuple[int, str]) -> None:
                    index, person = item
                    photo = dataset.persons[person][0].read_bytes()
                    client.post(
                        f"/v1/documents/XYZ/B{index:08d}/photos",
                        files={"photo": ("p.jpg", photo, "image/jpeg")},
                    ).raise_for_status()

                enrolled = persons[:300] if args.only_300 else persons
                with ThreadPoolExecutor(max_workers=4) as pool:
                    list(pool.map(enrol, enumerate(enrolled)))
                enrol_seconds = time.perf_counter() - began
                print(
                    f"enrolled {len(enrolled)} reference photos in {enrol_seconds:.1f} s"
                    " (4 clients)"
                )

                mated = [p for p in with_more if persons.index(p) < 300]
                frames_300 = [
                    gate_frame(rng.choice(dataset.persons[p][1:]), rng)
                    for p in rng.choices(mated, k=args.captures)
                ]
                frames_1000 = [
                    gate_frame(rng.choice(dataset.persons[p][1:]), rng)
                    for p in rng.choices(with_more, k=args.captures)
                ]
                flight_300, staging = make_flight(client, persons[:300])
                print(f"\ngallery of 300: staged in {staging * 1000:.0f} ms")
                if args.memoized_model:
                    request_path(gate, flight_300, frames_300, process.pid, args.rounds)
                    return 0
                compare_with_pipeline(gate, flight_300, frames_300, process.pid, settings, args)
                if args.py_spy is not None:
                    profile(gate, flight_300, frames_300, process.pid, args.py_spy)
                if args.only_300:
                    return 0
                flight_1000, staging = make_flight(client, persons)
                print(f"\ngallery of 1000: staged in {staging * 1000:.0f} ms")
                captures(gate, flight_1000, frames_1000[:10], 1, process.pid)  # warm-up
                run = captures(gate, flight_1000, frames_1000, 1, process.pid)
                p50, p95, p99 = np.percentile(run.latencies_ms, [50, 95, 99])
                print(
                    f"  single client latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms,"
                    f" p99 {p99:.1f} ms ({len(frames_1000)} captures);"
                    f" service CPU {run.service_cpu_ms:.1f} ms a capture"
                )
            rss, peak = memory_mib(process.pid)
            print(f"\nservice process memory: {rss:.0f} MiB resident, peak {peak:.0f} MiB")
        finally:
            process.terminate()
            process.wait(timeout=20)
    return 0


def profile(
    gate: GateClient, flight_id: str, frames: list[bytes], service_pid: int, into: Path
) -> None:
    """py-spy (CPU samples only: idle threads are not sampled) on the service under 1 and 4
    clients, then the stage table of each."""
    into.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    outputs, cpu_ms = [], []
    for clients in (1, 4):
        output = into / f"{clients}-clients.txt"
        command = ["record", "--pid", str(service_pid), "--rate", str(PY_SPY_RATE)]
        command += ["--format", "raw", "--output", str(output), "--nonblocking"]
        recorder = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            [spy, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        run = captures(gate, flight_id, frames, clients, service_pid)
        cpu_ms.append(run.service_cpu_ms)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        outputs.append(output)
    print_stages(outputs, len(frames), PY_SPY_RATE, cpu_ms)


def request_path(
    gate: GateClient, flight_id: str, frames: list[bytes], service_pid: int, rounds: int
) -> None:
    """With the model's answers memoized: the service's CPU a capture outside the models."""
    captures(gate, flight_id, frames, 2, service_pid)  # each frame analysed once, then memoized
    for clients in (1, 4):
        runs = [captures(gate, flight_id, frames, clients, service_pid) for _ in range(rounds)]
        cpu = [run.service_cpu_ms for run in runs]
        print(
            f"  {clients} client{'s' if clients > 1 else ''}, model memoized: service CPU"
            f" {np.mean(cpu):.2f} ms a capture (rounds: {', '.join(f'{ms:.2f}' for ms in cpu)}),"
            f" {np.median([run.rate for run in runs]):.0f} captures/s"
        )


def compare_with_pipeline(
    gate: GateClient,
    flight_id: str,
    frames: list[bytes],
    service_pid: int,
    settings: Settings,
    args: argparse.Namespace,
) -> None:
    """HTTP figures for the 300 gallery and the pipeline's own on the same frames, rounds
    alternating, then the ratios."""
    # The service's own engine settings (workers, recipe, detection options) and OpenCV threads.
    cv2.setNumThreads(settings.opencv_threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    engine = FaceEngine.from_model_dir(settings.resolved_model_dir, engine_settings(settings))
    gallery = random_gallery(300, engine.dimension)
    captures(gate, flight_id, frames[:10], 1, service_pid)  # warm-up
    pipeline_single: list[float] = []
    pipeline_rates: list[float] = []
    pipeline_cpu: list[float] = []
    runs: dict[int, list[Run]] = {1: [], 4: [], 16: []}
    chunks = [frames[i :: args.rounds] for i in range(args.rounds)]
    for chunk in chunks:
        baseline = pipeline_baseline(engine, gallery, chunk, threads=2)
        pipeline_single += baseline.latencies_ms
        pipeline_rates.append(baseline.throughput)
        pipeline_cpu.append(baseline.cpu_ms_per_capture)
        for clients in runs:
            runs[clients].append(captures(gate, flight_id, chunk, clients, service_pid))
    single = [ms for run in runs[1] for ms in run.latencies_ms]
    p50, p95, p99 = np.percentile(single, [50, 95, 99])
    b50, b95, b99 = np.percentile(pipeline_single, [50, 95, 99])
    service_cpu = float(np.mean([run.service_cpu_ms for run in runs[1]]))
    print(
        f"  single client latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"
        f" ({len(single)} captures); service CPU {service_cpu:.1f} ms a capture"
    )
    print(
        f"  pipeline alone, one caller: p50 {b50:.1f} ms, p95 {b95:.1f} ms, p99 {b99:.1f} ms;"
        f" CPU {np.mean(pipeline_cpu):.1f} ms a capture (two callers)"
    )
    pipeline_rate = float(np.median(pipeline_rates))
    print(f"  pipeline alone, two callers: {pipeline_rate:.1f} captures/s")
    rates = {}
    for clients, client_runs in runs.items():
        latencies = [ms for run in client_runs for ms in run.latencies_ms]
        q50, q99 = np.percentile(latencies, [50, 99])
        rates[clients] = float(np.median([run.rate for run in client_runs]))
        service_ms = np.mean([run.service_cpu_ms for run in client_runs])
        client_ms = np.mean([run.client_cpu_ms for run in client_runs])
        print(
            f"  {clients:2} clients: {rates[clients]:5.1f} captures/s"
            f" (p50 {q50:.0f} ms, p99 {q99:.0f} ms; service CPU {service_ms:.1f} ms a capture;"
            f" load generator CPU {client_ms:.1f} ms a capture,"
            f" {client_ms * rates[clients] / 10:.0f}% of a core)"
        )
    print(f"latency ratio {p50 / b50:.2f}")
    print(f"p99 latency ratio {p99 / b99:.2f}")
    print(f"throughput ratio {rates[4] / pipeline_rate:.2f}")
    print(f"16 clients / 4 clients throughput {rates[16] / rates[4]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
