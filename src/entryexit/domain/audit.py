"""The tamper-evident audit log: a hash chain of events, each with its own MAC, and a signed
head.

Each event's hash covers its own fields and the previous event's hash, so changing,
deleting, inserting or reordering any event breaks the chain at that point. Each event also
carries a MAC (HMAC with the audit key) of its sequence number and hash: someone who can
write to the database but holds no audit key can re-hash a chain, but cannot MAC it, so
verification names the first event that is actually wrong. The signed head (HMAC of the last
sequence number and hash) catches events cut off the end; a writer checks the head before it
extends the log and refuses to when it does not fit (see :func:`head_problem`). Events carry
identifiers and counts only: never a face, a template, a name or a document number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, before it is chained."""

    occurred_at: datetime
    action: str
    outcome: str
    actor_key_id: str | None = None
    actor_role: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    policy_version: str | None = None
    details: Mapping[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    sequence: int
    entry: AuditEntry
    previous_hash: str
    hash: str
    mac: str | None = None


def canonical(entry: AuditEntry, sequence: int, previous_hash: str) -> bytes:
    return json.dumps(
        {
            "sequence": sequence,
            "occurred_at": entry.occurred_at.isoformat(),
            "action": entry.action,
            "outcome": entry.outcome,
            "actor_key_id": entry.actor_key_id,
            "actor_role": entry.actor_role,
            "resource_type": entry.resource_type,
            "resource_id": entry.resource_id,
            "policy_version": entry.policy_version,
            "details": dict(sorted(entry.details.items())),
            "previous_hash": previous_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")


def chain(entry: AuditEntry, sequence: int, previous_hash: str) -> AuditEvent:
    digest = hashlib.sha256(canonical(entry, sequence, previous_hash)).hexdigest()
    return AuditEvent(sequence, entry, previous_hash, digest)


def sign_head(key: bytes, sequence: int, event_hash: str) -> str:
    return hmac.new(key, f"{sequence}:{event_hash}".encode(), hashlib.sha256).hexdigest()


def event_mac(key: bytes, sequence: int, event_hash: str) -> str:
    """The event's own MAC (a different message from the head's, so neither stands in for
    the other)."""
    return hmac.new(key, f"event:{sequence}:{event_hash}".encode(), hashlib.sha256).hexdigest()


def with_mac(key: bytes, event: AuditEvent) -> AuditEvent:
    return AuditEvent(
        event.sequence,
        event.entry,
        event.previous_hash,
        event.hash,
        event_mac(key, event.sequence, event.hash),
    )


def head_problem(
    key: bytes,
    head: tuple[int, str, str] | None,
    last: AuditEvent | None,
) -> str | None:
    """Why the log must not be extended, or None. ``head`` is the stored (sequence, hash,
    signature); ``last`` the stored event with the highest sequence. A writer that extended
    a head it had not checked would re-sign whatever a database writer left there."""
    return tip_problem(key, head, None if last is None else (last.sequence, last.hash, last.mac))


def tip_problem(
    key: bytes,
    head: tuple[int, str, str] | None,
    last: tuple[int, str, str | None] | None,
) -> str | None:
    """:func:`head_problem` given only the last event's (sequence, hash, mac): all it checks
    of that event, so a writer need not read (or decode) the rest of the row."""
    if head is None and last is None:
        return None
    if head is None:
        return "the log has events but no signed head"
    sequence, head_hash, signature = head
    if not hmac.compare_digest(sign_head(key, sequence, head_hash), signature):
        return f"the head signature at sequence {sequence} is wrong"
    if last is None or last[0] != sequence or last[1] != head_hash:
        found = "no events" if last is None else f"the last event is {last[0]}"
        return f"the signed head names sequence {sequence}, but {found}"
    last_sequence, last_hash, last_mac = last
    if last_mac is None or not hmac.compare_digest(
        event_mac(key, last_sequence, last_hash), last_mac
    ):
        return f"event {last_sequence} has no valid MAC"
    return None


REPAIR_ACTION = "audit repair"
RESTORE_ACTION = "audit restore"
# A rewritten log can have millions of wrong events; the report names this many, and counts all.
MAX_PROBLEMS_NAMED = 1000


@dataclass(frozen=True, slots=True)
class ChainProblem:
    sequence: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """Every wrong event (up to :data:`MAX_PROBLEMS_NAMED`, all counted), the repairs and
    restores the walk passed, and the hashes at the sequences the caller asked to remember
    (checkpoints are compared with them)."""

    ok: bool
    events: int
    first_broken_sequence: int | None = None
    reason: str | None = None
    problems: tuple[ChainProblem, ...] = ()
    problem_count: int = 0
    repairs: tuple[AuditEvent, ...] = ()
    restores: tuple[AuditEvent, ...] = ()
    last_sequence: int = 0
    hashes_at: Mapping[int, str] = field(default_factory=dict)
    # 0: the whole log was walked; else the walk started after this event (a checkpoint's).
    after_sequence: int = 0


class _Findings:
    def __init__(self) -> None:
        self.problems: list[ChainProblem] = []
        self.count = 0

    def add(self, sequence: int, reason: str) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS_NAMED:
            self.problems.append(ChainProblem(sequence, reason))


def verify_chain(
    events: Iterable[AuditEvent],
    key: bytes,
    head_sequence: int | None,
    head_signature: str | None,
    remember: Collection[int] = (),
    after: tuple[int, str] | None = None,
) -> ChainVerification:
    """Walk the chain from the start (or from just ``after`` a known event: its sequence and
    hash, vouched for by a signed checkpoint) and name every event that does not fit: after
    a break the walk goes on from the stored event, so one modified event is one finding and
    a re-hashed tail is one finding per event (each fails its own MAC)."""
    found = _Findings()
    wanted = set(remember)
    hashes_at: dict[int, str] = {}
    repairs: list[AuditEvent] = []
    restores: list[AuditEvent] = []
    start_sequence, expected_previous = after or (0, GENESIS_HASH)
    expected_sequence = start_sequence + 1
    count = 0
    last: AuditEvent | None = None
    for event in events:
        count += 1
        if event.sequence > expected_sequence:
            missing = (
                f"event {expected_sequence} is"
                if event.sequence == expected_sequence + 1
                else f"events {expected_sequence}-{event.sequence - 1} are"
            )
            found.add(
                expected_sequence,
                f"sequence {event.sequence} found where {expected_sequence} was expected"
                f" ({missing} missing: deleted, or the rest renumbered)",
            )
        elif event.sequence < expected_sequence:
            found.add(
                event.sequence,
                f"sequence {event.sequence} found after {expected_sequence - 1}"
                " (an event was inserted or reordered)",
            )
        elif event.previous_hash != expected_previous:
            found.add(event.sequence, "its link to the previous event does not match")
        recomputed = chain(event.entry, event.sequence, event.previous_hash).hash
        if not hmac.compare_digest(recomputed, event.hash):
            found.add(event.sequence, "its contents do not match its hash (modified)")
        elif event.mac is None or not hmac.compare_digest(
            event_mac(key, event.sequence, event.hash), event.mac
        ):
            found.add(
                event.sequence,
                "its MAC is missing or wrong (forged, or re-hashed without the audit key)",
            )
        if event.entry.action == REPAIR_ACTION:
            repairs.append(event)
        elif event.entry.action == RESTORE_ACTION:
            restores.append(event)
        if event.sequence in wanted:
            hashes_at[event.sequence] = event.hash
        expected_previous = event.hash
        expected_sequence = max(expected_sequence, event.sequence + 1)
        last = event
    end = (last.sequence, last.hash) if last is not None else None
    if end is None and start_sequence > 0:
        end = (start_sequence, expected_previous)
    if end is None:
        if head_sequence is not None:
            found.add(1, "the signed head names events that are missing")
    elif head_sequence is None or head_signature is None:
        found.add(end[0], "the chain head is not signed")
    elif head_sequence != end[0]:
        found.add(
            min(head_sequence, end[0]) + 1,
            f"the signed head is at sequence {head_sequence} but the log ends at {end[0]}",
        )
    elif not hmac.compare_digest(sign_head(key, end[0], end[1]), head_signature):
        found.add(end[0], "the head signature is wrong (forged or re-chained)")
    first = found.problems[0] if found.problems else None
    return ChainVerification(
        ok=first is None,
        events=count,
        first_broken_sequence=first.sequence if first else None,
        reason=first.reason if first else None,
        problems=tuple(found.problems),
        problem_count=found.count,
        repairs=tuple(repairs),
        restores=tuple(restores),
        last_sequence=end[0] if end else 0,
        hashes_at=hashes_at,
        after_sequence=start_sequence,
    )
