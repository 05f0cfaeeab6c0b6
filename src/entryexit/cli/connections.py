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
trusted proxies are not counted), and the process holds at most ``total`` at once, a new
connection taking the place of the oldest that has no request in progress
(:class:`ConnectionGuard`). A refused, evicted or timed-out connection is counted
(``entryexit_connections_refused_total``) and logged once a minute, without addresses.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from collections import Counter, OrderedDict
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


@dataclass
class ConnectionGuard:
    """The limits, and the connections open, per address (one guard per server).

    When the process holds ``total`` connections, a new one takes the place of the oldest
    connection with no request in progress (waiting for its headers, or idle between
    requests), so connections that only sit there (a few dozen addresses, or one IPv6 block,
    holding the table full) cannot keep a gate out: a gate's request is in progress within
    milliseconds of its connection, and only then stops being evictable. A new connection is
    refused only when every connection has a request in progress.
    """

    header_seconds: float
    per_address: int
    total: int
    trusted: tuple[Network, ...] = ()
    refused: Counter[str] = field(default_factory=Counter)
    _open: Counter[str] = field(default_factory=Counter)
    # Connections with no request in progress, oldest first (evicted in that order).
    _idle: OrderedDict[_Connection, None] = field(default_factory=OrderedDict)
    _holders: dict[_Connection, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _logged_at: float = float("-inf")

    def admit(self, connection: _Connection, host: str | None) -> str | None:
        """Count a new connection from ``host`` (idle until its request's headers are in);
        the reason it is refused, or ``None``."""
        holder = address_holder(host) if host and not within(host, self.trusted) else None
        evicted: _Connection | None = None
        with self._lock:
            if holder is not None and self._open[holder] >= self.per_address:
                return self._refuse("per_address")
            if len(self._holders) >= self.total:
                if not self._idle:
                    return self._refuse("total")
                evicted, _ = self._idle.popitem(last=False)
                self._forget(evicted)
                self._refuse("evicted")
            self._holders[connection] = holder
            self._idle[connection] = None
            if holder is not None:
                self._open[holder] += 1
        if evicted is not None:
            evicted.evict()
        return None

    def busy(self, connection: _Connection) -> None:
        """A request's headers are in: the connection is not evicted until it is answered."""
        with self._lock:
            self._idle.pop(connection, None)

    def idle(self, connection: _Connection) -> None:
        """Its request is answered: evictable again (oldest idle first)."""
        with self._lock:
            if connection in self._holders:
                self._idle[connection] = None

    def release(self, connection: _Connection) -> None:
        with self._lock:
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        # Called with the lock held; a connection evicted is forgotten once.
        if connection not in self._holders:
            return
        holder = self._holders.pop(connection)
        self._idle.pop(connection, None)
        if holder is not None:
            self._open[holder] -= 1
            if self._open[holder] <= 0:
                del self._open[holder]

    def timed_out(self) -> None:
        with self._lock:
            self._refuse("header_timeout")

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
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _admitted = False
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if guard.admit(self, self.client[0] if self.client else None) is not None:
                transport.abort()
                return
            self._admitted = True
            self._start_header_deadline()

        def evict(self) -> None:
            """Closed to make room (the guard has forgotten it already)."""
            self._admitted = False
            self._stop_header_deadline()
            if not self.transport.is_closing():
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_deadline()
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
            guard.busy(self)
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            guard.idle(self)

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
    (whose soft limit is raised to the hard one first)."""
    return ConnectionGuard(
        header_seconds=settings.header_timeout_seconds,
        per_address=settings.connections_per_address,
        total=connections_within(settings.max_connections, raise_open_files_limit()),
        trusted=settings.trusted_proxies,
    )


def guard_options(guard: ConnectionGuard) -> dict[str, Any]:
    """The ``uvicorn.Config`` options that put ``guard`` in front of the app."""
    return {"http": guarded_protocol(guard)}
