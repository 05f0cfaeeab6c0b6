"""``entryexit serve`` stopped with SIGTERM while a capture is in flight: it answers that
capture, records the admission it queued, and exits 0."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import lfw_image
from tests.fleet.test_fleet import free_port, wait_for
from tests.integration.api.conftest import FOREIGN_STATE, manifest_row

pytestmark = [pytest.mark.fleet, pytest.mark.models, pytest.mark.lfw]


def _multipart(photo: bytes, boundary: str) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="gate"\r\n\r\nG1\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="device"\r\n\r\ncam\r\n'.encode(),
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="c.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def test_sigterm_answers_the_capture_in_flight_drains_the_outbox_and_exits_0(
    tmp_path: Path, lfw_dir: Path, model_dir: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTRYEXIT_")},
        "ENTRYEXIT_DATA_DIR": str(tmp_path / "data"),
        "ENTRYEXIT_MODEL_DIR": str(model_dir),
        "ENTRYEXIT_PORT": str(port),
        "ENTRYEXIT_DRAIN_SECONDS": "0",
    }
    command = [sys.executable, "-m", "entryexit"]
    subprocess.run([*command, "keys", "init"], env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*command, "serve"], env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the service", lambda: httpx.get(f"{base}/readyz").status_code == 200, 120)
        token = wait_for("the admin key", lambda: re.search(r"eex_\w+_[\w-]+", log.read_text()))
        admin = {"X-API-Key": token.group(0)}
        flight = httpx.post(
            f"{base}/v1/flights",
            json={
                "carrier": "EE",
                "number": "1",
                "scheduled_departure": "2031-01-01T10:00:00+00:00",
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
            },
            headers=admin,
        ).json()["id"]
        manifest = httpx.put(
            f"{base}/v1/flights/{flight}/manifest",
            json={"travelers": [manifest_row("D1", "POWELL")]},
            headers=admin,
        )
        assert manifest.status_code == 200, manifest.text
        enrolled = httpx.post(
            f"{base}/v1/documents/{FOREIGN_STATE}/D1/photos",
            files={"photo": ("p.jpg", lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes())},
            headers=admin,
            timeout=30,
        )
        assert enrolled.status_code == 201, enrolled.text
        assert httpx.post(f"{base}/v1/flights/{flight}/gallery", headers=admin).is_success

        boundary = "fleet-graceful-stop"
        body = _multipart(lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes(), boundary)
        head = (
            f"POST /v1/flights/{flight}/captures HTTP/1.1\r\nHost: entryexit\r\n"
            f"X-API-Key: {admin['X-API-Key']}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as gate:
            # The capture is in flight (half its body sent) when the stop is asked for.
            gate.sendall(head + body[: len(body) // 2])
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None  # waiting for the request in flight
            gate.sendall(body[len(body) // 2 :])
            answer = b""
            while chunk := gate.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"decision":"match"' in answer
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    # The admission the capture queued was recorded before the process exited.
    with sqlite3.connect(tmp_path / "data" / "entryexit.db") as database:
        assert database.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        assert database.execute("SELECT count(*) FROM encounters").fetchone() == (1,)
