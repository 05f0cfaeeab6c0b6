"""The body budget (api/limits.py ``BodySizeLimit``) over a real uvicorn server and real
sockets: it is held only by bodies being read (session 9 review M3)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from entryexit.api.limits import BodySizeLimit
from entryexit.cli.serve import served_in_thread

MAX = 1 << 20
ANSWER = b"x" * (16 << 20)  # more than loopback's send and receive buffers take


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class _Answering:
    """The requests for ``/big`` still in the application (sending their answer)."""

    def __init__(self, app: ASGIApp, methods: list[str]) -> None:
        self.app, self.methods = app, methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/big":
            await self.app(scope, receive, send)
            return
        self.methods.append(scope["method"])
        try:
            await self.app(scope, receive, send)
        finally:
            self.methods.remove(scope["method"])


@contextmanager
def _served() -> Iterator[tuple[str, BodySizeLimit, list[str]]]:
    """Max 1 MiB a body, 2 MiB for all; a large public answer (the API docs' script, any
    download) and an upload that reads its body. Also the requests still answering."""
    app = FastAPI()

    @app.api_route("/big", methods=["GET", "POST", "DELETE"])
    def big() -> StreamingResponse:
        # In pieces, as a file is sent: the application waits while the client does not read.
        pieces = (ANSWER[n : n + (64 << 10)] for n in range(0, len(ANSWER), 64 << 10))
        return StreamingResponse(pieces, media_type="application/octet-stream")

    @app.post("/upload")
    async def upload(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"got {len(await request.body())}")

    answering: list[str] = []
    app.add_middleware(_Answering, methods=answering)
    app.add_middleware(BodySizeLimit, max_bytes=MAX, read_timeout=60.0, budget=2 * MAX)
    port = _free_port()
    with served_in_thread(app, "127.0.0.1", port, "critical", start_seconds=10):
        address = f"127.0.0.1:{port}"
        assert httpx.post(f"http://{address}/upload", content=b"", timeout=10).text == "got 0"
        layer: object = app.middleware_stack  # built by the first request
        while layer is not None and not isinstance(layer, BodySizeLimit):
            layer = getattr(layer, "app", None)
        assert isinstance(layer, BodySizeLimit)
        yield address, layer, answering


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_requests_whose_body_nobody_reads_hold_none_of_the_budget(method: str) -> None:
    """Review M3: two requests declaring the largest body, sending none and not reading their
    large answer, held the whole budget (a GET's too) while the answer was undelivered:
    every upload was refused 503 for as long as they liked."""
    with _served() as (address, limit, answering), ExitStack() as held:
        host, port = address.split(":")
        for _ in range(2):
            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            holder.connect((host, int(port)))
            held.enter_context(holder)
            holder.sendall(
                f"{method} /big HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX}\r\n\r\n".encode()
            )
        # Both are in the application, stuck sending an answer nobody reads.
        _wait_until(lambda: len(answering) == 2)
        time.sleep(0.2)  # (a moment longer: a full send buffer, not a slow start)
        assert len(answering) == 2
        assert limit.buffered == 0
        answer = httpx.post(f"http://{address}/upload", content=b"a" * 1000, timeout=10)
        assert (answer.status_code, answer.text) == (200, "got 1000")
    _wait_until(lambda: limit.buffered == 0)


def test_a_body_being_read_holds_the_budget_until_the_application_answers() -> None:
    """The budget still bounds bodies being read (probe G2): two half-sent uploads of the
    largest body hold it, a third is refused before its body is taken; their bytes come
    back as they are answered."""
    with _served() as (address, limit, _), ExitStack() as held:
        host, port = address.split(":")
        uploads = []
        for _ in range(2):
            upload = held.enter_context(socket.create_connection((host, int(port)), timeout=10))
            upload.sendall(
                f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX}\r\n\r\n".encode()
                + b"a" * 1000
            )
            uploads.append(upload)
        _wait_until(lambda: limit.buffered == 2 * MAX)
        third = httpx.post(f"http://{address}/upload", content=b"a" * 1000, timeout=10)
        assert third.status_code == 503
        assert third.headers["retry-after"] == "5"
        uploads[0].sendall(b"a" * (MAX - 1000))
        assert uploads[0].recv(4096).startswith(b"HTTP/1.1 200 ")
        _wait_until(lambda: limit.buffered == MAX)
        again = httpx.post(f"http://{address}/upload", content=b"a" * 1000, timeout=10)
        assert (again.status_code, again.text) == (200, "got 1000")
