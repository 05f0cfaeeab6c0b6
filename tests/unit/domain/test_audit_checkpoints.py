"""Checkpoints held against the log, and restores told apart from rollbacks (pure rules; the
signature is a stand-in keyed hash here, Ed25519 in the adapter's tests)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from entryexit.domain.audit import (
    GENESIS_HASH,
    REPAIR_ACTION,
    RESTORE_ACTION,
    AuditEntry,
    AuditEvent,
    chain,
    sign_head,
    verify_chain,
    with_mac,
)
from entryexit.domain.audit_checkpoints import (
    Checkpoint,
    CheckpointLine,
    RestoreStatement,
    compare_with_checkpoints,
)

MAC_KEY = b"m" * 32
SIGNING_KEY = b"s" * 32
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def sign(message: bytes, key: bytes = SIGNING_KEY) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_ok(message: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(message), signature)


def extend(events: list[AuditEvent], entry: AuditEntry) -> AuditEvent:
    previous = events[-1].hash if events else GENESIS_HASH
    event = with_mac(MAC_KEY, chain(entry, len(events) + 1, previous))
    events.append(event)
    return event


def log(
    count: int, events: list[AuditEvent] | None = None, outcome: str = "ok"
) -> list[AuditEvent]:
    events = [] if events is None else events
    for _ in range(count):
        at = T0 + timedelta(minutes=len(events))
        extend(events, AuditEntry(at, "POST /v1/flights", outcome))
    return events


def checkpoint_of(events: list[AuditEvent], at: datetime, key: bytes = SIGNING_KEY) -> Checkpoint:
    last = events[-1] if events else None
    unsigned = Checkpoint(last.sequence if last else 0, last.hash if last else GENESIS_HASH, at)
    return replace(unsigned, signature=sign(unsigned.message(), key))


def held(events: list[AuditEvent], checkpoints: list[Checkpoint]):  # type: ignore[no-untyped-def]
    lines = [CheckpointLine(i, c) for i, c in enumerate(checkpoints, start=1)]
    last = events[-1] if events else None
    walked = verify_chain(
        events,
        MAC_KEY,
        last.sequence if last else None,
        sign_head(MAC_KEY, last.sequence, last.hash) if last else None,
        remember={c.sequence for c in checkpoints},
    )
    return walked, compare_with_checkpoints(lines, walked, signature_ok)


def test_checkpoints_of_the_same_log_agree() -> None:
    events = log(3)
    early = checkpoint_of(events, T0)
    log(4, events)
    walked, report = held(events, [checkpoint_of([], T0), early, checkpoint_of(events, T0)])
    assert walked.ok
    assert (report.ok, report.checked) == (True, 3)


def test_a_log_cut_back_to_an_earlier_valid_head_contradicts_a_checkpoint() -> None:
    """The rollback that per-event MACs and the signed head cannot see: every remaining event
    and the head are genuine (or re-signed with a stolen MAC key)."""
    events = log(6)
    checkpoint = checkpoint_of(events, T0 + timedelta(hours=1))
    rolled_back = events[:4]
    walked, report = held(rolled_back, [checkpoint])
    assert walked.ok  # the chain alone says intact
    assert not report.ok
    assert "ends at 4" in report.problems[0]


def test_a_rolled_back_and_rewritten_log_diverges_from_a_checkpoint() -> None:
    events = log(6)
    checkpoint = checkpoint_of(events, T0 + timedelta(hours=1))
    rewritten = log(
        3, events[:4], outcome="rewritten"
    )  # as long as before, and more: other events at 5 and 6
    walked, report = held(rewritten, [checkpoint])
    assert walked.ok
    assert "another hash" in report.problems[0]


def test_a_wiped_log_contradicts_every_checkpoint() -> None:
    events = log(3)
    walked, report = held([], [checkpoint_of(events, T0)])
    assert walked.ok
    assert "wiped" in report.problems[0]


def test_a_checkpoint_not_signed_by_the_checkpoint_key_is_reported_and_not_used() -> None:
    events = log(3)
    forged = checkpoint_of(events, T0, key=b"x" * 32)
    altered = replace(checkpoint_of(events, T0), sequence=2)
    _, report = held(events, [forged, altered])
    assert report.checked == 0
    assert len(report.problems) == 2
    assert all("signature does not verify" in p for p in report.problems)


def test_no_checkpoints_at_all_is_reported() -> None:
    _, report = held(log(2), [])
    assert not report.ok


def restore_event(events: list[AuditEvent], at: datetime, key: bytes = SIGNING_KEY) -> AuditEvent:
    last = events[-1]
    statement = RestoreStatement(last.sequence, last.hash, "disk failure", at)
    details = statement.details(sign(statement.message(), key))
    return extend(events, AuditEntry(at, RESTORE_ACTION, "acknowledged", details=details))


def test_an_acknowledged_restore_supersedes_the_checkpoints_written_before_it() -> None:
    events = log(6)
    before = checkpoint_of(events, T0 + timedelta(hours=1))
    restored = events[:4]
    restore = restore_event(restored, T0 + timedelta(hours=2))
    log(2, restored)
    after = checkpoint_of(restored, T0 + timedelta(hours=3))
    walked, report = held(restored, [before, after])
    assert report.ok, report.problems
    assert report.superseded == 1
    (acknowledged,) = report.restores
    assert (acknowledged.event_sequence, acknowledged.restored_sequence) == (restore.sequence, 4)
    assert "restored at sequence 4 on 2026-11-23 14:00 UTC (acknowledged" in acknowledged.describe()
    assert walked.restores == (restore,)


def test_a_restore_does_not_excuse_a_rollback_after_it() -> None:
    events = log(4)
    restore_event(events, T0 + timedelta(hours=2))
    log(3, events)
    later = checkpoint_of(events, T0 + timedelta(hours=3))
    # The same signed restore replayed to roll back again: the later checkpoint still holds.
    again = events[:4]
    replayed = replace(events[4])
    again.append(replayed)
    _, report = held(again, [later])
    assert not report.ok


def test_a_restore_event_made_with_the_mac_key_alone_is_not_acknowledged() -> None:
    events = log(6)
    before = checkpoint_of(events, T0 + timedelta(hours=1))
    rolled_back = events[:4]
    restore_event(rolled_back, T0 + timedelta(hours=2), key=b"not the checkpoint key".ljust(32))
    _, report = held(rolled_back, [before])
    assert report.restores == ()
    assert any("does not verify (forged)" in p for p in report.problems)
    assert any("ends at 5" in p for p in report.problems)


def test_a_signed_restore_statement_moved_elsewhere_is_not_acknowledged() -> None:
    events = log(6)
    before = checkpoint_of(events, T0 + timedelta(hours=1))
    genuine = restore_event(events[:4], T0 + timedelta(hours=2))
    rolled_back = events[:3]
    moved = AuditEntry(
        genuine.entry.occurred_at, RESTORE_ACTION, "ok", details=genuine.entry.details
    )
    extend(rolled_back, moved)
    _, report = held(rolled_back, [before])
    assert report.restores == ()
    assert any("copied away" in p for p in report.problems)


def test_verify_names_every_wrong_event_and_lists_repairs() -> None:
    events = log(4)
    extend(events, AuditEntry(T0, REPAIR_ACTION, "ok", details={"chain_ok": "no"}))
    log(3, events)
    for index in (1, 5):
        victim = events[index]
        events[index] = replace(victim, entry=replace(victim.entry, outcome="denied"))
    last = events[-1]
    walked = verify_chain(
        events, MAC_KEY, last.sequence, sign_head(MAC_KEY, last.sequence, last.hash)
    )
    assert [p.sequence for p in walked.problems] == [2, 6]
    assert walked.problem_count == 2
    assert walked.first_broken_sequence == 2
    assert [r.sequence for r in walked.repairs] == [5]


def test_a_rehashed_tail_is_one_finding_per_event() -> None:
    events = log(5)
    rebuilt = events[:2]
    for event in events[2:]:
        forged = chain(replace(event.entry, outcome="denied"), event.sequence, rebuilt[-1].hash)
        rebuilt.append(replace(forged, mac=event.mac))
    last = rebuilt[-1]
    walked = verify_chain(
        rebuilt, MAC_KEY, last.sequence, sign_head(MAC_KEY, last.sequence, last.hash)
    )
    assert [p.sequence for p in walked.problems] == [3, 4, 5]
    assert all("MAC" in p.reason for p in walked.problems)
