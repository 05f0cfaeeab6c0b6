"""The service as a user starts it, and the boarding demo as a new user runs it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entryexit.cli import main

pytestmark = [pytest.mark.models]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, model_dir: Path) -> Iterator[tuple[str, str, Path]]:
    port = free_port()
    env = {**os.environ, "ENTRYEXIT_DATA_DIR": str(tmp_path / "data"), "ENTRYEXIT_PORT": str(port)}
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
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "EntryExit on" in line:
                break
        token = next(m.group(0) for text in lines if (m := re.search(r"eex_\w+_[\w-]+", text)))
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, token, tmp_path / "data"
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_creates_its_database_and_one_admin_key(served: tuple[str, str, Path]) -> None:
    base, token, data_dir = served
    assert (data_dir / "entryexit.db").is_file()
    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/v1/flights/x").status_code == 401
    response = httpx.get(f"{base}/v1/flights/x", headers={"X-API-Key": token})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_keys_create_prints_a_working_key_once(
    served: tuple[str, str, Path],
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
