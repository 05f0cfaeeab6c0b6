"""Which waiting pairing code a full table drops (review M4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from entryexit.domain.kiosk import KioskDevice, code_to_evict, eviction_group

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def waiting(name: str, network: str | None, seconds: int) -> KioskDevice:
    return KioskDevice(
        id=name,
        token_hash=name,
        csrf_token=name,
        created_at=T0 + timedelta(seconds=seconds),
        code_hash=name,
        code_expires_at=T0 + timedelta(minutes=5),
        pairing_network=network,
    )


def test_ipv6_codes_count_per_48_and_ipv4_per_24() -> None:
    assert eviction_group("2001:db8:7:1::/64") == "2001:db8:7::/48"
    assert eviction_group("2001:db8:7:ffff::/64") == "2001:db8:7::/48"
    assert eviction_group("198.51.100.0/24") == "198.51.100.0/24"
    assert eviction_group(None) == ""
    assert eviction_group("not-an-address") == "not-an-address"


def test_the_network_holding_the_most_loses_its_oldest_code_ties_to_the_oldest() -> None:
    real = waiting("real", "192.0.2.0/24", 0)
    flood = [waiting(f"f{i}", f"2001:db8:7:{i:x}::/64", 10 + i) for i in range(3)]
    pair_of_24 = [waiting(f"p{i}", "198.51.100.0/24", 5 + i) for i in range(2)]
    assert code_to_evict([real, *pair_of_24, *flood]) == flood[0]
    assert code_to_evict([real, *pair_of_24]) == pair_of_24[0]
    assert code_to_evict([pair_of_24[1], real]) == real  # one each: the oldest
    assert code_to_evict([]) is None
