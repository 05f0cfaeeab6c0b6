"""The server EntryExit runs never lets a client choose its own address."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from entryexit.cli.serve import served_in_thread, server_config


@pytest.fixture
def peer_echo() -> Iterator[str]:
    """A real uvicorn server, configured as ``entryexit serve`` configures it, whose one route
    answers the peer address the application sees."""
    app = FastAPI()

    @app.get("/peer")
    def peer(request: Request) -> dict[str, str | None]:
        return {
            "host": request.client.host if request.client else None,
            "scheme": request.url.scheme,
        }

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with served_in_thread(app, "127.0.0.1", port, "error", start_seconds=10):
        yield f"http://127.0.0.1:{port}"


def test_a_loopback_client_cannot_choose_its_address_with_forwarding_headers(
    peer_echo: str,
) -> None:
    # uvicorn trusts X-Forwarded-For from loopback by default: a local attacker would get a
    # fresh lock-out budget per forged address. The application must see the real peer, and
    # decide itself (ENTRYEXIT_TRUSTED_PROXIES) whether the header counts.
    answer = httpx.get(
        f"{peer_echo}/peer",
        headers={"X-Forwarded-For": "10.9.9.9", "X-Forwarded-Proto": "https"},
    ).json()
    assert answer == {"host": "127.0.0.1", "scheme": "http"}


def test_the_server_runs_uvloop_and_httptools() -> None:
    """uvicorn's C event loop and HTTP parser, not asyncio's loop and h11 (issue 17: they
    take CPU off every request); both are dependencies, so this never falls back silently."""
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = server_config(FastAPI(), host="127.0.0.1", port=0)
    config.load()
    assert isinstance(config.http_protocol_class, type)
    assert issubclass(config.http_protocol_class, HttpToolsProtocol)
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
