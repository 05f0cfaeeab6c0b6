"""Every access by someone, allowed or not, becomes an audit event: one place, no endpoint
forgotten.

A request that reaches a use case is recorded by it, in its own transaction. For every other
request (refused credentials or permission, invalid input, reads) this middleware writes the
access event *before* the response starts: if the audit log cannot be extended (its head
does not verify), the response is replaced by 503 and nothing is answered unrecorded.

Requests by nobody are counted, not audited: no key, no session and no credential presented,
and nothing changed (an anonymous request that changes state does so through a use case,
which records it; kiosk pairing is the one exception and says so itself). Otherwise anyone
who can reach the port writes a permanent, HMAC-chained row per request (the login page in
a loop: ~25 rows a second from one client). A presented credential that fails is still
audited, as are requests refused for an address already locked out after failures, up to
``FAILED_EVENTS_PER_MINUTE`` per address per minute (the rest are counted).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.keyless import presented_key
from entryexit.api.limits import client_address_of, route_path
from entryexit.api.metrics_registry import REGISTRY
from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.api.problems import problem_for
from entryexit.bootstrap import Services
from entryexit.domain.access import Permission, Principal
from entryexit.errors import (
    AuditLogUntrustedError,
    EntryExitError,
    StorageUnavailableError,
    StoredDataUntrustedError,
)
from entryexit.services.audit import RequestAudit, reset_current_request, set_current_request

logger = logging.getLogger(__name__)

UNAUDITED = {path for (_, path), needed in ENDPOINT_PERMISSIONS.items() if needed == PUBLIC}
# The API documentation's own scripts and styles (served locally): nothing to audit.
DOCS_ASSETS = "/api-docs-assets"
# Reading the audit log is how an untrusted log is investigated: these are answered even
# when their own access event cannot be written (an ERROR line says so).
INVESTIGATION = {
    path for (_, path), needed in ENDPOINT_PERMISSIONS.items() if needed == Permission.AUDIT_READ
}


UNAUDITED_ANONYMOUS = Counter(
    "entryexit_anonymous_requests",
    "Requests by nobody (no key, no session, no credential presented) that changed nothing:"
    " counted here instead of each being an audit event.",
    ["outcome"],
    registry=REGISTRY,
)
UNAUDITED_FAILURES = Counter(
    "entryexit_unaudited_failed_authentications",
    "Failed requests with a presented credential beyond the audited number per address per"
    " minute (FAILED_EVENTS_PER_MINUTE): counted, not each an audit event.",
    registry=REGISTRY,
)
# The sign-in lock-out already stops an address after 20 failures a minute; this also bounds
# the refusals it answers while the address is blocked.
FAILED_EVENTS_PER_MINUTE = 30


class FailureEventBudget:
    """At most ``per_minute`` audited failures per client address per clock minute."""

    MAX_SOURCES = 100_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._minute = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, source: str, now: float) -> bool:
        minute = int(now // 60)
        with self._lock:
            if minute != self._minute or len(self._counts) > self.MAX_SOURCES:
                self._minute, self._counts = minute, {}
            seen = self._counts.get(source, 0)
            self._counts[source] = seen + 1
            return seen < self.per_minute


# The console's and kiosk's session cookies: a request presenting one that was refused is a
# forged, stolen or expired session, audited like a refused key.
_SESSION_COOKIES = (b"entryexit_session=", b"entryexit_kiosk=")


def presents_credential(scope: Scope) -> bool:
    """An API key (header or bearer token) or a session cookie was sent: a sign-in attempt,
    even a failed one."""
    headers = dict(scope.get("headers") or [])
    cookies = headers.get(b"cookie", b"")
    return (
        b"x-api-key" in headers
        or headers.get(b"authorization", b"").lower().startswith(b"bearer ")
        or any(name in cookies for name in _SESSION_COOKIES)
    )


def _names_an_issued_key(services: Services, scope: Scope) -> bool:
    token = presented_key(scope)
    return token is not None and services.keys.is_issued(token)


# The body guard refuses before the key is checked (the body is read first): the access
# event still names the key that sent it, if it is a valid one.
REFUSED_BODY = (408, 413)


def _key_holder(services: Services, scope: Scope) -> Principal | None:
    token = dict(scope.get("headers") or []).get(b"x-api-key")
    if token is None:
        return None
    try:
        return services.keys.authenticate(token.decode("latin-1"))
    except EntryExitError:
        return None


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "rejected"
    return "error"


class AuditAccess:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failures = FailureEventBudget(FAILED_EVENTS_PER_MINUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        # The router sets scope["route"] before the endpoint runs; the use case reads it then.
        request = RequestAudit(
            scope["method"],
            lambda: getattr(scope.get("route"), "path", None),
            request_id=scope.get("state", {}).get("request_id"),
        )

        attempted = replaced = False

        async def record_then_send(message: Message) -> None:
            nonlocal status, attempted, replaced
            if replaced:
                return  # the original response is dropped; a 503 went out instead
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # A use case that ran recorded this request's event in its own transaction.
                if not request.recorded:
                    attempted = True
                    try:
                        await self._record(scope, status)
                    except (
                        AuditLogUntrustedError,
                        StorageUnavailableError,
                        StoredDataUntrustedError,
                    ) as exc:
                        if getattr(scope.get("route"), "path", None) not in INVESTIGATION:
                            replaced = True
                            await problem_for(exc)(scope, receive, send)
                            return
                        logger.error("an audit-log read went unrecorded: %s", exc.code)
            await send(message)

        token = set_current_request(request)
        try:
            await self.app(scope, receive, record_then_send)
        finally:
            reset_current_request(token)
            if not request.recorded and not attempted:
                try:
                    await self._record(scope, status)
                except (AuditLogUntrustedError, StoredDataUntrustedError) as exc:
                    logger.error("the access event of a failed request is lost: %s", exc.code)

    async def _record(self, scope: Scope, status: int) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None)
        path_params: dict[str, object] = scope.get("path_params") or {}
        if route is None:
            path, path_params = matching_endpoint(scope)  # type: ignore[assignment]
        state = scope.get("state", {})
        if (
            path is None
            or path in UNAUDITED
            or path == DOCS_ASSETS
            or isinstance(route, Mount)  # static files (the console's, the kiosk's)
        ):
            return
        principal = state.get("principal")
        # Routes may opt out for requests that carry no personal data (the console's polls,
        # the sign-in page, an unpaired kiosk's screen).
        if state.get("unaudited"):
            if principal is None:
                UNAUDITED_ANONYMOUS.labels(outcome_of(status)).inc()
            return
        services = scope["app"].state.services
        if principal is None and status in REFUSED_BODY:
            principal = await run_in_threadpool(_key_holder, services, scope)
        if principal is None:
            # Nobody's request reached no use case, so it changed nothing (see the module).
            if not presents_credential(scope):
                UNAUDITED_ANONYMOUS.labels(outcome_of(status)).inc()
                return
            source = client_address_of(scope, services.settings.trusted_proxies, report=False)
            # Past the per-address budget only made-up keys go unaudited: junk sent first must
            # not push a real (revoked, stolen) key's failed use out of the log.
            if not self.failures.take(source, time.monotonic()) and not await run_in_threadpool(
                _names_an_issued_key, services, scope
            ):
                UNAUDITED_FAILURES.inc()
                return
        # Only opaque identifiers: document numbers in a path are personal data, not logged,
        # and neither is whatever was typed where an id belongs (a name, a document number
        # pasted into the wrong field): the audit log is kept for years and never sealed.
        identifiers = {
            name: str(value) for name, value in path_params.items() if name.endswith("_id")
        }
        resource_type, resource_id = next(iter(identifiers.items()), (None, None))
        details: dict[str, object] = {"status": status}
        if resource_id is not None and not is_opaque_id(resource_id):
            resource_id = None
            details["resource_id"] = "not an identifier"
        await run_in_threadpool(
            services.audit.record_alone,
            f"{scope['method']} {path}",
            outcome_of(status),
            principal if isinstance(principal, Principal) else None,
            resource_type.removesuffix("_id") if resource_type else None,
            resource_id,
            details,
        )
        # (The request id joins the details in AuditTrail.record, from the request context.)


def is_opaque_id(value: str) -> bool:
    """Whether ``value`` is an identifier EntryExit issues (a UUID in its canonical form)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# Every endpoint's template as a pattern, to name the endpoint of a request refused before
# routing (the body-size guard's 413 on a declared length): its access event still says
# which endpoint was asked for.
_TEMPLATES = [(method, path, compile_path(path)[0]) for (method, path) in ENDPOINT_PERMISSIONS]


def matching_endpoint(scope: Scope) -> tuple[str | None, dict[str, str]]:
    for method, path, pattern in _TEMPLATES:
        if method == scope.get("method"):
            found = pattern.match(route_path(scope))
            if found is not None:
                return path, found.groupdict()
    return None, {}
