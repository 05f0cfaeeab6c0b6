"""A client that trickles its body is answered 408 once the body's deadline passes (uvicorn
has no body read timeout of its own), over a real socket to a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.integration.api.conftest import Api, build_api

pytestmark = [pytest.mark.models]
TIMEOUT = 1.0


@pytest.fixture
def server(engine: FaceEngine, tmp_path: Path) -> Iterator[tuple[Api, int]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+pysqlite:///{tmp_path / 'e.db'}",
        body_read_timeout_seconds=TIMEOUT,
    )
    api, services = build_api(settings, engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uv = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    try:
        yield api, port
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        services.uow.engine.dispose()


def test_a_trickled_body_is_answered_408(server: tuple[Api, int]) -> None:
    api, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(
            (
                "POST /v1/flights HTTP/1.1\r\nHost: testserver\r\n"
                f"X-API-Key: {api.keys['officer']}\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n{"
            ).encode()
        )
        start = time.monotonic()
        answer = b""
        client.settimeout(0.2)
        while time.monotonic() - start < 10 * TIMEOUT:
            try:
                client.sendall(b" ")  # one byte every 0.2 s: never idle, never done
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"urn:entryexit:problem:request-timeout" in answer
    assert elapsed < 3 * TIMEOUT + 1
    # The refused request is still an access event (the body guard is inside the audit).
    events = api.services.audit.events(0, 1000)
    refused = [e.entry for e in events if e.entry.action == "POST /v1/flights"]
    assert [(e.outcome, e.details["status"], e.actor_role) for e in refused] == [
        ("rejected", 408, "officer")
    ]


def test_a_body_sent_in_time_is_answered_as_usual(server: tuple[Api, int]) -> None:
    api, _ = server
    # The deadline is per request, not per connection: ordinary requests pass.
    assert api.create_flight()["id"]
