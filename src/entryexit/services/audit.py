"""The audit trail: record what was done, by whom, to which resource, with what outcome.

A use case records its event inside its own unit of work, so the event and the change it
describes commit together or not at all. When the use case runs for an HTTP request, the
event names the request's route too, and the request is marked as recorded once the unit of
work commits; the API's access middleware then writes nothing more. Requests that reach no
use case (refused credentials, a missing permission, a read) get one access event from the
middleware instead: one event per request, never two.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime

from entryexit.domain.access import Principal
from entryexit.domain.audit import (
    GENESIS_HASH,
    REPAIR_ACTION,
    RESTORE_ACTION,
    AuditEntry,
    AuditEvent,
    ChainVerification,
    verify_chain,
)
from entryexit.domain.audit_checkpoints import (
    MAX_REASON,
    AcknowledgedRestore,
    Checkpoint,
    CheckpointLine,
    CheckpointReport,
    RestoreStatement,
    acknowledged_restores,
    compare_with_checkpoints,
)
from entryexit.errors import AuditLogUntrustedError, ConfigurationError, InvalidInputError
from entryexit.services.ports import (
    CheckpointSigner,
    CheckpointStore,
    CheckpointVerifier,
    Clock,
    KeyProvider,
)
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

PAGE = 1000
CHECKPOINT_LOG_MARKER = "audit checkpoint: "
logger = logging.getLogger(__name__)
# Checkpoints must reach the service log whatever level the rest of it is set to: this logger
# passes them on to the log's handlers itself.
checkpoint_log = logging.getLogger("entryexit.audit.checkpoints")
checkpoint_log.setLevel(logging.INFO)


@dataclass(slots=True)
class RequestAudit:
    """The HTTP request a use case runs for (set by the API's access middleware)."""

    method: str
    route_of: Callable[[], str | None] = lambda: None
    recorded: bool = False
    # The id the request carries in logs (X-Request-ID): joins an audit event to its log lines.
    request_id: str | None = None

    @property
    def route(self) -> str | None:
        return self.route_of()

    def mark_recorded(self) -> None:
        self.recorded = True


_current_request: ContextVar[RequestAudit | None] = ContextVar(
    "entryexit_request_audit", default=None
)


def current_request() -> RequestAudit | None:
    return _current_request.get()


def set_current_request(request: RequestAudit | None) -> object:
    """Make ``request`` the one audited in this context; returns a token for ``reset``."""
    return _current_request.set(request)


def reset_current_request(token: object) -> None:
    _current_request.reset(token)  # type: ignore[arg-type]


class AuditTrail:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, keys: KeyProvider) -> None:
        self._uow = uow
        self._clock = clock
        self._keys = keys
        self._policy_version: Callable[[datetime], str | None] = lambda _: None

    def name_policies_by(self, policy_version: Callable[[datetime], str | None]) -> None:
        """Where the version of the policy in force comes from: every event names it (the
        policy service is built after the trail, since loading a policy is audited)."""
        self._policy_version = policy_version

    def record(
        self,
        uow: UnitOfWork,
        action: str,
        outcome: str,
        actor: Principal | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        details: Mapping[str, int | str] | None = None,
        policy_version: str | None = None,
    ) -> AuditEvent:
        """Append the event to ``uow``'s transaction (it commits with the use case)."""
        recorded = dict(details or {})
        request = current_request()
        if request is not None:
            if request.route is not None:
                recorded.setdefault("request", f"{request.method} {request.route}")
            if request.request_id is not None:
                recorded.setdefault("request_id", request.request_id)
            uow.after_commit(request.mark_recorded)
        return uow.audit.append(
            self._entry(
                action, outcome, actor, resource_type, resource_id, recorded, policy_version
            )
        )

    def _entry(
        self,
        action: str,
        outcome: str,
        actor: Principal | None,
        resource_type: str | None,
        resource_id: str | None,
        details: Mapping[str, int | str],
        policy_version: str | None,
    ) -> AuditEntry:
        occurred_at = self._clock()
        return AuditEntry(
            occurred_at=occurred_at,
            action=action,
            outcome=outcome,
            actor_key_id=actor.key_id if actor else None,
            actor_role=actor.role.value if actor else None,
            resource_type=resource_type,
            resource_id=_bounded(resource_id),
            policy_version=policy_version or self._policy_version(occurred_at),
            details=dict(details),
        )

    def record_alone(
        self,
        action: str,
        outcome: str,
        actor: Principal | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        details: Mapping[str, int | str] | None = None,
        policy_version: str | None = None,
    ) -> AuditEvent:
        """An event that is a use case of its own (an access that reached no use case, a
        refused sign-in): its own transaction."""
        return in_transaction(
            self._uow,
            lambda uow: self.record(
                uow, action, outcome, actor, resource_type, resource_id, details, policy_version
            ),
        )

    def events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        with self._uow(read_only=True) as uow:
            return uow.audit.events(after_sequence, min(max(limit, 1), PAGE), action, actor_key_id)

    def all_events(self, action: str | None = None) -> Iterator[AuditEvent]:
        after = 0
        while page := self.events(after, PAGE, action):
            yield from page
            after = page[-1].sequence

    def integrity_problem(self) -> str | None:
        """Why audited actions would be refused now (readiness reports it), or None."""
        with self._uow(read_only=True) as uow:
            return uow.audit.integrity_problem()

    def repair(self, actor: Principal | None = None) -> ChainVerification:
        """The only way the head is ever signed over what was found: with the log held (no
        other writer between the check and the write), verify the whole log, record what
        verification found as an event chained after the last stored event, and sign the
        head there, in one transaction. Nothing is hidden: an event that is wrong still
        fails verification by its own MAC, and `audit verify` lists every repair it passes."""

        def check_and_repair(uow: UnitOfWork) -> ChainVerification:
            uow.audit.lock()
            problem = uow.audit.integrity_problem()
            found = self._verify_in(uow)
            details: dict[str, int | str] = {
                "chain_ok": "yes" if found.ok else "no",
                "events": found.events,
                "head_problem": _bounded_text(problem or ""),
            }
            if not found.ok:
                details["first_broken_sequence"] = found.first_broken_sequence or 0
                details["problems"] = found.problem_count
                details["reason"] = _bounded_text(found.reason or "")
            uow.audit.repair(self._entry(REPAIR_ACTION, "ok", actor, None, None, details, None))
            return found

        return in_transaction(self._uow, check_and_repair)

    def head(self) -> tuple[int, str] | None:
        with self._uow(read_only=True) as uow:
            return uow.audit.head()

    def verify(self, remember: Collection[int] = ()) -> ChainVerification:
        """Walk the whole log in one read transaction; ``remember`` names the sequences whose
        hashes checkpoints are compared with."""
        with self._uow(read_only=True) as uow:
            return self._verify_in(uow, remember)

    def verify_after(self, sequence: int, event_hash: str) -> ChainVerification | None:
        """Walk only the events from ``sequence`` (a signed checkpoint's, whose hash is
        ``event_hash``) to the head: the interactive check, its cost bounded by what was
        written since the last checkpoint rather than by the log's size. None when the
        event at ``sequence`` is missing or has another hash: the log was rolled back or
        rewritten below the checkpoint, and only the full walk can say how."""
        with self._uow(read_only=True) as uow:
            first = uow.audit.events(sequence - 1, 1) if sequence > 0 else []
            if sequence > 0 and not (
                first
                and first[0].sequence == sequence
                and hmac.compare_digest(first[0].hash, event_hash)
            ):
                return None
            start = (sequence - 1, first[0].previous_hash) if first else None
            return self._verify_in(uow, {sequence}, start)

    def _verify_in(
        self,
        uow: UnitOfWork,
        remember: Collection[int] = (),
        after: tuple[int, str] | None = None,
    ) -> ChainVerification:
        head = uow.audit.head()

        def pages() -> Iterator[AuditEvent]:
            sequence = after[0] if after else 0
            while page := uow.audit.events(sequence, PAGE):
                yield from page
                sequence = page[-1].sequence

        return verify_chain(
            pages(),
            self._keys.audit_key(),
            head[0] if head else None,
            head[1] if head else None,
            remember,
            after,
        )


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The chain walked, and (when checkpoints were given) the log held against them."""

    chain: ChainVerification
    checkpoints: CheckpointReport | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.checkpoints is None or self.checkpoints.ok)


class AuditCheckpoints:
    """Signed checkpoints of the log's head that leave the database: appended to the
    checkpoint file and written to the service log, when the service starts, every
    ``interval`` seconds while the log grows, and when it stops. Also the acknowledgement of
    a restore from backup, the one rollback that verification accepts."""

    def __init__(
        self,
        trail: AuditTrail,
        uow: UnitOfWorkFactory,
        clock: Clock,
        signer: CheckpointSigner,
        store: CheckpointStore,
        interval_seconds: float = 300.0,
    ) -> None:
        self._trail = trail
        self._uow = uow
        self._clock = clock
        self._signer = signer
        self._store = store
        self._interval = interval_seconds
        self._written: tuple[int, str] | None = None
        self._last: Checkpoint | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def public_key_pem(self) -> str:
        return self._signer.public_key_pem()

    @property
    def last_written(self) -> Checkpoint | None:
        """The last checkpoint this process wrote (``/metrics``: its age)."""
        return self._last

    def write(self, only_if_moved: bool = False) -> Checkpoint | None:
        """Sign the log's head as it is now; None when the log is untrusted (a checkpoint
        must never vouch for a head the service itself refuses to extend) or, with
        ``only_if_moved``, when nothing was written since the last checkpoint."""
        with self._lock:
            with self._uow(read_only=True) as uow:
                problem = uow.audit.integrity_problem()
                last = uow.audit.last()
                restore_events = uow.audit.events(0, PAGE, RESTORE_ACTION)
            if problem is not None:
                logger.error("audit checkpoint not written: the log is untrusted (%s)", problem)
                return None
            position = (0, GENESIS_HASH) if last is None else (last.sequence, last.hash)
            if only_if_moved and position == self._written:
                return None
            restores, forged = acknowledged_restores(restore_events, self._signer.verify)
            self._notice_rollback(position, restores)
            for sequence, reason in forged:
                logger.error("audit event %s is not acknowledged: %s", sequence, reason)
            unsigned = Checkpoint(
                position[0],
                position[1],
                self._clock(),
                tuple(r.event_sequence for r in restores),
            )
            checkpoint = replace(unsigned, signature=self._signer.sign(unsigned.message()))
            line = self._store.append(checkpoint)
            checkpoint_log.info("%s%s", CHECKPOINT_LOG_MARKER, line)
            self._written = position
            self._last = checkpoint
            return checkpoint

    def _notice_rollback(
        self, position: tuple[int, str], restores: Sequence[AcknowledgedRestore]
    ) -> None:
        """Say in the service log, at once, when the log is shorter than at the last checkpoint
        this process wrote and no acknowledged restore explains it (verification against the
        checkpoint file finds every rollback, rewritten ones too)."""
        previous = self._written
        if previous is None or previous[0] <= position[0]:
            return
        if any(r.restored_sequence < previous[0] for r in restores):
            return
        logger.error(
            "audit log rolled back: the last checkpoint named event %s, the log now ends at %s;"
            " run `entryexit audit verify --checkpoints FILE`",
            previous[0],
            position[0],
        )

    def verify(
        self,
        lines: Sequence[CheckpointLine] | None = None,
        verifier: CheckpointVerifier | None = None,
    ) -> AuditVerification:
        """Walk the log and hold it against every checkpoint (by default the service's own
        file, checked with its own key; an auditor passes a file and a public key)."""
        read = self._store.read() if lines is None else list(lines)
        chain = self._trail.verify(
            remember={line.checkpoint.sequence for line in read if line.checkpoint}
        )
        check = (verifier or self._signer).verify
        return AuditVerification(chain, compare_with_checkpoints(read, chain, check))

    def verify_recent(self) -> AuditVerification:
        """The interactive check (the API's and the console's): the log from the last signed
        checkpoint forward, held against that checkpoint. Catches what was written, changed,
        removed or rolled back since the checkpoint (the checkpoint vouches for everything
        before it as it was then); the full walk is `entryexit audit verify --checkpoints FILE`.
        With no valid checkpoint it is the full walk."""
        read = self._store.read()
        check = self._signer.verify
        for line in reversed(read):
            checkpoint = line.checkpoint
            if checkpoint is not None and check(checkpoint.message(), checkpoint.signature):
                break
        else:
            return self.verify(read)
        chain = self._trail.verify_after(checkpoint.sequence, checkpoint.event_hash)
        if chain is None:  # rolled back or rewritten below the checkpoint: say how, in full
            return self.verify(read)
        # Acknowledged restores are few and found by their action (indexed): listed whether
        # before the checkpoint or after, each statement checked against the checkpoint key.
        with self._uow(read_only=True) as uow:
            restores = tuple(uow.audit.events(0, PAGE, RESTORE_ACTION))
        chain = replace(chain, restores=restores)
        return AuditVerification(chain, compare_with_checkpoints([line], chain, check))

    def acknowledge_restore(self, reason: str, actor: Principal | None = None) -> AuditEvent:
        """Record that the log was restored from a backup on purpose: a restore event right
        after the restored head, carrying a statement signed with the checkpoint key (the
        audit MAC key alone cannot make one), then a checkpoint that acknowledges it."""
        text = " ".join(reason.split())
        if not text or len(text) > MAX_REASON or not text.isprintable():
            raise InvalidInputError(f"a restore needs a reason (1-{MAX_REASON} characters)")

        def acknowledge(uow: UnitOfWork) -> AuditEvent:
            uow.audit.lock()
            problem = uow.audit.integrity_problem()
            if problem is not None:
                raise AuditLogUntrustedError(
                    f"the restored log does not verify ({problem}); a backup's log does:"
                    " check that the whole database was restored, or run `entryexit audit"
                    " repair` first"
                )
            last = uow.audit.last()
            statement = RestoreStatement(
                restored_sequence=0 if last is None else last.sequence,
                restored_hash=GENESIS_HASH if last is None else last.hash,
                reason=text,
                acknowledged_at=self._clock(),
            )
            details = statement.details(self._signer.sign(statement.message()))
            return self._trail.record(
                uow, RESTORE_ACTION, "acknowledged", actor, "audit log", None, details
            )

        event = in_transaction(self._uow, acknowledge)
        self.write()
        return event

    # --- the service's schedule ----------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        try:
            self.write()
        except ConfigurationError:
            raise  # no checkpoint key, or a file it cannot write: the service does not start
        except Exception as exc:  # the database at this moment: the next interval tries again
            logger.error("audit checkpoint failed: %s: %s", type(exc).__name__, exc)
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The last checkpoint, at shutdown (what was done until now leaves the database)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._safely_write(only_if_moved=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._safely_write(only_if_moved=True)

    def _safely_write(self, only_if_moved: bool) -> None:
        try:
            self.write(only_if_moved=only_if_moved)
        except Exception as exc:  # logged; the next interval tries again
            logger.error("audit checkpoint failed: %s: %s", type(exc).__name__, exc)


def _bounded_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# The audit log's resource column holds 64 characters; a caller's id may be anything (a
# refused request naming a 60 KB "flight id" is still recorded, cut, with its length).
MAX_RESOURCE_ID = 64


def _bounded(resource_id: str | None) -> str | None:
    if resource_id is None or len(resource_id) <= MAX_RESOURCE_ID:
        return resource_id
    return f"{resource_id[:32]}...({len(resource_id)} characters)"[:MAX_RESOURCE_ID]
