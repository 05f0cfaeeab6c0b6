"""Rate limits: a token bucket per API key for authenticated traffic, a lock-out per client
address for unauthenticated traffic (failed sign-ins), and who "the client" is behind proxies.

The two never share a budget: a noisy neighbour behind the same NAT or load balancer can use
up its address's allowance of failures, but never a gate's key.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

from entryexit.errors import InvalidInputError


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``rate`` requests per second on average, bursts up to ``burst``, per key."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens (one request; more for an expensive one, at most the burst);
        returns 0 if allowed, else the seconds until they are available."""
        cost = min(cost, self.burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate


class FailureLockout:
    """After ``limit`` failures within ``window`` seconds, a source is refused for ``block``
    seconds (without its credentials being checked)."""

    # Sources are remembered only while they matter; past this many, stale ones are dropped
    # (an attacker with many addresses must not grow the tables without bound).
    MAX_SOURCES = 100_000

    def __init__(self, limit: int, window: float, block: float) -> None:
        self.limit = limit
        self.window = window
        self.block = block
        self._failures: dict[str, list[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked_for(self, source: str, now: float) -> float:
        with self._lock:
            until = self._blocked_until.get(source, 0.0)
            return max(0.0, until - now)

    def failure(self, source: str, now: float) -> None:
        with self._lock:
            if len(self._failures) + len(self._blocked_until) > self.MAX_SOURCES:
                self._forget_stale(now)
            recent = [t for t in self._failures.get(source, []) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.limit:
                self._blocked_until[source] = now + self.block
                recent = []
            self._failures[source] = recent

    def success(self, source: str) -> None:
        with self._lock:
            self._failures.pop(source, None)

    def _forget_stale(self, now: float) -> None:
        self._failures = {
            source: times
            for source, times in self._failures.items()
            if times and now - times[-1] < self.window
        }
        self._blocked_until = {
            source: until for source, until in self._blocked_until.items() if until > now
        }
        if len(self._failures) + len(self._blocked_until) > self.MAX_SOURCES:
            self._failures.clear()  # still too many live ones: forget counts, keep blocks


class SourceShare:
    """Each source's share of a scarce, slow resource (the console's password-hashing
    slots): a source with an attempt already in progress, or with ``per_minute`` attempts in
    the last minute, is turned away before it takes a slot, so one address's flood leaves the
    slots to the others. :meth:`enter` answers 0 (admitted: call :meth:`leave` when done) or
    the seconds to wait."""

    MAX_SOURCES = 100_000
    WINDOW = 60.0

    def __init__(self, per_minute: int, busy_retry: float = 1.0) -> None:
        self.per_minute = per_minute
        self.busy_retry = busy_retry
        self._attempts: dict[str, list[float]] = {}
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, source: str, now: float) -> float:
        with self._lock:
            if self._running.get(source, 0) > 0:
                return self.busy_retry
            if len(self._attempts) > self.MAX_SOURCES:
                self._attempts = {
                    s: times
                    for s, times in self._attempts.items()
                    if times and now - times[-1] < self.WINDOW
                }
                if len(self._attempts) > self.MAX_SOURCES:
                    self._attempts.clear()  # still too many live ones: forget the counts
            recent = [t for t in self._attempts.get(source, []) if now - t < self.WINDOW]
            if len(recent) >= self.per_minute:
                self._attempts[source] = recent
                return max(self.busy_retry, self.WINDOW - (now - recent[0]))
            recent.append(now)
            self._attempts[source] = recent
            self._running[source] = 1
            return 0.0

    def leave(self, source: str) -> None:
        with self._lock:
            self._running.pop(source, None)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks (a bare address is a /32 or /128)."""
    networks: list[Network] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise InvalidInputError(f"{part!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """Who the client is, for per-address limits.

    The TCP peer, unless it is a trusted proxy: then the ``X-Forwarded-For`` hops are read
    from the right (each proxy appends the address it saw) and the first hop that is not a
    trusted proxy is the client. Whatever lies left of it was written by the client itself
    and is never believed. A hop that is not an address ends the walk at the last trusted
    proxy (it can only have been written by a client)."""
    address = _address(peer) if peer else None
    if address is None:
        return peer or "unknown"
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    current = address
    while any(current in network for network in trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


def network_of(client: str) -> str:
    """The network a client address belongs to for per-network caps: its /24 (IPv4) or /64
    (IPv6), the block one holder usually has (a /64 is one LAN: any of its 2^64 addresses is
    one client's). A client that is not an address is its own network."""
    address = _address(client)
    if address is None:
        return client
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def address_holder(client: str) -> str:
    """Whom a client address stands for when attempts are counted per address: an IPv4
    address itself, an IPv6 address's /64 (``network_of``: its holder may use any of 2^64
    addresses, so counting per address would count nothing)."""
    address = _address(client)
    if address is None:
        return client
    return str(address) if address.version == 4 else network_of(client)


def within(client: str, networks: tuple[Network, ...]) -> bool:
    address = _address(client)
    return address is not None and any(address in network for network in networks)
