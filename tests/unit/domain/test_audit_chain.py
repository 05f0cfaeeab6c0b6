from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from entryexit.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    chain,
    head_problem,
    sign_head,
    verify_chain,
    with_mac,
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
        event = with_mac(KEY, chain(entry, sequence, previous))
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


def rehash_from(events: list[AuditEvent], start: int) -> list[AuditEvent]:
    """What a database writer without the audit key can do: renumber and re-hash the chain
    from ``start`` on, keeping each event's old MAC (it cannot make new ones)."""
    rebuilt = events[:start]
    previous = rebuilt[-1].hash if rebuilt else GENESIS_HASH
    for sequence, event in enumerate(events[start:], start=start + 1):
        forged = replace(chain(event.entry, sequence, previous), mac=event.mac)
        rebuilt.append(forged)
        previous = forged.hash
    return rebuilt


def test_a_modified_and_rehashed_event_is_named_by_its_mac() -> None:
    events = build(6)
    events[2] = replace(events[2], entry=replace(events[2].entry, outcome="denied"))
    rebuilt = rehash_from(events, 2)
    # Even with a head that an attacker re-signed with a stolen audit key, the per-event MAC
    # names event 3, not the head; with the real head, the same.
    assert verify(rebuilt, head=rebuilt[-1]) == (False, 3)


def test_an_inserted_forgery_is_named_where_it_is() -> None:
    events = build(5)
    forged = chain(replace(events[1].entry, outcome="forged"), 0, "")
    rebuilt = rehash_from([*events[:2], forged, *events[2:]], 2)
    assert verify(rebuilt, head=rebuilt[-1]) == (False, 3)


def test_a_deleted_event_with_the_rest_renumbered_is_named() -> None:
    events = build(5)
    rebuilt = rehash_from([*events[:1], *events[2:]], 1)
    assert verify(rebuilt, head=rebuilt[-1]) == (False, 2)


def test_a_writer_refuses_a_head_that_does_not_fit() -> None:
    events = build(4)
    last = events[-1]
    signed = (last.sequence, last.hash, sign_head(KEY, last.sequence, last.hash))
    assert head_problem(KEY, signed, last) is None
    assert head_problem(KEY, None, None) is None
    # Events deleted from the end, head moved back with any signature:
    truncated = events[1]
    assert head_problem(KEY, (2, truncated.hash, "0" * 64), truncated) is not None
    # A saved head restored after more events were written (rollback of the head only):
    assert head_problem(KEY, signed, build(5)[-1]) is not None
    # A re-hashed last event without its MAC:
    rehashed = rehash_from(events, 3)[-1]
    forged_head = (4, rehashed.hash, sign_head(KEY, 4, rehashed.hash))
    assert head_problem(KEY, forged_head, replace(rehashed, mac=None)) is not None
    assert head_problem(KEY, (4, last.hash, sign_head(b"x" * 32, 4, last.hash)), last)


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
