from __future__ import annotations

import pytest

from entryexit.domain.throttle import (
    FailureLockout,
    TokenBuckets,
    address_holder,
    client_address,
    parse_networks,
)
from entryexit.errors import InvalidInputError


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


TRUSTED = parse_networks("10.0.0.0/8, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No trusted proxy in between: the header is the client's own claim, ignored.
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        # A trusted proxy: the right-most hop it appended is the client.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # Whatever the client wrote left of that is never believed.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a row: keep walking left.
        ("10.0.0.2", ["198.51.100.1, 10.0.0.3"], "198.51.100.1"),
        # Several headers are one list, in order.
        ("10.0.0.2", ["1.2.3.4", "198.51.100.1"], "198.51.100.1"),
        # A trusted proxy with no header: the proxy itself.
        ("10.0.0.2", [], "10.0.0.2"),
        # Garbage from the client stops the walk at the last trusted hop.
        ("10.0.0.2", ["not-an-address"], "10.0.0.2"),
        ("2001:db8::1", ["[2001:db8:1::5]:443, 198.51.100.1:5000"], "198.51.100.1"),
        ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("testclient", ["198.51.100.1"], "testclient"),
    ],
)
def test_client_address_is_the_right_most_untrusted_hop(
    peer: str, forwarded: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_header_never_counts() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


def test_invalid_networks_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        parse_networks("10.0.0.0/8, nonsense")


def test_the_lockout_forgets_stale_sources() -> None:
    lockout = FailureLockout(limit=5, window=1.0, block=1.0)
    lockout.MAX_SOURCES = 10
    for n in range(50):
        lockout.failure(f"s{n}", float(n))
    assert len(lockout._failures) <= 11


def test_an_address_holder_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert address_holder("203.0.113.66") == "203.0.113.66"
    assert address_holder("2001:db8:5:6::1") == "2001:db8:5:6::/64"
    assert address_holder("[2001:db8:5:6:ffff::1]:443") == "2001:db8:5:6::/64"
    assert address_holder("::ffff:203.0.113.66") == "203.0.113.66"
    assert address_holder("unknown") == "unknown"
