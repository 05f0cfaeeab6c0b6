"""Checkpoints that leave the database, and restores told apart from rollbacks.

A checkpoint says "at this time the log's last event was sequence S with hash H", signed with
a key that is not the audit MAC key (Ed25519: the public key is all a verifier needs, and a
thief of the MAC key cannot make one). Checkpoints are written outside the data directory;
a log that is later shorter than a checkpoint, or whose event S has another hash, was rolled
back, truncated or wiped, even if every remaining event and the head carry valid MACs.

A legitimate restore from backup is the one rollback that is allowed: an administrator
acknowledges it with the checkpoint key, which signs a restore statement (the head restored
to, the reason, when) recorded as an event right after that head. Checkpoints written before
the acknowledgement that name events past the restored head are then superseded, not
broken; any later checkpoint must agree with the log as it is.

Signatures are checked by a function the caller passes (the crypto lives in an adapter).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from entryexit.domain.audit import GENESIS_HASH, AuditEvent, ChainVerification

CHECKPOINT_CONTEXT = b"entryexit audit checkpoint v1\n"
RESTORE_CONTEXT = b"entryexit audit restore v1\n"
MAX_REASON = 200

# (message, signature) -> whether the checkpoint key signed it.
SignatureCheck = Callable[[bytes, str], bool]


def _canonical(context: bytes, fields: Mapping[str, object]) -> bytes:
    return context + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The log's last event (sequence 0 and the genesis hash: an empty log) at a time, and
    the restore events acknowledged by then (their sequences)."""

    sequence: int
    event_hash: str
    written_at: datetime
    restores: tuple[int, ...] = ()
    signature: str = ""

    def message(self) -> bytes:
        return _canonical(
            CHECKPOINT_CONTEXT,
            {
                "sequence": self.sequence,
                "event_hash": self.event_hash,
                "written_at": self.written_at.isoformat(),
                "restores": list(self.restores),
            },
        )


@dataclass(frozen=True, slots=True)
class RestoreStatement:
    """What an administrator acknowledges: the log was restored to this head, for a reason."""

    restored_sequence: int
    restored_hash: str
    reason: str
    acknowledged_at: datetime

    def message(self) -> bytes:
        return _canonical(
            RESTORE_CONTEXT,
            {
                "restored_sequence": self.restored_sequence,
                "restored_hash": self.restored_hash,
                "reason": self.reason,
                "acknowledged_at": self.acknowledged_at.isoformat(),
            },
        )

    def details(self, signature: str) -> dict[str, int | str]:
        return {
            "restored_sequence": self.restored_sequence,
            "restored_hash": self.restored_hash,
            "reason": self.reason,
            "acknowledged_at": self.acknowledged_at.isoformat(),
            "signature": signature,
        }

    @staticmethod
    def from_event(event: AuditEvent) -> tuple[RestoreStatement, str] | None:
        details = event.entry.details
        try:
            statement = RestoreStatement(
                restored_sequence=int(details["restored_sequence"]),
                restored_hash=str(details["restored_hash"]),
                reason=str(details["reason"]),
                acknowledged_at=datetime.fromisoformat(str(details["acknowledged_at"])),
            )
            return statement, str(details["signature"])
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class AcknowledgedRestore:
    event_sequence: int
    restored_sequence: int
    acknowledged_at: datetime
    reason: str

    def describe(self) -> str:
        return (
            f"restored at sequence {self.restored_sequence} on"
            f" {self.acknowledged_at:%Y-%m-%d %H:%M} UTC (acknowledged, event"
            f" {self.event_sequence}): {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class CheckpointLine:
    """One checkpoint as read from a file or log (``checkpoint`` None: unreadable)."""

    line: int
    checkpoint: Checkpoint | None
    problem: str | None = None


def acknowledged_restores(
    restore_events: Iterable[AuditEvent], signature_ok: SignatureCheck
) -> tuple[list[AcknowledgedRestore], list[tuple[int, str]]]:
    """The restore events whose statement the checkpoint key signed and which sit right
    after the head they name; the others, with why (a restore event the audit MAC key alone
    can make proves nothing)."""
    valid: list[AcknowledgedRestore] = []
    invalid: list[tuple[int, str]] = []
    for event in restore_events:
        read = RestoreStatement.from_event(event)
        if read is None:
            invalid.append((event.sequence, "a restore event without a readable statement"))
            continue
        statement, signature = read
        if not signature_ok(statement.message(), signature):
            invalid.append(
                (event.sequence, "a restore event whose signature does not verify (forged)")
            )
            continue
        if (
            event.sequence != statement.restored_sequence + 1
            or event.previous_hash != statement.restored_hash
        ):
            invalid.append(
                (event.sequence, "a restore statement copied away from the head it names")
            )
            continue
        valid.append(
            AcknowledgedRestore(
                event.sequence,
                statement.restored_sequence,
                statement.acknowledged_at,
                statement.reason,
            )
        )
    return valid, invalid


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    checked: int
    problems: tuple[str, ...]
    restores: tuple[AcknowledgedRestore, ...] = ()
    superseded: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def compare_with_checkpoints(
    lines: Sequence[CheckpointLine],
    chain: ChainVerification,
    signature_ok: SignatureCheck,
) -> CheckpointReport:
    """Hold the log (walked by :func:`verify_chain`, remembering every checkpoint's
    sequence) against each checkpoint: a log shorter than a checkpoint, or with another hash
    at its sequence, was rolled back, truncated or wiped, unless an acknowledged restore
    written after that checkpoint went back before it."""
    restores, forged = acknowledged_restores(chain.restores, signature_ok)
    problems = [f"event {sequence}: {reason}" for sequence, reason in forged]
    checked = superseded = 0
    if not lines:
        problems.append(
            "no checkpoints found (the file is empty or was replaced); nothing shows the log"
            " was not rolled back"
        )
    for line in lines:
        checkpoint = line.checkpoint
        if checkpoint is None:
            problems.append(f"checkpoint line {line.line}: {line.problem or 'unreadable'}")
            continue
        if not signature_ok(checkpoint.message(), checkpoint.signature):
            problems.append(
                f"checkpoint line {line.line}: its signature does not verify (forged or"
                " altered; not signed by the checkpoint key)"
            )
            continue
        checked += 1
        if _agrees(checkpoint, chain.hashes_at):
            continue
        if any(
            restore.restored_sequence < checkpoint.sequence
            and checkpoint.written_at <= restore.acknowledged_at
            for restore in restores
        ):
            superseded += 1
            continue
        problems.append(_conflict(line.line, checkpoint, chain.last_sequence))
    return CheckpointReport(checked, tuple(problems), tuple(restores), superseded)


def _agrees(checkpoint: Checkpoint, hashes_at: Mapping[int, str]) -> bool:
    if checkpoint.sequence == 0:
        return checkpoint.event_hash == GENESIS_HASH
    found = hashes_at.get(checkpoint.sequence)
    return found is not None and hmac.compare_digest(found, checkpoint.event_hash)


def _conflict(line: int, checkpoint: Checkpoint, last_sequence: int) -> str:
    when = f"checkpoint line {line} ({checkpoint.written_at:%Y-%m-%d %H:%M:%S} UTC)"
    if last_sequence == 0:
        return (
            f"{when} names event {checkpoint.sequence}, but the log is empty: the whole log"
            " was wiped (rollback, not acknowledged as a restore)"
        )
    if checkpoint.sequence > last_sequence:
        return (
            f"{when} names event {checkpoint.sequence}, but the log ends at {last_sequence}:"
            " events were removed (rollback or truncation, not acknowledged as a restore)"
        )
    return (
        f"{when}: event {checkpoint.sequence} has another hash than the one signed then: the"
        " log diverges from it (rolled back and rewritten, not acknowledged as a restore)"
    )
