"""Request-body limits enforced around the application: size (413) and time (408).

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no timeout for
reading a request's headers or body: a client that trickles its body a byte at a time holds
the request for as long as it likes. The body's deadline is enforced here; the headers' one
cannot be (the application is called only once they have arrived) and belongs to the reverse
proxy in front (docs/settings.md, "Slow clients").
"""

from __future__ import annotations

import json
import math

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.problems import MEDIA_TYPE, PROBLEM_TYPE_BASE
from entryexit.domain.throttle import Network, client_address


def client_address_of(scope: Scope, trusted_proxies: tuple[Network, ...]) -> str:
    """The client's address for per-address limits: ``X-Forwarded-For`` counts only when the
    TCP peer is a trusted proxy (``ENTRYEXIT_TRUSTED_PROXIES``), see
    :func:`entryexit.domain.throttle.client_address`."""
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = (
        [
            value.decode("latin-1")
            for name, value in scope.get("headers") or []
            if name == b"x-forwarded-for"
        ]
        if trusted_proxies
        else []
    )
    return client_address(peer, forwarded, trusted_proxies)


class _RefusedBodyError(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(code)
        self.status, self.code, self.title, self.detail = status, code, title, detail


class BodySizeLimit:
    """At most ``max_bytes`` of body (413), all of it within ``read_timeout`` seconds of the
    first read (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = math.inf) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    def _too_large(self) -> _RefusedBodyError:
        return _RefusedBodyError(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body exceeds {self.max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, self._too_large())
            return
        received = 0
        refused: _RefusedBodyError | None = None
        started = False
        deadline: float | None = None
        more_body = True

        async def limited_receive() -> Message:
            nonlocal received, refused, deadline, more_body
            if not more_body:  # the body is in: waiting now is for a disconnect
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.read_timeout
            message: Message | None = None
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
            if message is None:
                refused = _RefusedBodyError(
                    408,
                    "request-timeout",
                    "Request timeout",
                    f"the request body did not arrive within {self.read_timeout:g} seconds",
                )
                raise refused
            if message["type"] == "http.request":
                more_body = bool(message.get("more_body", False))
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = self._too_large()
                    raise refused
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                # The app answered after the body was refused (a form parser turns any error
                # while reading into 400 "error parsing the body"): the answer is the refusal,
                # whatever the app made of it.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject(send, refused)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _RefusedBodyError as exc:
            if not started:
                await _reject(send, exc)


async def _reject(send: Send, refusal: _RefusedBodyError) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + refusal.code,
            "title": refusal.title,
            "status": refusal.status,
            "detail": refusal.detail,
        }
    ).encode()
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if refusal.status == 408:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
