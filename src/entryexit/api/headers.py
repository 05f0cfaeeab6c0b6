"""Headers every answer carries: no page of EntryExit may be framed or content-sniffed, and
no API answer may be stored by a cache on the way (they hold names, document numbers and
decisions, and the key travels in ``X-API-Key``, which caches do not treat as a credential).

The console and kiosk add their own stricter set (``web.console.ConsoleHeaders``); this covers
the rest, above all the API documentation (Swagger UI, where people paste API keys), which a
hostile page could otherwise frame to overlay it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.limits import route_path

_BASELINE = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


_API_PREFIX = "/v1/"
_NO_STORE = (b"cache-control", b"no-store")

# The console's and kiosk's pages carry their own, stricter set.
_SCREENS = ("/console", "/kiosk")


class BaselineHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope).startswith(_SCREENS):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        baseline = (*_BASELINE, _NO_STORE) if path.startswith(_API_PREFIX) else _BASELINE

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in baseline if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
