"""The tamper-evident audit log: a hash chain of events whose head is signed.

Each event's hash covers its own fields and the previous event's hash, so changing,
deleting, inserting or reordering any event breaks the chain at that point; the signed head
(HMAC of the last sequence number and hash) catches events cut off the end. Events carry
identifiers and counts only: never a face, a template, a name or a document number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
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


@dataclass(frozen=True, slots=True)
class ChainVerification:
    ok: bool
    events: int
    first_broken_sequence: int | None = None
    reason: str | None = None


def verify_chain(
    events: Iterable[AuditEvent],
    key: bytes,
    head_sequence: int | None,
    head_signature: str | None,
) -> ChainVerification:
    """Walk the chain from the start; name the first event that does not fit."""
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    count = 0
    last: AuditEvent | None = None
    for event in events:
        count += 1
        if event.sequence != expected_sequence:
            return ChainVerification(
                False,
                count,
                expected_sequence,
                f"sequence {event.sequence} found where {expected_sequence} was expected"
                " (an event was deleted, inserted or reordered)",
            )
        if event.previous_hash != expected_previous:
            return ChainVerification(
                False, count, event.sequence, "its link to the previous event does not match"
            )
        recomputed = chain(event.entry, event.sequence, event.previous_hash).hash
        if not hmac.compare_digest(recomputed, event.hash):
            return ChainVerification(
                False, count, event.sequence, "its contents do not match its hash (modified)"
            )
        expected_previous = event.hash
        expected_sequence += 1
        last = event
    if last is None:
        if head_sequence is None:
            return ChainVerification(True, 0)
        return ChainVerification(False, 0, 1, "the signed head names events that are missing")
    if head_sequence is None or head_signature is None:
        return ChainVerification(False, count, last.sequence, "the chain head is not signed")
    if head_sequence != last.sequence:
        return ChainVerification(
            False,
            count,
            min(head_sequence, last.sequence) + 1,
            f"the signed head is at sequence {head_sequence} but the log ends at {last.sequence}",
        )
    if not hmac.compare_digest(sign_head(key, last.sequence, last.hash), head_signature):
        return ChainVerification(
            False, count, last.sequence, "the head signature is wrong (forged or re-chained)"
        )
    return ChainVerification(True, count)
