"""Every API access, allowed or not, becomes an audit event: one place, no endpoint forgotten."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.domain.access import Principal
from entryexit.services.audit import RequestAudit, reset_current_request, set_current_request

UNAUDITED = {path for (_, path), needed in ENDPOINT_PERMISSIONS.items() if needed == PUBLIC}


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        # The router sets scope["route"] before the endpoint runs; the use case reads it then.
        request = RequestAudit(scope["method"], lambda: getattr(scope.get("route"), "path", None))

        async def capture_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = set_current_request(request)
        try:
            await self.app(scope, receive, capture_status)
        finally:
            reset_current_request(token)
            # A use case that ran recorded this request's event in its own transaction.
            if not request.recorded:
                await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None)
        state = scope.get("state", {})
        # Routes may opt out for requests that carry no personal data (the console's polls).
        if path is None or path in UNAUDITED or state.get("unaudited"):
            return
        principal = state.get("principal")
        # Only opaque identifiers: document numbers in a path are personal data, not logged.
        identifiers = {
            name: str(value)
            for name, value in (scope.get("path_params") or {}).items()
            if name.endswith("_id")
        }
        resource_type, resource_id = next(iter(identifiers.items()), (None, None))
        services = scope["app"].state.services
        await run_in_threadpool(
            services.audit.record_alone,
            f"{scope['method']} {path}",
            outcome_of(status),
            principal if isinstance(principal, Principal) else None,
            resource_type.removesuffix("_id") if resource_type else None,
            resource_id,
            {"status": status},
        )
