"""Keyless requests (and sessionless console and kiosk forms) refused before their body is read.

FastAPI checks the API key in a dependency, which runs only once the body has been read and
parsed: a caller with no key could make the service hold up to the body limit in memory per
request (multipart uploads are kept in memory: a capture is biometric data, never spooled to
disk) for as long as the body's deadline allows, and an address already blocked for failed
sign-ins would still be read in full. This guard answers such requests from their headers.
A request whose key authenticates goes on to the dependency, which checks it in full
(revocation, MAC, permission, rate); one with a made-up key is refused here, and once its
address is blocked for failed sign-ins, without a thread or a read (``KeylessRequestGuard``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from entryexit.api.limits import BODY_METHODS, BodySizeLimit, client_address_of, route_path
from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.api.problems import problem_for
from entryexit.errors import AuthenticationError, RateLimitedError

if TYPE_CHECKING:
    from entryexit.bootstrap import Services

logger = logging.getLogger(__name__)

# Session cookies seen live are let past the guard without its read for this long (the
# route's dependency still checks each request in full: revocation, expiry, CSRF), at most
# this many (the least recently seen are forgotten first).
LIVE_COOKIE_SECONDS = 300.0
# While an address is blocked for failed sign-ins, a key this instance does not remember is
# looked for in a read of every live key at most this often (a real gate's key, on an
# instance that has not seen it yet), however many made-up keys the address sends.
KEY_TABLE_SECONDS = 10.0
MAX_REMEMBERED_COOKIES = 100_000
_KEYED = [
    (method, compile_path(path)[0])
    for (method, path), needed in ENDPOINT_PERMISSIONS.items()
    if needed != PUBLIC
]


def presented_key(scope: Scope) -> str | None:
    """The API key a request presents (``X-API-Key`` or a bearer token), unchecked."""
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    token = headers.get(b"x-api-key")
    if token:
        return token.decode("latin-1")
    scheme, _, credentials = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _needs_key(scope: Scope) -> bool:
    method, path = scope.get("method"), route_path(scope)
    return any(m == method and pattern.match(path) for m, pattern in _KEYED)


class KeylessRequestGuard:
    """Requests to keyed endpoints whose key this instance cannot vouch for, answered from
    their headers when that is enough.

    A key this instance authenticated before (``KeyService.remembered``: the presented secret
    checked against the row's hash as last read; no read) goes straight on, whatever its
    address: a gate behind a NAT address that a neighbour floods with made-up keys is never
    refused for it. The route's dependency still checks every request in full (revocation,
    permission, rate).

    Any other key from an address blocked for failed sign-ins (``limits.sign_in``) is refused
    429 with no thread and no read (session 9 review: every made-up key cost a thread-pool
    thread and a database read, without limit). Otherwise a POST, PUT or PATCH has its key
    authenticated here, before its body is read (one indexed read; a failure counts against
    its address); a GET goes on to the dependency, which reads, and counts a failure.

    A real key this instance has not authenticated yet (after a restart, on another worker)
    is told from made-up ones by a read of every live key's row, at most one every
    ``KEY_TABLE_SECONDS`` whatever the flood; only a key issued since the last such read
    waits (429, Retry-After) until the next, or until the block ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._keys_read_at = -KEY_TABLE_SECONDS  # (monotonic) when the keys were read last

    async def _learned(self, services: Services, token: str | None) -> bool:
        """Whether a well-formed key not remembered is real after all, from a read of every
        live key's row (:meth:`KeyService.remember_live`), at most one every
        ``KEY_TABLE_SECONDS`` however many requests ask; ``False`` without one in between."""
        try:
            services.keys.key_parts(token)
        except AuthenticationError:
            return False
        now = time.monotonic()
        if now - self._keys_read_at < KEY_TABLE_SECONDS:
            return False
        self._keys_read_at = now  # before the read: the requests meanwhile do not read
        await run_in_threadpool(services.keys.remember_live)
        return services.keys.remembered(token) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _needs_key(scope):
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        token = presented_key(scope)
        if services.keys.remembered(token) is not None:
            await self.app(scope, receive, send)
            return
        with_body = scope.get("method") in BODY_METHODS
        limits = scope["app"].state.limits
        proxies = services.settings.trusted_proxies
        # Not reported here (an untrusted X-Forwarded-For): the route's dependency reports it,
        # or the refusal below does.
        source = client_address_of(scope, proxies, report=False)
        blocked = limits.sign_in.blocked_for(source, time.monotonic())
        if blocked > 0 and await self._learned(services, token):
            await self.app(scope, receive, send)
            return
        if blocked > 0:
            client_address_of(scope, proxies)
            refusal = RateLimitedError("too many failed sign-ins from this address; wait", blocked)
            await _refuse(problem_for(refusal), scope, receive, send, with_body)
            return
        if not with_body:
            await self.app(scope, receive, send)
            return
        try:
            services.keys.key_parts(token)  # a malformed key costs no thread
            await run_in_threadpool(services.keys.authenticate, token)
        except AuthenticationError as refused:
            client_address_of(scope, proxies)
            limits.sign_in.failure(source, time.monotonic())
            logger.warning("failed API authentication")
            await _refuse(problem_for(refused), scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class SessionArea:
    """Browser pages under ``prefix`` whose POSTs need the session cookie ``cookie``: forms
    parsed (in memory) before the route's session dependency runs. ``open_forms`` are the
    paths taken without a session (sign-in, pairing) and the most body each may have;
    ``live`` says whether a cookie token names a live session (one indexed read, by its
    hash); ``refusal`` is the answer to a request without one. ``refused_early``, if set,
    answers a request from its headers alone whatever its cookie (the kiosk's: one from
    outside the lanes' networks), or returns None to let it on."""

    prefix: str
    cookie: str
    live: Callable[[Services, str], bool]
    refusal: Callable[[Scope], Response]
    open_forms: Mapping[str, int] = field(default_factory=dict)
    refused_early: Callable[[Services, Scope], Awaitable[Response | None]] | None = None


class AnonymousFormGuard:
    """The console's and the kiosk's forms refused to anonymous clients before their body is
    read (probe G2: with no key and no cookie, 256 connections x 16 MiB bodies through
    ``/kiosk/captures`` made the service hold 4 GiB). A POST, PUT or PATCH under an area's
    prefix goes on only with a cookie naming a live session; the area's open forms go on
    without one, but with at most their small body, read within ``open_form_seconds``.
    The areas are ``app.state.session_areas`` (the web app sets them; the API alone has none).

    A cookie that names no live session costs a thread and a read; an address with too many
    of those (the API's failed sign-ins, ``limits.sign_in``) is refused 429 without either
    until its block ends (session 9 review L4: a flood of made-up cookies took the thread
    pool the kiosks' captures queue on). Cookies found live are remembered (by their hash):
    for ``LIVE_COOKIE_SECONDS`` they go on unchecked, and after that they are checked again
    even while their address is blocked, so a real session behind a flooded NAT address is
    never refused for its neighbour (session 10 review E1: a kiosk in constant use was
    checked again every 300 s and got 429 while blocked). A remembered cookie found dead is
    forgotten and counted as a failure; a made-up one cannot be remembered (only a live
    session's hash is), so the block still costs a flood nothing.
    """

    def __init__(self, app: ASGIApp, open_form_seconds: float = 5.0) -> None:
        self.app = app
        self.open_form_seconds = open_form_seconds
        self._open_forms: dict[int, ASGIApp] = {}
        # SHA-256 of cookies found live -> when (monotonic); touched only on the event loop.
        self._live: OrderedDict[bytes, float] = OrderedDict()

    def _capped(self, max_bytes: int) -> ASGIApp:
        if max_bytes not in self._open_forms:
            self._open_forms[max_bytes] = BodySizeLimit(
                self.app, max_bytes, read_timeout=self.open_form_seconds
            )
        return self._open_forms[max_bytes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        areas: tuple[SessionArea, ...] = getattr(scope["app"].state, "session_areas", ())
        area = next((a for a in areas if path == a.prefix or path.startswith(a.prefix + "/")), None)
        if area is None:
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        if area.refused_early is not None:
            early = await area.refused_early(services, scope)
            if early is not None:
                await _refuse(early, scope, receive, send)
                return
        if path in area.open_forms:
            await self._capped(area.open_forms[path])(scope, receive, send)
            return
        token = _cookie(scope, area.cookie)
        if token is None:
            await _refuse(area.refusal(scope), scope, receive, send)
            return
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        seen = self._live.get(digest)
        if seen is not None and now - seen < LIVE_COOKIE_SECONDS:
            self._live.move_to_end(digest)
            await self.app(scope, receive, send)
            return
        limits = scope["app"].state.limits
        source = client_address_of(scope, services.settings.trusted_proxies)
        blocked = limits.sign_in.blocked_for(source, now)
        if blocked > 0 and seen is None:
            refusal = RateLimitedError("too many failed sign-ins from this address; wait", blocked)
            await _refuse(problem_for(refusal), scope, receive, send)
            return
        if not await run_in_threadpool(area.live, services, token):
            self._live.pop(digest, None)
            limits.sign_in.failure(source, time.monotonic())
            await _refuse(area.refusal(scope), scope, receive, send)
            return
        self._live[digest] = time.monotonic()
        self._live.move_to_end(digest)
        if len(self._live) > MAX_REMEMBERED_COOKIES:
            self._live.popitem(last=False)
        await self.app(scope, receive, send)


async def _refuse(
    response: Response, scope: Scope, receive: Receive, send: Send, unread_body: bool = True
) -> None:
    if unread_body:
        response.headers["connection"] = "close"  # its body is never read
    await response(scope, receive, send)


def _cookie(scope: Scope, name: str) -> str | None:
    """A cookie's value from the request's headers, unchecked, read as the route reads it."""
    for header, value in scope.get("headers") or []:
        if header == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found:
                return found
    return None
