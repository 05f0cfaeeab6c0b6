"""``entryexit serve`` bounds the connections one client can hold (session 8 probe P3: 20,000
half-sent requests from one client, no key, left every gate unanswered)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from entryexit.api.metrics_registry import REGISTRY
from entryexit.cli.connections import ConnectionGuard, connections_within, guard_for
from entryexit.cli.serve import served_in_thread
from entryexit.config import Settings
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
        # They never sent a request: anonymous, the first to make room.
        assert guard.refused["evicted_anonymous"] == 1


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


# --- session 9 probe G1: busy connections that make no progress, stalled readers ----------


def test_anonymous_then_stalled_then_idle_connections_make_room_in_that_order() -> None:
    now = [0.0]
    guard = ConnectionGuard(
        header_seconds=30, per_address=100, total=3, stall_seconds=5, clock=lambda: now[0]
    )
    gate, idle_gate, stalled = (_FakeConnection() for _ in range(3))
    for connection in (gate, idle_gate, stalled):
        assert guard.admit(connection, "192.0.2.1") is None
    guard.busy(gate, credentialed=True, body_expected=True)  # its body is arriving
    guard.busy(idle_gate, credentialed=True)
    guard.idle(idle_gate)
    guard.busy(stalled, credentialed=True, body_expected=True)
    anonymous = _FakeConnection()
    guard.release(gate)
    assert guard.admit(anonymous, "192.0.2.2") is None
    guard.busy(anonymous, credentialed=False, body_expected=True)  # still evictable
    newcomer = _FakeConnection()
    assert guard.admit(newcomer, "192.0.2.3") is None
    assert (anonymous.evicted, stalled.evicted, idle_gate.evicted) == (True, False, False)
    assert guard.refused["evicted_anonymous"] == 1
    guard.busy(newcomer, credentialed=True, body_expected=True)
    now[0] = 3.0
    guard.progressed(newcomer, 512)  # a trickle: not yet progress
    guard.progressed(newcomer, 512)  # a kilobyte in all: its stall clock restarts
    now[0] = 6.0  # `stalled` has waited 6 s for its body, `newcomer` 3 s
    third = _FakeConnection()
    assert guard.admit(third, "192.0.2.4") is None
    assert (stalled.evicted, idle_gate.evicted, newcomer.evicted) == (True, False, False)
    assert guard.refused["evicted_stalled"] == 1
    guard.busy(third, credentialed=True)
    fourth = _FakeConnection()
    # newcomer has waited 3 s only: the idle one goes
    assert guard.admit(fourth, "192.0.2.5") is None
    assert (idle_gate.evicted, newcomer.evicted) == (True, False)
    guard.busy(fourth, credentialed=True)
    guard.body_received(newcomer)  # body in: the service is working on it, not evictable
    now[0] = 100.0
    assert guard.admit(_FakeConnection(), "192.0.2.6") == "total"


def test_one_network_holds_at_most_its_share_of_connections() -> None:
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=100, per_network=2)
    assert guard.admit(_FakeConnection(), "192.0.2.1") is None
    assert guard.admit(_FakeConnection(), "192.0.2.200") is None
    assert guard.admit(_FakeConnection(), "::ffff:192.0.2.9") == "per_network"
    assert guard.admit(_FakeConnection(), "198.51.100.1") is None
    assert guard.admit(_FakeConnection(), "2001:db8:1:2::1") is None
    assert guard.admit(_FakeConnection(), "2001:db8:1:3::1") is None  # another /64, same /48
    assert guard.admit(_FakeConnection(), "2001:db8:1:ffff::1") == "per_network"
    assert guard.admit(_FakeConnection(), "2001:db8:2::1") is None
    assert guard.refused["per_network"] == 2


ATTACKERS = [f"127.0.0.{n}" for n in range(2, 6)]  # four addresses x 32 connections = 2 x total


@contextmanager
def _form_served(guard: ConnectionGuard) -> Iterator[str]:
    """A form that reads its whole body (the console's sign-in, a capture upload), and a
    large answer; no body deadline (the guard alone is tested)."""
    app = FastAPI()

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/big")
    def big() -> Response:
        return Response(b"x" * (4 << 20), media_type="application/octet-stream")

    port = _free_port()
    with served_in_thread(app, "127.0.0.1", port, "critical", start_seconds=10, guard=guard):
        yield f"127.0.0.1:{port}"


def _hold_the_table(address: str, head: bytes, stop: threading.Event) -> list[threading.Thread]:
    """The probe's attack: each attacker address opens its share of connections, sends a
    form's headers and none of its body, and re-opens each connection the server closes."""
    host, port = address.split(":")

    def holder(source: str) -> None:
        while not stop.is_set():
            try:
                connection = socket.create_connection(
                    (host, int(port)), timeout=2, source_address=(source, 0)
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

    threads = [
        threading.Thread(target=holder, args=(source,), daemon=True)
        for source in ATTACKERS
        for _ in range(32)
    ]
    for thread in threads:
        thread.start()
    return threads


def _gate_answered(address: str, seconds: float) -> tuple[int, int]:
    """A gate with its key posts a small form every 0.25 s, on a keep-alive connection and
    on a fresh one in turn: (answered, attempts)."""
    answered = attempts = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://{address}", timeout=10) as keep_alive:
        while time.monotonic() < deadline:
            for client in (keep_alive, None):
                attempts += 1
                try:
                    if client is None:
                        with httpx.Client(base_url=f"http://{address}", timeout=10) as fresh:
                            response = fresh.post("/form", headers=GATE_KEY, content=b"x" * 900)
                    else:
                        response = client.post("/form", headers=GATE_KEY, content=b"x" * 900)
                    answered += response.status_code == 200
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
    return answered, attempts


GATE_KEY = {"X-API-Key": "ee_gate.secret"}


@pytest.mark.parametrize(
    ("head", "stall_seconds"),
    [
        # Anonymous: evictable as soon as the table is full (however long a stall takes).
        (b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 600.0),
        # A made-up key: credentialed to the guard, but its body never comes (stalled).
        (
            b"POST /form HTTP/1.1\r\nHost: x\r\nX-API-Key: made.up\r\n"
            b"Content-Length: 100000\r\n\r\n",
            1.0,
        ),
    ],
    ids=["anonymous", "made-up-key"],
)
def test_connections_holding_a_request_without_progress_cannot_keep_a_gate_out(
    head: bytes, stall_seconds: float
) -> None:
    """Probe G1: four addresses hold twice the table in half-sent forms (headers complete,
    no body) and re-open what is closed; a gate with a key is still answered."""
    guard = ConnectionGuard(
        header_seconds=30,
        per_address=32,
        total=64,
        per_network=10_000,
        stall_seconds=stall_seconds,
    )
    stop = threading.Event()
    with _form_served(guard) as address:
        threads = _hold_the_table(address, head, stop)
        try:
            _wait_until(lambda: guard.open_connections >= 64, seconds=30)
            time.sleep(1.5)  # the attackers' requests are past the shorter stall time
            answered, attempts = _gate_answered(address, seconds=10)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
    assert attempts >= 10
    assert answered >= 0.9 * attempts, (answered, attempts, dict(guard.refused))
    evicted = guard.refused["evicted_anonymous"] + guard.refused["evicted_stalled"]
    assert evicted >= answered // 2, dict(guard.refused)


def test_a_client_that_does_not_read_its_answer_is_cut_off() -> None:
    """Probe G1: pipelined requests for a large answer, never read, held the connection (and
    megabytes of send buffers) for as long as the client liked."""
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=100, write_seconds=1.0)
    with _form_served(guard) as address:
        connection = _connect(address)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with connection:
            connection.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 8)
            time.sleep(1.0)
            _wait_until(lambda: guard.refused["write_timeout"] == 1, seconds=20)
            _wait_until(lambda: guard.open_connections == 0, seconds=10)
            # What the kernel had queued is read, then the end (a reset or EOF).
            assert _closed_by_server(connection, within_seconds=10)


def test_an_answer_not_read_counts_as_stalled_until_the_client_reads_again() -> None:
    now = [0.0]
    guard = ConnectionGuard(
        header_seconds=30, per_address=100, total=1, stall_seconds=5, clock=lambda: now[0]
    )
    reader, newcomer = _FakeConnection(), _FakeConnection()
    assert guard.admit(reader, "192.0.2.1") is None
    guard.busy(reader, credentialed=True)
    guard.writing_paused(reader)
    now[0] = 4.0
    assert guard.admit(newcomer, "192.0.2.2") == "total"  # paused 4 s only
    guard.writing_resumed(reader)  # it reads: the service is working, not waiting
    now[0] = 100.0
    assert guard.admit(newcomer, "192.0.2.2") == "total"
    guard.writing_paused(reader)
    now[0] = 106.0
    assert guard.admit(newcomer, "192.0.2.2") is None
    assert reader.evicted
    assert guard.refused["evicted_stalled"] == 1


def test_a_trickled_body_is_stalled_and_an_open_form_is_anonymous_whatever_its_cookie() -> None:
    """Session 9 review H1: half-sent sign-in forms carrying a made-up session cookie,
    trickling a byte a second, were neither anonymous nor stalled and kept gates out."""
    now = [0.0]
    guard = ConnectionGuard(
        header_seconds=30,
        per_address=100,
        total=2,
        stall_seconds=5,
        clock=lambda: now[0],
        open_paths=frozenset({b"/console/login"}),
    )
    assert guard.opens_anonymously(b"/console/login?next=/console/")
    assert not guard.opens_anonymously(b"/console/cases/1/fingerprints")
    trickler, upload = _FakeConnection(), _FakeConnection()
    assert guard.admit(trickler, "192.0.2.1") is None
    assert guard.admit(upload, "192.0.2.2") is None
    guard.busy(trickler, credentialed=True, body_expected=True)
    guard.busy(upload, credentialed=True, body_expected=True)
    for second in range(1, 7):
        now[0] = float(second)
        guard.progressed(trickler, 1)  # a byte a second
        guard.progressed(upload, 64 * 1024)
    gate = _FakeConnection()
    assert guard.admit(gate, "192.0.2.3") is None
    assert (trickler.evicted, upload.evicted) == (True, False)
    assert guard.refused["evicted_stalled"] == 1


def test_only_the_kinds_an_attacker_reopens_put_an_address_on_cooldown() -> None:
    """Session 9 review M1: a gate whose idle keep-alive connection made room was refused
    for the cooldown though it had done nothing."""
    guard = ConnectionGuard(header_seconds=30, per_address=100, total=1)
    gate = _FakeConnection()
    assert guard.admit(gate, "192.0.2.1") is None
    guard.busy(gate, credentialed=True)
    guard.idle(gate)
    squatter = _FakeConnection()
    assert guard.admit(squatter, "192.0.2.2") is None  # the gate's idle connection goes
    assert gate.evicted
    again = _FakeConnection()
    assert guard.admit(again, "192.0.2.1") is None  # no cooldown for the gate; the squatter goes
    assert squatter.evicted
    guard.busy(again, credentialed=True)
    guard.idle(again)
    assert guard.admit(_FakeConnection(), "192.0.2.2") == "total"  # the squatter's address waits
    assert guard.admit(_FakeConnection(), "192.0.2.4") is None


def test_the_guard_knows_the_web_s_open_forms() -> None:
    from entryexit.web.app import open_form_paths

    assert open_form_paths() == {b"/console/login", b"/kiosk/pairing"}
    assert guard_for(Settings()).open_paths == open_form_paths()


# --- session 9 review M2: the service's own back-pressure is not the client's stall ------


def test_a_body_the_server_holds_up_is_not_stalled_until_the_application_asks_for_it() -> None:
    now = [0.0]
    guard = ConnectionGuard(
        header_seconds=30, per_address=100, total=1, stall_seconds=5, clock=lambda: now[0]
    )
    gate, newcomer = _FakeConnection(), _FakeConnection()
    assert guard.admit(gate, "192.0.2.1") is None
    guard.busy(gate, credentialed=True, body_expected=True)
    guard.progressed(gate, 64 * 1024)
    guard.reading_paused(gate)  # the application has not taken what the server read
    now[0] = 60.0
    assert guard.admit(newcomer, "192.0.2.2") == "total"
    guard.reading_resumed(gate)  # it asks for the body: the client's turn from now
    now[0] = 64.0
    assert guard.admit(newcomer, "192.0.2.2") == "total"
    now[0] = 66.0  # 6 s without a kilobyte since the application asked
    assert guard.admit(newcomer, "192.0.2.2") is None
    assert gate.evicted
    assert guard.refused["evicted_stalled"] == 1


@contextmanager
def _slow_reader_served(guard: ConnectionGuard, release: threading.Event) -> Iterator[str]:
    """A route that reads its body only once ``release`` is set: a service busy before it
    reads (its thread pool taken, a guard's check waiting, a loaded event loop)."""
    app = FastAPI()

    @app.post("/capture")
    async def capture(request: Request) -> dict[str, int]:
        while not release.is_set():
            await asyncio.sleep(0.01)
        return {"bytes": len(await request.body())}

    port = _free_port()
    with served_in_thread(app, "127.0.0.1", port, "critical", start_seconds=10, guard=guard):
        yield f"127.0.0.1:{port}"


@pytest.mark.parametrize("expect_continue", [False, True], ids=["sent-whole", "100-continue"])
def test_a_capture_the_service_is_slow_to_read_is_not_evicted_as_stalled(
    expect_continue: bool,
) -> None:
    """Session 9 review M2: a gate that sent its whole 1 MiB capture at once (or waits for
    ``100 Continue``, as curl does past 1 MiB) while the service had not started reading it
    was counted stalled, and the first newcomer to a full table reset it."""
    now = [0.0]
    guard = ConnectionGuard(
        header_seconds=30, per_address=100, total=1, stall_seconds=5, clock=lambda: now[0]
    )
    release = threading.Event()
    body = b"x" * (1 << 20)
    expect = b"Expect: 100-continue\r\n" if expect_continue else b""
    with _slow_reader_served(guard, release) as address, _connect(address) as gate:
        gate.sendall(
            b"POST /capture HTTP/1.1\r\nHost: x\r\nX-API-Key: ee_gate.secret\r\n"
            + expect
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        if not expect_continue:  # all of it at once; the server stops reading past 64 KiB
            threading.Thread(target=lambda: _send_if_open(gate, body), daemon=True).start()
        _wait_until(lambda: guard.held_bodies == 1)
        now[0] = 60.0  # far past the stall time, the body still waiting for the service
        host, port = address.split(":")
        with socket.create_connection(
            (host, int(port)), timeout=5, source_address=("127.0.0.9", 0)
        ) as newcomer:
            assert _closed_by_server(newcomer, within_seconds=5.0)  # the table is the gate's
        assert guard.refused["total"] == 1
        assert guard.refused["evicted_stalled"] == 0
        release.set()
        if expect_continue:
            assert gate.recv(4096).startswith(b"HTTP/1.1 100 Continue")
            gate.sendall(body)
        answer = b""
        gate.settimeout(10)
        while b"}" not in answer:
            chunk = gate.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    assert answer.endswith(b'{"bytes":%d}' % len(body)), answer[-100:]
