"""``entryexit serve`` bounds the connections one client can hold (session 8 probe P3: 20,000
half-sent requests from one client, no key, left every gate unanswered)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from fastapi import FastAPI

from entryexit.api.metrics_registry import REGISTRY
from entryexit.cli.connections import ConnectionGuard, _peer_key, connections_within
from entryexit.cli.serve import served_in_thread
from entryexit.domain.throttle import parse_networks

SLOW_START = b"GET /ok HTTP/1.1\r\nHost: x\r\nX-a: "


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _served(guard: ConnectionGuard) -> Iterator[str]:
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    port = _free_port()
    with served_in_thread(app, "127.0.0.1", port, "error", start_seconds=10, guard=guard):
        yield f"127.0.0.1:{port}"


def _connect(address: str) -> socket.socket:
    host, port = address.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _send_if_open(connection: socket.socket, data: bytes) -> None:
    # On a loaded machine the server may already have cut it off: that is what is tested.
    with contextlib.suppress(OSError):
        connection.sendall(data)


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """The server notes a closed connection a moment after its peer sees it close."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _closed_by_server(connection: socket.socket, within_seconds: float) -> bool:
    """Whether the server ends the connection (EOF, or a reset) within the time; what it
    sends first (a 408) is read and ignored."""
    connection.settimeout(0.1)
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        try:
            if connection.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_half_sent_requests_are_cut_off_and_a_real_request_is_still_answered() -> None:
    guard = ConnectionGuard(header_seconds=1.0, per_address=100, total=1000)
    metric = ("entryexit_connections_refused_total", {"reason": "header_timeout"})
    counted_before = REGISTRY.get_sample_value(*metric) or 0.0
    with _served(guard) as address, ExitStack() as held:
        slow = [held.enter_context(_connect(address)) for _ in range(20)]
        idle = [held.enter_context(_connect(address)) for _ in range(5)]
        for connection in slow:
            connection.sendall(SLOW_START)
        # One more header byte now and then keeps none of them alive past the deadline.
        for _ in range(3):
            time.sleep(0.2)
            for connection in slow:
                _send_if_open(connection, b"a")
        assert httpx.get(f"http://{address}/ok", timeout=5).json() == {"ok": True}
        assert all(_closed_by_server(c, within_seconds=3.0) for c in slow + idle)
        assert guard.refused["header_timeout"] == 25
        assert REGISTRY.get_sample_value(*metric) == counted_before + 25
        _wait_until(lambda: guard.open_connections == 0)


def test_a_request_sent_whole_is_not_cut_off_by_the_header_deadline() -> None:
    guard = ConnectionGuard(header_seconds=1.0, per_address=100, total=1000)
    with _served(guard) as address, httpx.Client(base_url=f"http://{address}") as client:
        for _ in range(3):  # the same keep-alive connection, past the deadline each time
            assert client.get("/ok").status_code == 200
            time.sleep(1.2)
    assert guard.refused["header_timeout"] == 0


def test_one_address_holds_at_most_its_share_of_connections() -> None:
    guard = ConnectionGuard(header_seconds=30, per_address=5, total=1000)
    with _served(guard) as address, ExitStack() as held:
        first = [held.enter_context(_connect(address)) for _ in range(5)]
        extra = held.enter_context(_connect(address))
        assert _closed_by_server(extra, within_seconds=2.0)
        assert guard.refused["per_address"] == 1
        first[0].sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in first[0].recv(4096)
        assert _closed_by_server(first[0], within_seconds=2.0)
        _wait_until(lambda: guard.open_connections == 4)
        again = held.enter_context(_connect(address))
        assert not _closed_by_server(again, within_seconds=0.5)


def test_the_process_holds_at_most_its_total() -> None:
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=3)
    with _served(guard) as address, ExitStack() as held:
        for _ in range(3):
            held.enter_context(_connect(address))
        assert _closed_by_server(held.enter_context(_connect(address)), within_seconds=2.0)
        assert guard.refused["total"] == 1


def test_a_trusted_proxy_is_not_held_to_one_address_share() -> None:
    guard = ConnectionGuard(
        header_seconds=30, per_address=2, total=1000, trusted=parse_networks("127.0.0.1")
    )
    with _served(guard) as address, ExitStack() as held:
        connections = [held.enter_context(_connect(address)) for _ in range(6)]
        assert not _closed_by_server(connections[-1], within_seconds=0.5)
        assert guard.refused["per_address"] == 0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_an_ipv6_client_counts_per_64(host: str, key: str) -> None:
    assert _peer_key(host) == key


def test_the_total_leaves_files_for_the_service() -> None:
    assert connections_within(8192, 1024) == 768
    assert connections_within(100, 65536) == 100
