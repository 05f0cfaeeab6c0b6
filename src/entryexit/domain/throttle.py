"""Rate limits: a token bucket per key, and a lock-out after repeated failed sign-ins."""

from __future__ import annotations

import threading
from dataclasses import dataclass


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

    def take(self, key: str, now: float) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


class FailureLockout:
    """After ``limit`` failures within ``window`` seconds, a source is refused for ``block``
    seconds (without its credentials being checked)."""

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
            recent = [t for t in self._failures.get(source, []) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.limit:
                self._blocked_until[source] = now + self.block
                recent = []
            self._failures[source] = recent

    def success(self, source: str) -> None:
        with self._lock:
            self._failures.pop(source, None)
