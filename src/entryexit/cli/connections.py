"""The connections ``entryexit serve`` accepts: what uvicorn alone does not bound.

uvicorn times out an idle keep-alive connection, but not a connection that never finishes
its request's headers, and it accepts connections until the process runs out of file
descriptors. One client with no key could hold tens of thousands of half-sent requests open
(one byte every few seconds each) until every gate's capture and ``/healthz`` went
unanswered (the session 8 probe, P3). Behind HAProxy (the fleet) the proxy's
``timeout http-request`` and ``maxconn`` do this; a single ``entryexit serve`` must do it
itself. So each connection must deliver a request's headers within ``header_seconds`` of
its first byte (or of the connection's opening), one address holds at most
``per_address`` connections (an IPv6 client counts per /64, the block one holder has;
trusted proxies are not counted), one network (an IPv4 /24, an IPv6 /48) at most
``per_network``, and the process at most ``total`` at once, a new connection taking the place
of an anonymous, stalled or idle one (:class:`ConnectionGuard`; session 9 probe G1: 33
addresses held the table full of half-sent sign-in forms, "busy" and so never evicted, and
gates could not connect). A connection whose answer its client does not read for
``write_seconds`` is reset (the probe's stalled reader held one, and megabytes of kernel
send buffer, for as long as it liked). A refused, evicted or timed-out connection is counted
(``entryexit_connections_refused_total``) and logged once a minute, without addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import resource
import socket
import struct
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter as MetricCounter

from entryexit.api.metrics_registry import REGISTRY
from entryexit.domain.throttle import Network, address_holder, within

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from entryexit.config import Settings

logger = logging.getLogger(__name__)

CONNECTIONS_REFUSED = MetricCounter(
    "entryexit_connections_refused",
    "Connections closed by the server's bounds: per_address, total, header_timeout.",
    ("reason",),
    registry=REGISTRY,
)

_LOG_EVERY_SECONDS = 60.0
# File descriptors kept for everything but client connections (database, model files, logs,
# the key directory, the jobs' connections).
_DESCRIPTORS_KEPT = 256


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the soft limit now.
    (The soft limit is often 1,024, a few hundred keep-alive gates' worth.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connections_within(limit: int, open_files: int) -> int:
    """``limit`` connections, or fewer when the process cannot open that many files and keep
    some for its own work."""
    return max(1, min(limit, open_files - _DESCRIPTORS_KEPT))


class _Connection(Protocol):
    """What the guard needs of a connection: a way to close it at once."""

    def evict(self) -> None: ...


def network_holder(client: str) -> str | None:
    """The network a client address is counted in for the per-network cap: its /24 (IPv4) or
    /48 (IPv6, a site's usual assignment: 65,536 /64s, each a per-address holder)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# Headers whose presence makes a request "credentialed": an API key, or a console or kiosk
# session cookie (checked in full by the application; here only their presence counts).
_KEY_HEADERS = frozenset({b"x-api-key", b"authorization"})
_SESSION_COOKIES = (b"entryexit_session=", b"entryexit_kiosk=")


def presents_credentials(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's headers carry an API key or a session cookie (unchecked)."""
    for name, value in headers:
        if name in _KEY_HEADERS and value.strip():
            return True
        if name == b"cookie" and any(cookie in value for cookie in _SESSION_COOKIES):
            return True
    return False


@dataclass
class ConnectionGuard:
    """The limits, and the connections open, per address and per network (one per server).

    When the process holds ``total`` connections, a new one takes the place of another, in
    this order: the oldest *anonymous* connection (no request yet, or whose requests carry no
    API key and no session cookie, whether idle or in progress), then the longest *stalled*
    one (a request waiting for its client: fewer than ``progress_bytes`` of its body
    arriving, or its answer not being read, for ``stall_seconds``), then the oldest idle one.
    A body waiting for the *service* is not the client's stall (session 9 review M2): while
    the server has paused reading it (uvicorn stops past 64 KiB until the application asks for
    more) or has not yet answered ``Expect: 100-continue``, the stall clock does not run; it
    restarts when the application asks for the body.
    Requests for the open forms (sign-in, pairing) are anonymous whatever cookie they carry. An
    address an anonymous or stalled connection of which was evicted takes no other's place for
    ``eviction_cooldown_seconds``: else
    attackers re-opening each evicted connection (with a made-up key, so they are not
    anonymous) would take every place that falls free before a gate does. So connections that
    only sit there, or hold a request without progress (33 addresses holding the table full
    of half-sent sign-in forms, the session 9 probe G1), cannot keep a gate out: a gate's
    request carries its key and is answered without waiting for anyone. A new connection is
    refused only when every connection is credentialed and busy making progress.
    """

    header_seconds: float
    per_address: int
    total: int
    trusted: tuple[Network, ...] = ()
    per_network: int = 2048
    stall_seconds: float = 5.0
    write_seconds: float = 30.0
    eviction_cooldown_seconds: float = 10.0
    # A request's body makes progress by this many bytes at a time: a client trickling a
    # byte a second is as stalled as one sending nothing (session 9 review H1).
    progress_bytes: int = 1024
    # Paths whose requests are anonymous whatever they carry: the forms anyone may post
    # (sign-in, pairing), where a made-up session cookie would otherwise pass for one.
    open_paths: frozenset[bytes] = frozenset()
    clock: Callable[[], float] = time.monotonic
    refused: Counter[str] = field(default_factory=Counter)
    _open: Counter[str] = field(default_factory=Counter)
    _network_open: Counter[str] = field(default_factory=Counter)
    # Evictable at once, oldest first: connections that have shown no credentials...
    _anonymous: OrderedDict[_Connection, None] = field(default_factory=OrderedDict)
    # ...then credentialed connections with no request in progress.
    _idle: OrderedDict[_Connection, None] = field(default_factory=OrderedDict)
    # Credentialed requests waiting for their client (body, or reading the answer): since when.
    _waiting: dict[_Connection, float] = field(default_factory=dict)
    _awaiting_body: set[_Connection] = field(default_factory=set)
    # Bodies waiting for the service, not their client: reading paused by the server, or a
    # ``100 Continue`` not sent yet. Their stall clock stops until the application asks.
    _held: set[_Connection] = field(default_factory=set)
    # Answers the client is not reading (the transport's writing is paused).
    _write_paused: set[_Connection] = field(default_factory=set)
    # Body bytes received since a waiting request's stall clock last restarted.
    _received: dict[_Connection, int] = field(default_factory=dict)
    _holders: dict[_Connection, tuple[str | None, str | None]] = field(default_factory=dict)
    # Holders one of whose connections was evicted, and when: for ``eviction_cooldown_seconds``
    # they take no other's place (refused while the table is full), so clients re-opening
    # what is evicted cannot churn the table among themselves faster than a gate gets in.
    _evicted_from: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _logged_at: float = float("-inf")

    def admit(self, connection: _Connection, host: str | None) -> str | None:
        """Count a new connection from ``host`` (anonymous until a request shows a key or a
        session cookie); the reason it is refused, or ``None``."""
        counted = bool(host) and not within(host or "", self.trusted)
        holder = address_holder(host) if host and counted else None
        network = network_holder(host) if host and counted else None
        evicted: _Connection | None = None
        with self._lock:
            if holder is not None and self._open[holder] >= self.per_address:
                return self._refuse("per_address")
            if network is not None and self._network_open[network] >= self.per_network:
                return self._refuse("per_network")
            if len(self._holders) >= self.total:
                now = self.clock()
                if holder is not None and now - self._evicted_from.get(holder, -math.inf) < (
                    self.eviction_cooldown_seconds
                ):
                    return self._refuse("total")
                evicted, reason = self._evictable(now)
                if evicted is None:
                    return self._refuse("total")
                if reason != "evicted":
                    # Not for an idle keep-alive connection (a gate's, most likely): only the
                    # kinds an attacker re-opens (review M1).
                    self._remember_eviction(self._holders[evicted][0], now)
                self._forget(evicted)
                self._refuse(reason)
            self._holders[connection] = (holder, network)
            self._anonymous[connection] = None
            if holder is not None:
                self._open[holder] += 1
            if network is not None:
                self._network_open[network] += 1
        if evicted is not None:
            evicted.evict()
        return None

    def _remember_eviction(self, holder: str | None, now: float) -> None:
        # Called with the lock held.
        if holder is None:
            return
        if len(self._evicted_from) >= 4 * self.total:
            for old, since in list(self._evicted_from.items()):
                if now - since >= self.eviction_cooldown_seconds:
                    del self._evicted_from[old]
        self._evicted_from[holder] = now

    def _evictable(self, now: float) -> tuple[_Connection | None, str]:
        # Called with the lock held. A stalled request goes before an idle connection: it
        # holds memory (its body so far, its answer) and a gate's keep-alive one does not.
        if self._anonymous:
            return next(iter(self._anonymous)), "evicted_anonymous"
        stalled = min(
            (
                (since, connection)
                for connection, since in self._waiting.items()
                if now - since >= self.stall_seconds
            ),
            key=lambda pair: pair[0],
            default=None,
        )
        if stalled is not None:
            return stalled[1], "evicted_stalled"
        if self._idle:
            return next(iter(self._idle)), "evicted"
        return None, ""

    def busy(
        self,
        connection: _Connection,
        credentialed: bool = True,
        body_expected: bool = False,
        held: bool = False,
    ) -> None:
        """A request's headers are in. With no credentials the connection stays evictable
        (in its place: oldest first); with them it is not evicted while its request makes
        progress (until it is answered, or stalls). ``held``: its client waits for the
        server before sending the body (``Expect: 100-continue``)."""
        with self._lock:
            if connection not in self._holders:
                return
            if not credentialed and connection in self._anonymous:
                return
            self._anonymous.pop(connection, None)
            self._idle.pop(connection, None)
            if body_expected:
                self._awaiting_body.add(connection)
                if held:
                    self._held.add(connection)
                self._reconsider(connection, restart=True)

    def _reconsider(self, connection: _Connection, restart: bool = False) -> None:
        # Called with the lock held. Whether the request waits for its client now: its answer
        # is not being read, or its body is expected and not held up by the server. The
        # stall clock starts when it begins to (``restart``: starts again now).
        waits = connection in self._write_paused or (
            connection in self._awaiting_body and connection not in self._held
        )
        if not waits:
            self._waiting.pop(connection, None)
            self._received.pop(connection, None)
        elif restart or connection not in self._waiting:
            self._waiting[connection] = self.clock()
            self._received.pop(connection, None)

    def reading_paused(self, connection: _Connection) -> None:
        """The server stopped reading the connection (the application has not taken what was
        read yet): what the client sent waits in the server's buffers, not in the client."""
        with self._lock:
            if connection in self._holders:
                self._held.add(connection)
                self._reconsider(connection)

    def reading_resumed(self, connection: _Connection) -> None:
        """The application asks for the body (or the answer is done): if the server held it
        up, the client's stall clock starts from now."""
        with self._lock:
            if connection in self._held:
                self._held.discard(connection)
                self._reconsider(connection, restart=True)

    @property
    def held_bodies(self) -> int:
        """Requests whose body waits for the service (reading paused, or 100-continue)."""
        return len(self._held)

    def progressed(self, connection: _Connection, received: int) -> None:
        """``received`` body bytes arrived: once ``progress_bytes`` have since it last did,
        the stall clock restarts."""
        with self._lock:
            if connection not in self._waiting:
                return
            total = self._received.get(connection, 0) + received
            if total >= self.progress_bytes:
                self._waiting[connection] = self.clock()
                total = 0
            self._received[connection] = total

    def opens_anonymously(self, target: bytes) -> bool:
        """Whether a request for ``target`` (its path and query) is an open form's."""
        return target.partition(b"?")[0] in self.open_paths

    def body_received(self, connection: _Connection) -> None:
        """The whole body is in: the request waits for the service, not its client."""
        with self._lock:
            self._awaiting_body.discard(connection)
            self._held.discard(connection)
            self._reconsider(connection)

    def writing_paused(self, connection: _Connection) -> None:
        """The client is not reading its answer fast enough: waiting for it from now."""
        with self._lock:
            if connection in self._holders:
                self._write_paused.add(connection)
                self._reconsider(connection)

    def writing_resumed(self, connection: _Connection) -> None:
        """The client reads again: its request waits for the service (or for its body)."""
        with self._lock:
            self._write_paused.discard(connection)
            self._reconsider(connection, restart=True)

    def idle(self, connection: _Connection) -> None:
        """Its request is answered: evictable again (anonymous ones first, then oldest idle)."""
        with self._lock:
            self._awaiting_body.discard(connection)
            self._held.discard(connection)
            self._write_paused.discard(connection)
            self._reconsider(connection)
            if connection in self._holders and connection not in self._anonymous:
                self._idle[connection] = None

    def release(self, connection: _Connection) -> None:
        with self._lock:
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        # Called with the lock held; a connection evicted is forgotten once.
        if connection not in self._holders:
            return
        holder, network = self._holders.pop(connection)
        self._anonymous.pop(connection, None)
        self._idle.pop(connection, None)
        self._waiting.pop(connection, None)
        self._awaiting_body.discard(connection)
        self._held.discard(connection)
        self._write_paused.discard(connection)
        self._received.pop(connection, None)
        for counts, key in ((self._open, holder), (self._network_open, network)):
            if key is not None:
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]

    def timed_out(self, reason: str = "header_timeout") -> None:
        with self._lock:
            self._refuse(reason)

    @property
    def open_connections(self) -> int:
        return len(self._holders)

    def _refuse(self, reason: str) -> str:
        # Called with the lock held.
        self.refused[reason] += 1
        CONNECTIONS_REFUSED.labels(reason).inc()
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_SECONDS:
            self._logged_at = now
            logger.warning(
                "closing connections beyond the server's bounds (so far: %s); %d open",
                ", ".join(f"{count} {why}" for why, count in sorted(self.refused.items())),
                len(self._holders),
            )
        return reason


def guarded_protocol(guard: ConnectionGuard) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``guard``'s bounds (``uvicorn.Config(http=...)``)."""
    # Imported here: the CLI's other commands must not pay for the HTTP server's import.
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedFlowControl(FlowControl):
        """uvicorn's flow control, telling the guard when the server holds a body up: it
        pauses reading while the application has not taken what was read, and resumes when
        the application asks for more (every ``receive``)."""

        def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
            super().__init__(transport)
            self._connection = connection

        def pause_reading(self) -> None:
            super().pause_reading()
            guard.reading_paused(self._connection)

        def resume_reading(self) -> None:
            guard.reading_resumed(self._connection)
            super().resume_reading()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _admitted = False
        _header_deadline: asyncio.TimerHandle | None = None
        _write_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.flow = GuardedFlowControl(transport, self)
            if guard.admit(self, self.client[0] if self.client else None) is not None:
                transport.abort()
                return
            self._admitted = True
            self._start_header_deadline()

        def evict(self) -> None:
            """Closed to make room (the guard has forgotten it already)."""
            self._admitted = False
            self._stop_header_deadline()
            self._stop_write_deadline()
            if not self.transport.is_closing():
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_deadline()
            self._stop_write_deadline()
            if self._admitted:
                self._admitted = False
                guard.release(self)
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            # A keep-alive connection's next request: its headers have the same time.
            if self._header_deadline is None:
                self._start_header_deadline()

        def on_headers_complete(self) -> None:
            self._stop_header_deadline()
            declared = dict(self.headers).get(b"content-length", b"0").strip()
            chunked = b"chunked" in dict(self.headers).get(b"transfer-encoding", b"").lower()
            guard.busy(
                self,
                credentialed=presents_credentials(self.headers)
                and not guard.opens_anonymously(self.url),
                body_expected=chunked or (declared.isdigit() and int(declared) > 0),
                # The client sends its body only once the application asks for it.
                held=self.expect_100_continue,
            )
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            guard.progressed(self, len(body))
            super().on_body(body)

        def on_message_complete(self) -> None:
            guard.body_received(self)
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            guard.idle(self)

        def pause_writing(self) -> None:
            # The client does not read its answer: the kernel's send buffer and the
            # transport's are full. If it stays so for ``write_seconds``, the connection
            # is closed (a stalled reader would otherwise hold it, and them, for ever).
            super().pause_writing()
            guard.writing_paused(self)
            if self._write_deadline is None:
                self._write_deadline = self.loop.call_later(
                    guard.write_seconds, self._reading_too_slow
                )

        def resume_writing(self) -> None:
            super().resume_writing()
            self._stop_write_deadline()
            guard.writing_resumed(self)

        def _reading_too_slow(self) -> None:
            self._write_deadline = None
            if self.transport.is_closing():
                return
            guard.timed_out("write_timeout")
            # A reset, not a close: the kernel drops the answer queued for the client at once
            # (a close would keep sending it, megabytes, to a reader that does not read).
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()

        def _stop_write_deadline(self) -> None:
            if self._write_deadline is not None:
                self._write_deadline.cancel()
                self._write_deadline = None

        def _start_header_deadline(self) -> None:
            self._header_deadline = self.loop.call_later(
                guard.header_seconds, self._headers_too_slow
            )

        def _stop_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.transport.is_closing():
                return
            guard.timed_out()
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request's headers are late while the one before it is still
                # being answered: no status line in the middle of that answer.
                self.transport.close()
                return
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            self.transport.close()

    return GuardedHttpToolsProtocol


def guard_for(settings: Settings) -> ConnectionGuard:
    """The bounds ``settings`` set, the total lowered to what the open-files limit allows
    (whose soft limit is raised to the hard one first), and the web's open forms."""
    from entryexit.web.app import open_form_paths  # the web's, only where it is served

    return ConnectionGuard(
        header_seconds=settings.header_timeout_seconds,
        per_address=settings.connections_per_address,
        total=connections_within(settings.max_connections, raise_open_files_limit()),
        trusted=settings.trusted_proxies,
        per_network=settings.connections_per_network,
        stall_seconds=settings.connection_stall_seconds,
        write_seconds=settings.write_timeout_seconds,
        open_paths=open_form_paths(),
    )


def guard_options(guard: ConnectionGuard) -> dict[str, Any]:
    """The ``uvicorn.Config`` options that put ``guard`` in front of the app."""
    return {"http": guarded_protocol(guard)}
