"""Keyless requests refused before their body is read.

FastAPI checks the API key in a dependency, which runs only once the body has been read and
parsed: a caller with no key could make the service hold up to the body limit in memory per
request (multipart uploads are kept in memory: a capture is biometric data, never spooled to
disk) for as long as the body's deadline allows, and an address already blocked for failed
sign-ins would still be read in full. This guard answers such requests from their headers.
A request whose key names a stored, unrevoked key goes on to the dependency, which checks
it in full (secret, MAC, permission); one with a made-up key is refused here.
"""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from entryexit.api.limits import client_address_of, route_path
from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.api.problems import problem_for
from entryexit.errors import AuthenticationError, RateLimitedError

logger = logging.getLogger(__name__)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Far more keys than a deployment issues: a bound on the guard's memory, never reached by real
# ones (made-up keys are never remembered).
MAX_REMEMBERED_KEYS = 100_000
_KEYED = [
    (method, compile_path(path)[0])
    for (method, path), needed in ENDPOINT_PERMISSIONS.items()
    if method in _BODY_METHODS and needed != PUBLIC
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
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Prefixes of keys seen stored: their requests go straight on (the dependency checks
        # them in full, revocation included). Only made-up keys cost the guard a read, one
        # indexed row, instead of the service reading their bodies.
        self._live_prefixes: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _needs_key(scope):
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        try:
            prefix = services.keys.key_parts(presented_key(scope))[1]
            if prefix not in self._live_prefixes:
                if not await run_in_threadpool(services.keys.is_live, prefix):
                    raise AuthenticationError("the API key is unknown or revoked")
                if len(self._live_prefixes) < MAX_REMEMBERED_KEYS:
                    self._live_prefixes.add(prefix)
        except AuthenticationError as refused:
            limits = scope["app"].state.limits
            source = client_address_of(scope, services.settings.trusted_proxies)
            now = time.monotonic()
            blocked = limits.sign_in.blocked_for(source, now)
            if blocked > 0:
                answer = problem_for(
                    RateLimitedError("too many failed sign-ins from this address; wait", blocked)
                )
            else:
                limits.sign_in.failure(source, now)
                logger.warning("failed API authentication")
                answer = problem_for(refused)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)
