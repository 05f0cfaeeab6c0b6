"""Request-body limits enforced around the application: size (413) and time (408).

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no timeout for
reading a request's headers or body: a client that trickles its body a byte at a time holds
the request for as long as it likes. The body's deadline is enforced here; the headers' one
cannot be (the application is called only once they have arrived) and belongs to the reverse
proxy in front (docs/settings.md, "Slow clients").
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from ipaddress import ip_address

import anyio
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.metrics_registry import REGISTRY
from entryexit.api.problems import MEDIA_TYPE, PROBLEM_TYPE_BASE
from entryexit.domain.throttle import Network, client_address

logger = logging.getLogger(__name__)

# Tokens a request spends from its key's bucket (ENTRYEXIT_KEY_REQUESTS_PER_SECOND) when it is
# not one: endpoints whose cost is far above an ordinary read's (fingerprint comparisons, the
# audit log's check). Gate keys have their own bucket and are not weighted.
REQUEST_COSTS: dict[tuple[str, str], float] = {
    # A walk of every event since the last checkpoint (up to ``audit_checkpoint_interval``
    # of a busy port's events, an HMAC each): at the default rate about one a second per key,
    # two at once (review L10). Not cached: each call appends its own access event, so no
    # two calls see the same head, and a cached walk would miss an event edited since.
    ("GET", "/v1/audit/verification"): 100,
    ("POST", "/v1/fingerprint-verifications"): 5,
    ("POST", "/v1/flights/{flight_id}/fingerprint-searches"): 5,
    ("POST", "/v1/documents/fingerprints"): 5,
    ("POST", "/v1/watchlist/fingerprints"): 5,
    ("GET", "/v1/privacy/report"): 5,
    ("GET", "/v1/reports/fairness"): 5,
    ("GET", "/v1/reports/overstays"): 5,
}

UNTRUSTED_FORWARDED = Counter(
    "entryexit_untrusted_forwarded_requests",
    "Requests whose client address was needed (failed API sign-ins, console sign-ins) that"
    " carried X-Forwarded-For from a peer not in ENTRYEXIT_TRUSTED_PROXIES: the header was"
    " ignored and the peer (perhaps a load balancer) was counted as the client.",
    registry=REGISTRY,
)
UNTRUSTED_FORWARDED_WARN_EVERY_SECONDS = 3600.0


class WarningThrottle:
    """A repeated warning, the first time and then at most once per ``every`` seconds (a proxy
    that is not listed sends the header on every request)."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._suppressed = 0

    def due(self) -> int | None:
        """None if not due, else how many occurrences were not warned about since the last."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self._every:
                self._suppressed += 1
                return None
            self._last = now
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed


untrusted_forwarded_warnings = WarningThrottle(UNTRUSTED_FORWARDED_WARN_EVERY_SECONDS)


def _trusted(peer: str | None, trusted_proxies: tuple[Network, ...]) -> bool:
    try:
        address = ip_address(peer) if peer else None
    except ValueError:
        return False
    return address is not None and any(address in network for network in trusted_proxies)


def route_path(scope: Scope) -> str:
    """The path the router matches: ``scope["path"]`` without the ``root_path`` prefix the
    service is mounted under (uvicorn ``--root-path``, a proxy's mount). ASGI servers put the
    prefix in ``path`` too; a path without it is already relative (as Starlette's router)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def client_address_of(
    scope: Scope, trusted_proxies: tuple[Network, ...], report: bool = True
) -> str:
    """The client's address for per-address limits: ``X-Forwarded-For`` counts only when the
    TCP peer is a trusted proxy (``ENTRYEXIT_TRUSTED_PROXIES``), see
    :func:`entryexit.domain.throttle.client_address`. The header from any other peer is
    ignored, counted and warned about: behind a load balancer that is not listed, every
    client would share the balancer's lock-out."""
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers") or []
        if name == b"x-forwarded-for"
    ]
    if forwarded and not _trusted(peer, trusted_proxies):
        if not report:  # the request's own handling has counted and warned already
            return client_address(peer, [], trusted_proxies)
        UNTRUSTED_FORWARDED.inc()
        suppressed = untrusted_forwarded_warnings.due()
        if suppressed is not None:
            # No address: the peer may be a person's own machine.
            logger.warning(
                "a request carried X-Forwarded-For from a peer not in ENTRYEXIT_TRUSTED_PROXIES:"
                " the header is ignored and per-address limits (console lock-out, failed API"
                " sign-ins) count the peer; if a load balancer or reverse proxy is in front,"
                " list its address (%d more such requests since the last warning)",
                suppressed,
            )
        forwarded = []
    return client_address(peer, forwarded, trusted_proxies)


class _RefusedBodyError(Exception):
    def __init__(
        self, status: int, code: str, title: str, detail: str, retry_after: int | None = None
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.retry_after = retry_after


# The methods whose declared body is reserved from the budget (the application's forms and
# uploads); any other's body bytes are counted only as they arrive.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# How long a request refused for the body budget is told to wait: the bodies being read
# finish (or hit their deadline) within seconds.
BODY_BUDGET_RETRY_SECONDS = 5


class BodySizeLimit:
    """At most ``max_bytes`` of body (413), all of it within ``read_timeout`` seconds of the
    first read (408); and all requests together at most ``budget`` bytes of body being read
    at once (503 with Retry-After past it).

    The budget (probe G2): an application holds a request's body in memory until it answers
    (multipart forms are parsed in memory: biometric data is never spooled to disk), so N
    connections each sending a body just under ``max_bytes`` would make the process hold N
    times it. A POST's, PUT's or PATCH's declared ``Content-Length`` is reserved when the
    application first asks for the body (refused then, before any of it is taken, if it does
    not fit); bytes beyond it, or sent by other methods, are counted as they arrive. Nothing
    is reserved for a request whose body nobody reads, nor from the headers of a GET (session
    9 review M3: GETs declaring 16 MiB and not reading their large answers held the budget,
    and every upload was refused). Bytes are given back as soon as the application starts its
    answer (it is done with the body; one not read by then never will be), not when the
    answer has been delivered, which a client that does not read it can put off."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        read_timeout: float = math.inf,
        budget: int | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.budget = budget
        self.buffered = 0  # bytes reserved or received by requests in progress

    def _over_budget(self) -> _RefusedBodyError:
        return _RefusedBodyError(
            503,
            "service-busy",
            "Service busy",
            "the service is reading too many request bodies at once; retry shortly",
            retry_after=BODY_BUDGET_RETRY_SECONDS,
        )

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
        declared_bytes = (
            int(declared)
            if declared is not None and declared.isdigit() and scope.get("method") in BODY_METHODS
            else 0
        )
        counted = 0  # bytes this request holds against the budget
        received = 0
        refused: _RefusedBodyError | None = None
        started = False
        deadline: float | None = None
        more_body = True

        def give_back() -> None:
            nonlocal counted
            self.buffered -= counted
            counted = 0

        async def limited_receive() -> Message:
            nonlocal received, refused, deadline, more_body, counted
            if not more_body or started:  # waiting now is for a disconnect
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.read_timeout
                # The application asks for the body: its declared size is reserved now.
                if declared_bytes:
                    if self.budget is not None and self.buffered + declared_bytes > self.budget:
                        refused = self._over_budget()
                        raise refused
                    self.buffered += declared_bytes
                    counted = declared_bytes
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
                if received > counted:  # beyond what the headers declared: count it now
                    extra = received - counted
                    if self.budget is not None and self.buffered + extra > self.budget:
                        refused = self._over_budget()
                        raise refused
                    self.buffered += extra
                    counted = received
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
                give_back()  # the application is done with the body
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _RefusedBodyError as exc:
            if not started:
                await _reject(send, exc)
        finally:
            give_back()


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
    # The rest of the body is not read: the connection carries no other request.
    headers.append((b"connection", b"close"))
    if refusal.retry_after is not None:
        headers.append((b"retry-after", str(refusal.retry_after).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
