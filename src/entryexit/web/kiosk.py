"""The traveler's screen at ``/kiosk``: the privacy notice, the camera with live guidance,
and the decision in plain words. Served by the same app as the console, under the same
strict Content-Security-Policy (no inline script, nothing from another origin, no build step).

The kiosk holds no API key: a device session cookie (HttpOnly, SameSite=Strict, Secure unless
``console_secure_cookies`` is off) issued when an admin or supervisor paired it from the
console, acting with exactly a gate's rights and rate-limited like a gate key. Every POST
carries the session's CSRF token in a header (a cross-site form cannot set one).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from entryexit.api.deps import RequestLimits, ServicesDep
from entryexit.api.limits import client_address_of
from entryexit.api.metrics_registry import REGISTRY
from entryexit.api.problems import problem_for
from entryexit.bootstrap import Services
from entryexit.domain.kiosk import TravelerMessage
from entryexit.domain.throttle import TokenBuckets, network_of, within
from entryexit.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
)
from entryexit.services.kiosks import KioskSession
from entryexit.web.console import CSRF_HEADER, templates
from entryexit.web.kiosk_text import TEXTS

KIOSK_PREFIX = "/kiosk"
KIOSK_COOKIE = "entryexit_kiosk"
# A camera frame for the quality check is small (480 pixels wide; decoded as an
# ImageKind.PREVIEW, at most 1 MP); a capture is a full frame.
MAX_CHECK_FRAME_BYTES = 256 * 1024

logger = logging.getLogger(__name__)

KIOSK_OUTSIDE_LANES = Counter(
    "entryexit_kiosk_requests_outside_lanes",
    "Requests to /kiosk refused because they came from outside ENTRYEXIT_KIOSK_NETWORKS"
    " (credential: a kiosk cookie was presented, or none).",
    ["credential"],
    registry=REGISTRY,
)

KIOSK_OPT_OUTS_REFUSED = Counter(
    "entryexit_kiosk_opt_out_requests_refused",
    "Kiosk opt-out requests refused (429): a kiosk asking too often, or with too many of its"
    " requests waiting for an officer.",
    registry=REGISTRY,
)


async def _outside_lanes(scope: Scope, services: Services) -> PermissionDeniedError | None:
    """With ``ENTRYEXIT_KIOSK_NETWORKS`` set, every /kiosk request comes from the lanes'
    networks (the service's client address: X-Forwarded-For only from a trusted proxy), or
    is refused 403: a pairing ticket or device session cookie lifted off a kiosk in a public
    hall is worth nothing elsewhere. A refusal with a kiosk's cookie is audited in that
    kiosk's name (unless its address is blocked for failed sign-ins: a cookie naming no kiosk
    counts as one); no address is logged or audited (it may be a person's own machine)."""
    lanes = services.settings.kiosk_networks
    if not lanes:
        return None
    source = client_address_of(scope, services.settings.trusted_proxies)
    if within(source, lanes):
        return None
    request = Request(scope)
    token = request.cookies.get(KIOSK_COOKIE)
    if token:
        KIOSK_OUTSIDE_LANES.labels("kiosk_cookie").inc()
        limits: RequestLimits = scope["app"].state.limits
        if limits.sign_in.blocked_for(source, time.monotonic()) == 0:
            holder = await run_in_threadpool(services.kiosks.credential_holder, token)
            if holder is not None:
                request.state.principal = holder
            else:
                limits.sign_in.failure(source, time.monotonic())
        logger.warning("a kiosk credential was presented from outside the lanes' networks")
    else:
        KIOSK_OUTSIDE_LANES.labels("none").inc()
    return PermissionDeniedError("kiosks are used from the lanes' networks only")


async def _from_lanes(request: Request, services: ServicesDep) -> None:
    """Every /kiosk request from outside the lanes' networks is refused (403)."""
    refused = await _outside_lanes(request.scope, services)
    if refused is not None:
        raise refused


async def refused_outside_lanes(services: Services, scope: Scope) -> Response | None:
    """The 403 for a /kiosk POST from outside the lanes' networks, answered from its headers
    (``AnonymousFormGuard``) before its body is read (session 9 review L5: a lifted live
    cookie still had its 16 MiB multipart body read, then refused); None from the lanes."""
    refused = await _outside_lanes(scope, services)
    if refused is None:
        return None
    # The route it was for, where the router would put it: the access event names it (and
    # the kiosk whose cookie was sent), as the route's own refusal did.
    for route in router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            scope.update(child)
            break
    return problem_for(refused)


router = APIRouter(
    prefix=KIOSK_PREFIX, include_in_schema=False, dependencies=[Depends(_from_lanes)]
)


def pairing_limits() -> TokenBuckets:
    """New pairing codes per network address: a few at once, then one every 10 seconds."""
    return TokenBuckets(rate=0.1, burst=5)


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        KIOSK_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.services.settings.console_secure_cookies,
        path=KIOSK_PREFIX,
    )


def _unaudited(request: Request) -> None:
    """Pairing polls and quality checks store nothing; each is not an audit event."""
    request.state.unaudited = True


async def _kiosk(request: Request, services: ServicesDep) -> KioskSession:
    session = await run_in_threadpool(services.kiosks.session, request.cookies.get(KIOSK_COOKIE))
    if session is None:
        raise AuthenticationError("this kiosk is not paired (or was revoked)")
    request.state.principal = session.principal
    if request.method == "POST" and not services.kiosks.csrf_valid(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise PermissionDeniedError("the request did not come from this kiosk's screen")
    limits: RequestLimits = request.app.state.limits
    wait = limits.gate.take(session.principal.key_id, time.monotonic())
    if wait > 0:
        raise RateLimitedError("this kiosk is sending too fast", wait)
    return session


KioskDep = Annotated[KioskSession, Depends(_kiosk)]


@router.get("")
def kiosk_page(request: Request, services: ServicesDep) -> HTMLResponse:
    session = services.kiosks.session(request.cookies.get(KIOSK_COOKIE))
    if session is None:
        request.state.unaudited = True  # the pairing screen, shown to anyone: no data
        return templates.TemplateResponse(request, "kiosk_pairing.html", {"texts": TEXTS})
    request.state.principal = session.principal
    notice = services.kiosks.notice()
    languages = [lang for lang in notice.languages if lang in TEXTS] or ["en"]
    return templates.TemplateResponse(
        request,
        "kiosk.html",
        {
            "session": session,
            "notice": notice,
            "languages": languages,
            "texts": {lang: TEXTS[lang] for lang in languages},
            "notices": {lang: notice.text(lang) for lang in languages},
            "lane_open": services.kiosks.lane_flight(session) is not None,
        },
    )


@router.post("/pairing", dependencies=[Depends(_unaudited)])
def start_pairing(request: Request, services: ServicesDep) -> JSONResponse:
    if request.headers.get("X-Requested-With") != "kiosk":
        raise PermissionDeniedError("pairing starts from the kiosk's screen")
    # (From the lanes' networks only when they are set: _from_lanes, which reported an
    # untrusted X-Forwarded-For already.)
    lanes = services.settings.kiosk_networks
    source = client_address_of(request.scope, services.settings.trusted_proxies, not lanes)
    wait = request.app.state.kiosk_pairing.take(source, time.monotonic())
    if wait > 0:
        raise RateLimitedError("too many pairing codes from this address", wait)
    ticket, code = services.kiosks.start_pairing(network_of(source))
    minutes = int(services.kiosks.settings.code_lifetime.total_seconds() // 60)
    response = JSONResponse({"code": f"{code[:4]}-{code[4:]}", "minutes": minutes})
    _set_cookie(request, response, ticket)
    return response


@router.get("/pairing", dependencies=[Depends(_unaudited)])
def pairing_status(request: Request, services: ServicesDep) -> JSONResponse:
    status = services.kiosks.pairing_status(request.cookies.get(KIOSK_COOKIE))
    if status is None:
        return JSONResponse({"state": "gone"})
    response = JSONResponse({"state": status.state.value})
    if status.session_token is not None:
        _set_cookie(request, response, status.session_token)
    return response


@router.post("/quality", dependencies=[Depends(_unaudited)])
async def check_quality(
    services: ServicesDep,
    session: KioskDep,
    frame: Annotated[UploadFile, File()],
    scale: Annotated[float, Form(ge=1.0, le=8.0)] = 1.0,
) -> JSONResponse:
    data = await frame.read(MAX_CHECK_FRAME_BYTES + 1)
    if len(data) > MAX_CHECK_FRAME_BYTES:
        raise InvalidInputError("a quality check takes a small preview frame (at most 256 KiB)")
    guidance = await run_in_threadpool(services.kiosks.check_frame, session, data, scale)
    return JSONResponse({"ready": guidance.ready, "advice": guidance.advice})


@router.post("/captures")
async def submit_capture(
    services: ServicesDep,
    session: KioskDep,
    frames: Annotated[list[UploadFile], File()],
    notice_version: Annotated[str, Form(max_length=64)],
    language: Annotated[str, Form(max_length=16)],
) -> JSONResponse:
    data = [await frame.read() for frame in frames]
    decision = await run_in_threadpool(
        services.kiosks.capture, session, data, notice_version, language
    )
    return JSONResponse({"message": decision.message.value, "reason": decision.reason})


@router.post("/opt-out-requests")
def request_opt_out(
    services: ServicesDep,
    session: KioskDep,
    notice_version: Annotated[str, Form(max_length=64)],
    language: Annotated[str, Form(max_length=16)],
) -> JSONResponse:
    try:
        services.kiosks.request_opt_out(session, notice_version, language)
    except RateLimitedError:
        KIOSK_OPT_OUTS_REFUSED.inc()
        raise
    return JSONResponse({"message": TravelerMessage.SEE_OFFICER.value, "reason": "opted_out"})
