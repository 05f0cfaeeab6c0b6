"""The service as a user starts it, and the boarding demo as a new user runs it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from entryexit.cli import main

pytestmark = [pytest.mark.models]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base: str
    token: str
    data_dir: Path
    output: list[str]  # everything the process wrote (stdout and stderr), as it arrives

    def __iter__(self) -> Iterator[Any]:  # base, token, data_dir = served
        return iter((self.base, self.token, self.data_dir))


@pytest.fixture
def served(tmp_path: Path, model_dir: Path) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "ENTRYEXIT_DATA_DIR": str(tmp_path / "data"),
        "ENTRYEXIT_PORT": str(port),
        "ENTRYEXIT_LOG_FORMAT": "json",
    }
    initialised = subprocess.run(
        [sys.executable, "-m", "entryexit", "keys", "init", "--if-missing"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert initialised.returncode == 0, initialised.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "entryexit", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    started = threading.Event()

    def drain() -> None:
        # Read everything, always: a full pipe would block the service's next log line.
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "EntryExit on" in line:
                started.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        assert started.wait(60), "".join(lines)
        token = next(m.group(0) for text in lines if (m := re.search(r"eex_\w+_[\w-]+", text)))
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Served(base, token, tmp_path / "data", lines)
    finally:
        process.terminate()
        process.wait(timeout=20)
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def test_the_service_logs_json_with_request_ids_and_uvicorn_follows(served: Served) -> None:
    answer = httpx.get(
        f"{served.base}/v1/flights/nope",
        headers={"X-API-Key": served.token, "X-Request-ID": "e2e-7"},
        timeout=10,
    )
    assert answer.headers["x-request-id"] == "e2e-7"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("e2e-7" in line for line in served.output):
        time.sleep(0.05)
    events = [json.loads(line) for line in served.output if line.startswith("{")]
    assert any(e["logger"].startswith("uvicorn") for e in events)  # uvicorn's own, as JSON
    [request] = [e for e in events if e.get("request_id") == "e2e-7"]
    assert request["http"]["route"] == "/v1/flights/{flight_id}"
    assert request["http"]["status"] == 404
    assert "nope" not in json.dumps(request)  # route templates, never paths


def test_serve_creates_its_database_and_one_admin_key(served: Served) -> None:
    base, token, data_dir = served
    assert (data_dir / "entryexit.db").is_file()
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/v1/flights/x").status_code == 401
    response = httpx.get(f"{base}/v1/flights/x", headers={"X-API-Key": token})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_keys_create_prints_a_working_key_once(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, _, data_dir = served
    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(data_dir))
    assert main(["keys", "create", "--role", "auditor", "--name", "privacy office"]) == 0
    token = capsys.readouterr().out.strip()
    assert httpx.get(f"{base}/v1/flights/x", headers={"X-API-Key": token}).status_code == 404
    assert main(["keys", "create", "--role", "gate", "--name", "no carrier"]) == 2
    assert "carrier" in capsys.readouterr().err


@pytest.mark.lfw
@pytest.mark.parametrize("manifest_format", ["json", "paxlst"])
def test_simulated_boarding_of_a_small_flight(
    lfw_dir: Path, capsys: pytest.CaptureFixture[str], manifest_format: str
) -> None:
    code = main(
        [
            "simulate",
            "boarding",
            "--data",
            str(lfw_dir),
            "--travelers",
            "40",
            "--impostors",
            "10",
            "--captures-per-traveler",
            "3",
            "--clients",
            "2",
            "--json",
            "--manifest-format",
            manifest_format,
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["travelers_enrolled"] == 40
    assert summary["non_mated_captures"] == 10
    assert summary["match_rate"] >= 0.9
    assert summary["false_accept_rate"] <= 0.05
    assert summary["latency_ms"]["p50"] > 0
