"""The audit trail: record what was done, by whom, to which resource, with what outcome.

A use case records its event inside its own unit of work, so the event and the change it
describes commit together or not at all. When the use case runs for an HTTP request, the
event names the request's route too, and the request is marked as recorded once the unit of
work commits; the API's access middleware then writes nothing more. Requests that reach no
use case (refused credentials, a missing permission, a read) get one access event from the
middleware instead: one event per request, never two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from entryexit.domain.access import Principal
from entryexit.domain.audit import AuditEntry, AuditEvent, ChainVerification, verify_chain
from entryexit.services.ports import Clock, KeyProvider
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

PAGE = 1000


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
        """The only way the head is ever signed over what was found: verify the whole log,
        then record what verification found as an event chained after the last stored event,
        and sign the head there. Nothing is hidden: an event that is wrong still fails
        verification by its own MAC; the repair lets audited work go on."""
        found = self.verify()
        problem = self.integrity_problem()
        details: dict[str, int | str] = {
            "chain_ok": "yes" if found.ok else "no",
            "events": found.events,
            "head_problem": problem or "",
        }
        if not found.ok:
            details["first_broken_sequence"] = found.first_broken_sequence or 0
            details["reason"] = found.reason or ""
        entry = self._entry("audit repair", "ok", actor, None, None, details, None)
        in_transaction(self._uow, lambda uow: uow.audit.repair(entry))
        return found

    def head(self) -> tuple[int, str] | None:
        with self._uow(read_only=True) as uow:
            return uow.audit.head()

    def verify(self) -> ChainVerification:
        head = self.head()
        return verify_chain(
            self.all_events(),
            self._keys.audit_key(),
            head[0] if head else None,
            head[1] if head else None,
        )


# The audit log's resource column holds 64 characters; a caller's id may be anything (a
# refused request naming a 60 KB "flight id" is still recorded, cut, with its length).
MAX_RESOURCE_ID = 64


def _bounded(resource_id: str | None) -> str | None:
    if resource_id is None or len(resource_id) <= MAX_RESOURCE_ID:
        return resource_id
    return f"{resource_id[:32]}...({len(resource_id)} characters)"[:MAX_RESOURCE_ID]
