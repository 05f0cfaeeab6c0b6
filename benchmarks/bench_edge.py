"""The edge against keyless clients (session 9 probe G1 and G2), replayed against a server
process of its own (the full service: API, console, kiosk; SQLite on a scratch directory).

    .venv/bin/python benchmarks/bench_edge.py g1   # gate answered while 4 addresses hold the table
    .venv/bin/python benchmarks/bench_edge.py g2   # server RSS with anonymous 16 MiB bodies held
    .venv/bin/python benchmarks/bench_edge.py l4   # server CPU a POST with a made-up kiosk cookie
    .venv/bin/python benchmarks/bench_edge.py keys # server CPU a request with a made-up API key

Run against another checkout (the "before" figures) with ``PYTHONPATH=OTHER/src``.

g1: ``ENTRYEXIT_MAX_CONNECTIONS=64``; 4 loopback addresses (127.0.0.2-5) x 32 connections
each send the headers of an anonymous ``POST /console/login`` (``Content-Length: 100000``,
no body) and re-open what the server closes, for ``--seconds``; meanwhile a gate with its
key posts a capture every 0.25 s, on a keep-alive and a fresh connection in turn. Prints the
gate's answered attempts (any HTTP status) and the server's CPU seconds (user + system).
g2: N anonymous connections each send a multipart POST of just under 16 MiB but its last
100 bytes and hold it; the server's RSS before, with 10 and 30 held, and after.
l4 (session 9 review L4): ``--requests`` POSTs of ``/kiosk/captures`` from one address, each
on its own connection with a made-up ``entryexit_kiosk`` cookie and a 1 KB multipart body;
the server's CPU seconds (user + system, all its threads) per request, and the answers.
keys (session 10): as l4 with a made-up ``X-API-Key`` instead of a cookie, ``--requests``
POSTs of ``/v1/flights/{id}/captures`` (1 KB multipart), then as many GETs of
``/v1/flights/{id}``; each 50th request is instead the gate's own capture post (its key, the
same address), whose answers are counted apart (401 or 429 would be the gate refused).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def _serve(scratch: Path) -> None:
    import uvicorn

    from entryexit.adapters.crypto.keys import FileKeyProvider
    from entryexit.biometrics import EngineSettings, FaceEngine
    from entryexit.bootstrap import build_services
    from entryexit.cli.connections import guard_for
    from entryexit.cli.serve import server_config
    from entryexit.config import Settings
    from entryexit.domain.access import Role
    from entryexit.web.app import create_service_app

    settings = Settings(
        data_dir=scratch / "data",
        key_dir=scratch / "keys",
        database_url=f"sqlite+pysqlite:///{scratch / 'data' / 'entryexit.db'}",
        max_connections=64,
        gate_requests_per_second=1000,
        gate_burst=1000,
    )
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(
        settings,
        engine=FaceEngine.from_model_dir(Settings().resolved_model_dir, EngineSettings(workers=1)),
        keys=keys,
    )
    services.keys.create_first_admin()
    gate = services.keys.create(Role.GATE, "bench gate", carrier="EE")[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = server_config(
        create_service_app(services),
        guard_for(settings),
        host="127.0.0.1",
        port=port,
        log_level="critical",
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            time.sleep(0.05)
        (scratch / "ready").write_text(f"{port} {gate}")

    threading.Thread(target=announce, daemon=True).start()
    server.run()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _g1(port: int, gate: str, pid: int, seconds: float) -> None:
    head = (
        b"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
        b"boundary=zz\r\nContent-Length: 100000\r\n\r\n--zz\r\n"
    )
    stop = threading.Event()

    def holder(source: str) -> None:
        while not stop.is_set():
            try:
                connection = socket.create_connection(
                    ("127.0.0.1", port), timeout=2, source_address=(source, 0)
                )
            except OSError:
                time.sleep(0.05)
                continue
            with connection:
                with contextlib.suppress(OSError):
                    connection.sendall(head)
                while not stop.is_set():
                    try:
                        if connection.recv(4096) == b"":
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        break

    photo = b"\xff\xd8" + os.urandom(20_000)  # answered 404 (no such flight): any status counts
    files = {"photo": ("a.jpg", photo, "image/jpeg")}
    url = f"http://127.0.0.1:{port}/v1/flights/00000000-0000-0000-0000-000000000000/captures"
    threads = [
        threading.Thread(target=holder, args=(f"127.0.0.{2 + n // 32}",), daemon=True)
        for n in range(128)
    ]
    cpu_before = _cpu_seconds(pid)
    for thread in threads:
        thread.start()
    time.sleep(3)  # the attack's ramp-up
    answered = attempts = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as keep_alive:
        while time.monotonic() < deadline:
            for client in (keep_alive, None):
                attempts += 1
                try:
                    if client is None:
                        with httpx.Client(timeout=10) as fresh:
                            fresh.post(url, headers={"X-API-Key": gate}, files=files)
                    else:
                        client.post(url, headers={"X-API-Key": gate}, files=files)
                    answered += 1
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    print(
        f"g1: gate answered {answered}/{attempts} ({100 * answered / attempts:.0f}%) over"
        f" {seconds:.0f} s; server CPU {_cpu_seconds(pid) - cpu_before:.1f} s"
        f" ({seconds + 3:.0f} s of attack)"
    )


def _g2(port: int, pid: int) -> None:
    size = 16 * 1024 * 1024 - 4096
    part = (
        b'--zz\r\nContent-Disposition: form-data; name="frames"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    chunk = b"\xff" * (1 << 20)
    for path in ("/kiosk/captures", "/console/login"):
        before = _rss_mib(pid)
        held: list[socket.socket] = []
        line = f"g2 {path}: RSS before {before:.0f} MiB"
        for n in range(1, 31):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                f"boundary=zz\r\nContent-Length: {size}\r\n\r\n".encode()
                + part
            )
            sent = len(part)
            with contextlib.suppress(OSError):
                while sent < size - 100:
                    piece = chunk[: min(len(chunk), size - 100 - sent)]
                    connection.sendall(piece)
                    sent += len(piece)
            held.append(connection)
            if n in (10, 30):
                time.sleep(1)
                line += f", {n} held {_rss_mib(pid):.0f} MiB"
        for connection in held:
            connection.close()
        time.sleep(2)
        print(f"{line}, closed {_rss_mib(pid):.0f} MiB")


def _l4(port: int, pid: int, requests: int) -> None:
    files = {"frames": ("a.jpg", b"\xff" * 1000, "image/jpeg")}
    data = {"notice_version": "notice-1", "language": "en"}
    statuses: dict[str, int] = {}
    url = f"http://127.0.0.1:{port}/kiosk/captures"
    cpu_before, started = _cpu_seconds(pid), time.monotonic()
    for _ in range(requests):
        cookie = {"entryexit_kiosk": os.urandom(24).hex()}
        try:
            with httpx.Client(timeout=10, cookies=cookie) as client:
                status = str(client.post(url, files=files, data=data).status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        statuses[status] = statuses.get(status, 0) + 1
    cpu = _cpu_seconds(pid) - cpu_before
    print(
        f"l4: {requests} made-up kiosk cookies from one address in"
        f" {time.monotonic() - started:.1f} s; server CPU {cpu:.2f} s,"
        f" {1000 * cpu / requests:.2f} ms a request; answers {dict(sorted(statuses.items()))}"
    )


def _keys(port: int, gate: str, pid: int, requests: int) -> None:
    files = {"photo": ("a.jpg", b"\xff" * 1000, "image/jpeg")}
    data = {"gate": "G1", "device": "cam"}
    flight = f"http://127.0.0.1:{port}/v1/flights/00000000-0000-0000-0000-000000000000"
    for method in ("POST", "GET"):
        statuses: dict[str, int] = {}
        gates: dict[str, int] = {}
        cpu = 0.0
        made_up = 0
        for n in range(requests):
            real = n % 50 == 49
            key = gate if real else f"eex_{os.urandom(6).hex()}_{os.urandom(24).hex()}"
            before = _cpu_seconds(pid)
            try:
                with httpx.Client(timeout=10, headers={"X-API-Key": key}) as client:
                    if method == "GET" and not real:
                        answer = client.get(flight)
                    else:
                        answer = client.post(f"{flight}/captures", files=files, data=data)
                status = str(answer.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if real:
                gates[status] = gates.get(status, 0) + 1
                continue
            cpu += _cpu_seconds(pid) - before
            made_up += 1
            statuses[status] = statuses.get(status, 0) + 1
        print(
            f"keys {method}: {made_up} made-up API keys from one address; server CPU"
            f" {cpu:.2f} s, {1000 * cpu / made_up:.2f} ms a request; answers"
            f" {dict(sorted(statuses.items()))}; the gate's {dict(sorted(gates.items()))}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=["g1", "g2", "l4", "keys", "serve"])
    parser.add_argument("scratch", nargs="?")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if args.case == "serve":
        _serve(Path(args.scratch))
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    server = subprocess.Popen([sys.executable, __file__, "serve", str(scratch)])  # noqa: S603
    try:
        while not (scratch / "ready").exists():
            if server.poll() is not None:
                raise SystemExit("the server process stopped before it was ready")
            time.sleep(0.1)
        port, gate = (scratch / "ready").read_text().split()
        print(f"load average {os.getloadavg()[0]:.1f}")
        if args.case == "g1":
            _g1(int(port), gate, server.pid, args.seconds)
        elif args.case == "l4":
            _l4(int(port), server.pid, args.requests)
        elif args.case == "keys":
            _keys(int(port), gate, server.pid, args.requests)
        else:
            _g2(int(port), server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
