"""``entryexit serve`` bounds the connections one client can hold (session 8 probe P3: 20,000
half-sent requests from one client, no key, left every gate unanswered)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
from fastapi import FastAPI

from entryexit.api.metrics_registry import REGISTRY
from entryexit.cli.connections import ConnectionGuard, connections_within
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
        started = time.monotonic()
        slow = [held.enter_context(_connect(address)) for _ in range(20)]
        idle = [held.enter_context(_connect(address)) for _ in range(5)]
        for connection in slow:
            connection.sendall(SLOW_START)
        assert httpx.get(f"http://{address}/ok", timeout=5).json() == {"ok": True}
        # A header byte every 0.2 s (a timer restarted by each byte would never fire) for
        # well past the deadline: each is cut off about 1 s after it opened all the same.
        closed_after: dict[int, float] = {}
        while time.monotonic() - started < 3.0 and len(closed_after) < len(slow):
            time.sleep(0.2)
            for index, connection in enumerate(slow):
                if index not in closed_after:
                    _send_if_open(connection, b"a")
                    if _closed_by_server(connection, within_seconds=0.01):
                        closed_after[index] = time.monotonic() - started
        assert len(closed_after) == len(slow)
        assert max(closed_after.values()) < 2.5
        assert all(_closed_by_server(c, within_seconds=2.0) for c in idle)
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


def test_a_full_table_makes_room_by_closing_the_oldest_idle_connection() -> None:
    """Connections that only sit there (a few dozen addresses holding the table full) cannot
    keep a gate out (review M1): a new one takes the oldest idle one's place."""
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=3)
    with _served(guard) as address, ExitStack() as held:
        squatters = [held.enter_context(_connect(address)) for _ in range(3)]
        _wait_until(lambda: guard.open_connections == 3)
        assert httpx.get(f"http://{address}/ok", timeout=5).json() == {"ok": True}
        assert _closed_by_server(squatters[0], within_seconds=2.0)
        assert not _closed_by_server(squatters[2], within_seconds=0.2)
        assert guard.refused["evicted"] == 1


class _FakeConnection:
    def __init__(self) -> None:
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


def test_a_request_in_progress_is_never_evicted_and_a_full_busy_table_refuses() -> None:
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=2)
    first, second, third, fourth = (_FakeConnection() for _ in range(4))
    assert guard.admit(first, "192.0.2.1") is None
    assert guard.admit(second, "192.0.2.2") is None
    guard.busy(first)
    assert guard.admit(third, "192.0.2.3") is None  # takes the idle one's place
    assert (first.evicted, second.evicted) == (False, True)
    guard.busy(third)
    assert guard.admit(fourth, "192.0.2.4") == "total"
    guard.idle(first)  # answered: evictable again
    assert guard.admit(fourth, "192.0.2.4") is None
    assert first.evicted
    guard.release(second)  # its connection_lost after the eviction: counted once
    assert guard.open_connections == 2


def test_ipv4_mapped_and_plain_ipv4_are_one_holder_and_ipv6_counts_per_64() -> None:
    guard = ConnectionGuard(header_seconds=30, per_address=1, total=100)
    assert guard.admit(_FakeConnection(), "192.0.2.7") is None
    assert guard.admit(_FakeConnection(), "::ffff:192.0.2.7") == "per_address"
    assert guard.admit(_FakeConnection(), "::ffff:192.0.2.8") is None
    assert guard.admit(_FakeConnection(), "2001:db8:1:2:aaaa::1") is None
    assert guard.admit(_FakeConnection(), "2001:db8:1:2:bbbb::9") == "per_address"


def test_a_trusted_proxy_is_not_held_to_one_address_share() -> None:
    guard = ConnectionGuard(
        header_seconds=30, per_address=2, total=1000, trusted=parse_networks("127.0.0.1")
    )
    with _served(guard) as address, ExitStack() as held:
        connections = [held.enter_context(_connect(address)) for _ in range(6)]
        assert not _closed_by_server(connections[-1], within_seconds=0.5)
        assert guard.refused["per_address"] == 0


def test_the_total_leaves_files_for_the_service() -> None:
    assert connections_within(8192, 1024) == 768
    assert connections_within(100, 65536) == 100
