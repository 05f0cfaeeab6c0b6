"""Anonymous clients cannot make the service buffer large bodies through the console's and
the kiosk's forms (session 9 probe G2: with no key and no cookie, 256 connections x 16 MiB
bodies held open made the process hold 4 GiB), and all requests together hold at most the
body budget. Over a real server and real sockets, as the attack runs."""

from __future__ import annotations

import contextlib
import gc
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from entryexit.api.limits import BodySizeLimit
from entryexit.biometrics import FaceEngine
from entryexit.cli.serve import served_in_thread
from entryexit.config import Settings
from tests.integration.web.test_console import PASSWORD
from tests.integration.web.test_kiosk import site

pytestmark = [pytest.mark.models]

BODY = 16 * 1024 * 1024 - 4096  # just under the default request cap
CHUNK = b"\xff" * (1 << 20)
BOUNDARY = "zz"
PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prints"; filename="a.png"\r\n'
    "Content-Type: image/png\r\n\r\n"
).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _served(settings: Settings, engine: FaceEngine) -> Iterator[tuple[str, FastAPI]]:
    built = site(settings.model_copy(update={"console_secure_cookies": False}), engine)
    port = _free_port()
    app = built.client.app
    assert isinstance(app, FastAPI)
    try:
        with served_in_thread(app, "127.0.0.1", port, "critical", start_seconds=60):
            yield f"127.0.0.1:{port}", app
    finally:
        built.services.uow.engine.dispose()


def _body_limit(app: FastAPI) -> BodySizeLimit:
    """The app's body guard (its middleware stack is built by the first request)."""
    layer: object = app.middleware_stack
    while layer is not None and not isinstance(layer, BodySizeLimit):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, BodySizeLimit)
    return layer


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.05)


def _rss_mb() -> float:
    with Path("/proc/self/status").open() as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def _hold_body(
    address: str, path: str, size: int, headers: str = "", body: bool = True
) -> socket.socket:
    """A POST's headers and all of its body but the last 100 bytes (as much as the server
    takes): the probe's attack; or (``body`` false) its headers and first bytes only. The
    connection is left open."""
    host, port = address.split(":")
    connection = socket.create_connection((host, int(port)), timeout=5)
    connection.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {size}\r\n\r\n"
        ).encode()
        + PART
    )
    sent = len(PART) if body else size
    with contextlib.suppress(OSError):  # refused: the server stops reading, or closes
        while sent < size - 100:
            part = CHUNK[: min(len(CHUNK), size - 100 - sent)]
            connection.sendall(part)
            sent += len(part)
    return connection


def _answer(connection: socket.socket, seconds: float = 10.0) -> bytes:
    """What the server has answered (b"" if it closed without an answer it could deliver;
    b"no answer" if it is still waiting for the body, as it would without the guard)."""
    connection.settimeout(seconds)
    try:
        return connection.recv(4096)
    except TimeoutError:
        return b"no answer"
    except OSError:
        return b""


def test_anonymous_large_bodies_are_refused_before_they_are_buffered(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    attacks = [
        ("/kiosk/captures", ""),
        ("/console/cases/x/fingerprints", ""),
        ("/console/cases/x/fingerprints", "Cookie: entryexit_session=made-up\r\n"),
        ("/kiosk/quality", "Cookie: entryexit_kiosk=made-up\r\n"),
        ("/console/login", ""),  # an open form: capped far below this
    ]
    with _served(settings, engine) as (address, _), ExitStack() as held:
        httpx.get(f"http://{address}/console/login", timeout=30)  # warm-up
        gc.collect()
        before = _rss_mb()
        connections = [
            held.enter_context(_hold_body(address, path, BODY, headers))
            for path, headers in attacks * 2
        ]
        time.sleep(1.0)
        gc.collect()
        grown = _rss_mb() - before
        answers = [_answer(connection) for connection in connections]
    assert grown < 20, f"the server's memory grew by {grown:.0f} MB"
    for (path, _), answer in zip(attacks * 2, answers, strict=True):
        # Refused from the headers (or reset before the answer could be read).
        assert answer == b"" or re.match(rb"HTTP/1.1 (303|401|413) ", answer), (path, answer)


@contextlib.contextmanager
def _signed_in(address: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{address}", timeout=30, follow_redirects=True) as client:
        yield _sign_in(client)


def _sign_in(client: httpx.Client) -> httpx.Client:
    page = client.get("/console/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"username": "olga", "password": PASSWORD, "login_csrf": token.group(1)},
    )
    assert response.status_code == 200
    assert response.url.path != "/console/login"
    return client


def test_bodies_being_read_hold_at_most_the_budget_and_a_signed_in_upload_works(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    budget, size = 4 * 1024 * 1024, 1536 * 1024
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        max_buffered_body_bytes=budget,
        max_request_bytes=2 * 1024 * 1024,
    )
    with _served(settings, engine) as (address, app), _signed_in(address) as officer:
        cookie = f"Cookie: entryexit_session={officer.cookies['entryexit_session']}\r\n"
        path = "/console/cases/00000000-0000-0000-0000-000000000000/fingerprints"
        with ExitStack() as held:
            first = held.enter_context(_hold_body(address, path, size, cookie))
            second = held.enter_context(_hold_body(address, path, size, cookie))
            # Both held against the budget before the third asks (their session checks run on
            # the thread pool: on a slow machine the third's could otherwise come first).
            limit = _body_limit(app)
            _until(lambda: limit.buffered >= 2 * size)
            # Refused from its headers (its body not sent, so that the answer can be read).
            third = held.enter_context(_hold_body(address, path, size, cookie, body=False))
            answer = _answer(third)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"retry-after: 5" in answer.lower()
            for connection in (first, second):  # still being read: no answer yet
                connection.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    connection.recv(1)
        # Closed: their bytes are given back (once the server has seen them go, which a
        # loaded machine may take a while to do); the officer's own upload is read and handled.
        page = officer.get("/console/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        deadline = time.monotonic() + 20.0
        while True:
            upload = officer.post(
                path,
                data={"action": "verify", "fingers": "2", "csrf_token": token.group(1)},
                files=[("prints", ("a.png", b"\x89PNG" + b"\0" * size, "image/png"))],
                follow_redirects=False,
            )
            if upload.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        # Past the guard and the budget: the route itself answers (no such case).
        assert upload.status_code not in (303, 401, 413, 503), upload.status_code
        assert upload.status_code == 404, upload.text[:300]
