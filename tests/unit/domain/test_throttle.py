from __future__ import annotations

import pytest

from entryexit.domain.throttle import FailureLockout, TokenBuckets


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3.0)
    assert [buckets.take("gate", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("gate", 0.0) == pytest.approx(0.5)
    assert buckets.take("gate", 0.5) == 0.0  # one token back after half a second
    assert buckets.take("other", 0.5) == 0.0  # keys do not share a bucket


def test_lockout_after_repeated_failures_then_release() -> None:
    lockout = FailureLockout(limit=3, window=10.0, block=30.0)
    for moment in (0.0, 1.0):
        lockout.failure("10.0.0.9", moment)
    assert lockout.blocked_for("10.0.0.9", 1.5) == 0.0
    lockout.failure("10.0.0.9", 2.0)
    assert lockout.blocked_for("10.0.0.9", 2.0) == pytest.approx(30.0)
    assert lockout.blocked_for("10.0.0.9", 40.0) == 0.0
    assert lockout.blocked_for("10.0.0.10", 2.0) == 0.0


def test_failures_outside_the_window_do_not_add_up() -> None:
    lockout = FailureLockout(limit=2, window=5.0, block=30.0)
    lockout.failure("a", 0.0)
    lockout.failure("a", 10.0)
    assert lockout.blocked_for("a", 10.0) == 0.0
