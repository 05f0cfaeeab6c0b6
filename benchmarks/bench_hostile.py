"""Worst-case costs of hostile input: manifests (time) and images (time, peak RSS).

Each case runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its own;
the RSS the child had just before the case (interpreter, libraries, face models) is printed
beside it. Times are the minimum of ``--repeats`` runs (the machine is shared: medians are
noisy), except that a case whose first run takes longer than 10 s is not repeated.

    .venv/bin/python benchmarks/bench_hostile.py                 # every case
    .venv/bin/python benchmarks/bench_hostile.py --case png_6300  # one case

Run against another checkout (the "before" figures) with ``PYTHONPATH=OTHER/src``.

Cases:
  paxlst_1mb_field   a PAXLST whose one NAD field is 1 MB
  paxlst_70000       a PAXLST listing 70,000 travelers
  png_6300           a 6300x6300 PNG capture (the issue's ~116 KB image), engine.analyse
  png_4096           a 4096x3072 PNG capture (the largest a gate frame may be now)
  jpeg_6300          a 6300x6300 JPEG capture
  concurrent_png_6300 / concurrent_png_4096
                     --concurrency (8) captures of that image at once through one engine
  gate_during_manifest
                     gate capture latency (p50/p99/max, one gate client over HTTP to a
                     uvicorn server on SQLite in a process of its own, as deployed, so
                     that the client does not share the server's GIL) on one flight,
                     alone and while a 10,000-traveler JSON manifest and then a
                     10,000-traveler PAXLST are uploaded to another flight; the server's
                     peak RSS (with its manifest workers) after each (needs
                     ../shared/data/lfw-dev)
  manifest_stages    where the CPU of a 10,000-traveler JSON and PAXLST upload goes (thread
                     CPU per stage, in one process over SQLite: reading and validating,
                     then writing the batches, and of that the sealing), a first upload
                     and the same manifest again
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from entryexit.biometrics import FaceEngine
    from entryexit.domain.model import ManifestTraveler

TODAY = date(2026, 11, 23)
CASES = (
    "paxlst_1mb_field",
    "paxlst_70000",
    "png_6300",
    "png_4096",
    "jpeg_6300",
    "concurrent_png_6300",
    "concurrent_png_4096",
    "gate_during_manifest",
    "manifest_stages",
)
LFW = Path(
    os.environ.get(
        "ENTRYEXIT_LFW_DEV", Path(__file__).resolve().parents[1] / "../shared/data/lfw-dev"
    )
)


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(run: Callable[[], str], repeats: int) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        outcome = run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        if elapsed > 10:
            break
    return best, outcome


def _paxlst(travelers: int, field: int = 0) -> bytes:
    body = ["UNH+1+PAXLST:D:05B:UN:IATA", "BGM+745", "TDT+20+XY123+++XY"]
    if field:
        body.append("NAD+FL+++" + "A" * field + ":JANE")
    for index in range(travelers):
        body += [
            "NAD+FL+++DOE:JANE",
            "ATT+2++F",
            "DTM+329:19800101",
            "NAT+2+FRA",
            f"DOC+P:110:111+N{index:08d}",
            "DTM+36:20300101",
            "LOC+91+FRA",
        ]
    body.append(f"UNT+{len(body) + 1}+1")
    return "".join(f"{segment}'" for segment in body).encode()


def _parse(data: bytes) -> str:
    from entryexit.documents.paxlst import parse_paxlst
    from entryexit.errors import EntryExitError

    try:
        message = parse_paxlst(data, TODAY, "UTO")
    except EntryExitError as exc:
        return f"refused ({type(exc).__name__}: {exc.message[:70]})"
    return f"accepted {len(message.travelers)} travelers, {len(message.flagged)} flagged"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 120, 110)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    small.resize((width, height)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _engine() -> FaceEngine:
    from entryexit.biometrics import EngineSettings, FaceEngine
    from entryexit.config import Settings

    return FaceEngine.from_model_dir(Settings().resolved_model_dir, EngineSettings(workers=2))


def _analyse(engine, data: bytes) -> str:  # type: ignore[no-untyped-def]
    from entryexit.errors import EntryExitError

    try:
        analysis = engine.analyse(data)
    except EntryExitError as exc:
        return f"{type(exc).__name__}: {exc.message[:60]}"
    return f"analysed {analysis.image_width}x{analysis.image_height}"


def _json_manifest(travelers: int) -> bytes:
    import json

    rows = [
        {
            "surname": "DOE",
            "given_names": "JANE",
            "date_of_birth": "1980-01-01",
            "sex": "F",
            "nationality": "XYZ",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"J{index:08d}",
            "issuing_state": "XYZ",
            "document_expiry": "2031-01-01",
        }
        for index in range(travelers)
    ]
    return json.dumps({"travelers": rows}).encode()


def _percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no captures"
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered):4d} p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
        f"  max {ordered[-1] * 1000:7.1f} ms"
    )


def _serve_gate_bench(scratch: Path) -> None:
    """The server side of ``gate_during_manifest``, run as a process of its own (as in a
    deployment): builds the service on a scratch SQLite database, writes its port and API
    keys to ``scratch/ready``, and serves until killed."""
    import socket

    import uvicorn

    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.api.app import create_app
    from entryexit.bootstrap import build_services
    from entryexit.cli.serve import server_config
    from entryexit.config import Settings
    from entryexit.domain.access import Role

    settings = Settings(
        data_dir=scratch / "data",
        # Keys outside the data directory, as the service requires (and not the user's own).
        key_dir=scratch / "keys",
        database_url=f"sqlite+pysqlite:///{scratch / 'data' / 'entryexit.db'}",
        gate_requests_per_second=1000,
        gate_burst=1000,
    )
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(settings, engine=_engine(), keys=keys)
    admin = services.keys.create_first_admin()
    gate = services.keys.create(Role.GATE, "bench gate", carrier="EE")[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        server_config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )

    def announce() -> None:
        while not server.started:
            time.sleep(0.05)
        (scratch / "ready").write_text(f"{port} {admin} {gate}")

    threading.Thread(target=announce, daemon=True).start()
    server.run()


def _peak_tree_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of a process plus its children (a manifest worker, say)."""
    total = 0.0
    pids = [pid]
    # Children are listed per thread (the worker is started by a request's thread).
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _gate_during_manifest() -> None:
    import tempfile

    lfw = (LFW / "images").resolve()
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)[:20]
    scratch = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    server_process = subprocess.Popen(  # noqa: S603 - this script, run again as the server
        [sys.executable, __file__, "--serve-gate-bench", str(scratch)]
    )
    try:
        while not (scratch / "ready").exists():
            if server_process.poll() is not None:
                raise SystemExit("the server process stopped before it was ready")
            time.sleep(0.1)
        port, admin, gate = (scratch / "ready").read_text().split()
        _gate_client_side(f"http://127.0.0.1:{port}", admin, gate, people, server_process.pid)
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) of the server process itself (all its threads: what competes
    with the gates for its interpreter lock) and of its child processes (manifest workers)."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(each: int) -> float:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    children = [
        int(child)
        for listing in Path(f"/proc/{pid}/task").glob("*/children")
        for child in listing.read_text().split()
    ]
    return of(pid), sum(of(child) for child in children)


def _gate_client_side(
    base: str, admin: str, gate: str, people: list[Path], server_pid: int
) -> None:
    from datetime import UTC, datetime, timedelta

    import httpx

    admin_headers = {"X-API-Key": admin}

    def new_flight(client: httpx.Client) -> str:
        response = client.post(
            "/v1/flights",
            json={
                "carrier": "EE",
                "number": "101",
                "scheduled_departure": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
            },
            headers=admin_headers,
        )
        response.raise_for_status()
        return str(response.json()["id"])

    with httpx.Client(base_url=base, timeout=600) as client:
        gate_flight, upload_flight = new_flight(client), new_flight(client)
        rows = [
            {
                "surname": person.name.split("_")[-1].upper()[:30],
                "given_names": "TEST",
                "date_of_birth": "1970-01-01",
                "sex": "M",
                "nationality": "XYZ",
                "citizenship_class": "foreign_national",
                "document_type": "passport",
                "document_number": f"G{index:07d}",
                "issuing_state": "XYZ",
                "document_expiry": "2031-01-01",
            }
            for index, person in enumerate(people)
        ]
        client.put(
            f"/v1/flights/{gate_flight}/manifest", json={"travelers": rows}, headers=admin_headers
        ).raise_for_status()
        for index, person in enumerate(people):
            photo = sorted(person.glob("*.jpg"))[0]
            client.post(
                f"/v1/documents/XYZ/G{index:07d}/photos",
                files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
                headers=admin_headers,
            ).raise_for_status()
        client.post(f"/v1/flights/{gate_flight}/gallery", headers=admin_headers).raise_for_status()
    captures = [sorted(p.glob("*.jpg"))[1].read_bytes() for p in people]
    latencies: list[tuple[float, float]] = []  # (start, seconds)
    failures: list[str] = []
    stop = threading.Event()

    def gate_client() -> None:
        with httpx.Client(base_url=base, timeout=600) as client:
            index = 0
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    response = client.post(
                        f"/v1/flights/{gate_flight}/captures",
                        files={"photo": ("c.jpg", captures[index % len(captures)], "image/jpeg")},
                        data={"gate": "G1", "device": "cam-1"},
                        headers={"X-API-Key": gate},
                    )
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__  # type: ignore[assignment]
                latencies.append((start, time.perf_counter() - start))
                if status != 200:
                    failures.append(f"{status}")
                index += 1

    def window(start: float, end: float) -> list[float]:
        return [seconds for began, seconds in latencies if began < end and began + seconds > start]

    manifests = {
        "json": (_json_manifest(10_000), "application/json"),
        "paxlst": (_paxlst(10_000), "application/edifact"),
    }
    worker = threading.Thread(target=gate_client)
    worker.start()
    try:
        time.sleep(1.0)  # warm-up
        quiet_start = time.perf_counter()
        time.sleep(5.0)
        print(
            f"  alone                    {_percentiles(window(quiet_start, time.perf_counter()))}"
            f"  (server peak RSS {_peak_tree_mib(server_pid):5.0f} MiB)"
        )
        with httpx.Client(base_url=base, timeout=600) as client:
            for name, (body, content_type) in manifests.items():
                cpu_before = _cpu_seconds(server_pid)
                start = time.perf_counter()
                response = client.put(
                    f"/v1/flights/{upload_flight}/manifest",
                    content=body,
                    headers={**admin_headers, "Content-Type": content_type},
                )
                end = time.perf_counter()
                cpu_after = _cpu_seconds(server_pid)
                print(
                    f"  during {name:6} upload    {_percentiles(window(start, end))}"
                    f"  (upload {end - start:5.1f} s, {response.status_code};"
                    f" failed captures so far: {len(failures)} {sorted(set(failures))};"
                    f" server peak RSS {_peak_tree_mib(server_pid):5.0f} MiB;"
                    f" CPU meanwhile: server {cpu_after[0] - cpu_before[0]:5.1f} s,"
                    f" its workers {cpu_after[1] - cpu_before[1]:5.1f} s)"
                )
                time.sleep(1.0)
    finally:
        stop.set()
        worker.join()


def _manifest_stages() -> None:
    import tempfile
    from collections import defaultdict
    from datetime import UTC, datetime

    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.adapters.storage import sealing
    from entryexit.adapters.storage.database import create_database_engine, migrate
    from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
    from entryexit.documents.manifest import parse_json_manifest
    from entryexit.documents.paxlst import parse_paxlst
    from entryexit.domain.model import Direction
    from entryexit.services.audit import AuditTrail
    from entryexit.services.flights import FlightService, NewFlight

    spent: dict[str, float] = defaultdict(float)
    # (open_personal unwraps the data key itself: unwrap is not counted apart.)
    for name in ("digest", "new_data_key_values", "seal_personal", "open_personal"):
        original = getattr(sealing.Sealer, name)

        def timed(*args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            start = time.thread_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] += time.thread_time() - start

        setattr(sealing.Sealer, name, timed)
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    scratch = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    keys = FileKeyProvider(scratch / "keys")
    keys.initialise()
    engine = create_database_engine(f"sqlite+pysqlite:///{scratch / 'entryexit.db'}")
    migrate(engine)
    factory = SqlUnitOfWorkFactory(engine, keys)
    flights = FlightService(
        factory, lambda: now, "m", AuditTrail(factory, lambda: now, keys), manifest_pause=0
    )
    readers: dict[str, tuple[bytes, Callable[[bytes], list[ManifestTraveler]]]] = {
        "json": (_json_manifest(10_000), lambda data: parse_json_manifest(data, TODAY, "UTO")),
        "paxlst": (
            _paxlst(10_000),
            lambda data: list(parse_paxlst(data, TODAY, "UTO").travelers),
        ),
    }
    for name, (body, read) in readers.items():
        flight = flights.create(NewFlight("EE", "1", now, "AAA", "BBB", Direction.EXIT))
        start = time.thread_time()
        travelers = read(body)
        print(f"  {name:6} read and validate    {(time.thread_time() - start) * 1000:7.0f} ms CPU")
        for attempt in ("first upload", "same again"):
            spent.clear()
            start = time.thread_time()
            flights.put_manifest(flight.id, travelers)
            total = time.thread_time() - start
            sealed = sum(spent.values())
            parts = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(spent.items()))
            rest = (total - sealed) * 1000
            print(
                f"  {name:6} write, {attempt:12} {total * 1000:7.0f} ms CPU, of which sealing"
                f" {sealed * 1000:5.0f} ms ({parts}); SQL and the rest {rest:5.0f} ms"
            )
    engine.dispose()


def run_case(case: str, repeats: int, concurrency: int) -> None:
    images = {"png_6300": (_png, 6300), "png_4096": (_png, 4096), "jpeg_6300": (_jpeg, 6300)}
    if case == "gate_during_manifest":
        print(f"{case}: gate capture latency on one flight, uploads to another")
        _gate_during_manifest()
        return
    if case == "manifest_stages":
        print(f"{case}: thread CPU per stage of a 10,000-traveler upload (SQLite)")
        _manifest_stages()
        return
    if case.startswith("paxlst"):
        data = _paxlst(70_000) if case == "paxlst_70000" else _paxlst(1, field=1_000_000)
        baseline = _rss_mib()
        seconds, outcome = _timed(lambda: _parse(data), repeats)
    elif case in images:
        make, side = images[case]
        data = make(side, 6300 if side == 6300 else 3072)
        engine = _engine()
        baseline = _rss_mib()
        seconds, outcome = _timed(lambda: _analyse(engine, data), repeats)
        outcome += f" ({len(data) // 1024} KiB)"
    else:
        name = case.removeprefix("concurrent_")
        make, side = images[name]
        data = make(side, 6300 if side == 6300 else 3072)
        engine = _engine()
        baseline = _rss_mib()
        outcomes: list[str] = []

        def one() -> None:
            outcomes.append(_analyse(engine, data))

        start = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        outcome = f"{concurrency} at once: {sorted(set(outcomes))}"
    print(
        f"{case:22} {seconds * 1000:10.1f} ms  peak RSS {_peak_mib():7.0f} MiB"
        f" (before the case {baseline:5.0f} MiB)  {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve-gate-bench", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gate_bench:
        _serve_gate_bench(args.serve_gate_bench)
        return
    if args.case:
        run_case(args.case, args.repeats, args.concurrency)
        return
    import entryexit

    print(f"entryexit from {Path(entryexit.__file__).parent}; min of {args.repeats} runs")
    for case in CASES:
        subprocess.run(  # noqa: S603 - this script, run again with one of its own cases
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--repeats",
                str(args.repeats),
                "--concurrency",
                str(args.concurrency),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
