from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from entryexit.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    chain,
    sign_head,
    verify_chain,
)

KEY = b"k" * 32


def build(count: int) -> list[AuditEvent]:
    events, previous = [], GENESIS_HASH
    for sequence in range(1, count + 1):
        entry = AuditEntry(
            occurred_at=datetime(2026, 11, 23, 12, sequence, tzinfo=UTC),
            action="POST /v1/flights",
            outcome="ok",
            actor_key_id=f"key-{sequence % 2}",
            details={"status": 201},
        )
        event = chain(entry, sequence, previous)
        events.append(event)
        previous = event.hash
    return events


def verify(events: list[AuditEvent], head: AuditEvent | None = None) -> tuple[bool, int | None]:
    last = head or (events[-1] if events else None)
    result = verify_chain(
        events,
        KEY,
        last.sequence if last else None,
        sign_head(KEY, last.sequence, last.hash) if last else None,
    )
    return result.ok, result.first_broken_sequence


def test_an_intact_chain_verifies() -> None:
    assert verify(build(5)) == (True, None)
    assert verify([]) == (True, None)


def test_a_modified_event_is_named() -> None:
    events = build(5)
    events[2] = replace(events[2], entry=replace(events[2].entry, outcome="denied"))
    assert verify(events, head=build(5)[-1]) == (False, 3)


def test_a_deleted_event_is_named() -> None:
    events = build(5)
    del events[1]
    assert verify(events, head=build(5)[-1]) == (False, 2)


def test_an_inserted_event_is_named() -> None:
    events = build(5)
    forged = chain(events[1].entry, 3, events[1].hash)
    events.insert(2, forged)
    assert verify(events, head=build(5)[-1])[0] is False


def test_reordered_events_are_named() -> None:
    events = build(5)
    events[1], events[2] = events[2], events[1]
    assert verify(events, head=build(5)[-1]) == (False, 2)


def test_events_cut_off_the_end_are_caught_by_the_signed_head() -> None:
    original = build(5)
    ok, broken = verify(original[:3], head=original[-1])
    assert not ok
    assert broken == 4


def test_a_rebuilt_chain_without_the_key_is_caught() -> None:
    events = build(3)
    result = verify_chain(events, KEY, 3, sign_head(b"x" * 32, 3, events[-1].hash))
    assert not result.ok
    assert "signature" in (result.reason or "")
