"""The officer console at ``/console``: server-rendered pages over the same services as the
API, htmx (vendored) for live parts, no build step.

Security: people sign in with a username and password (argon2); the session cookie is
HttpOnly, SameSite=Strict and Secure; every form and htmx request carries the session's CSRF
token; every page is ``Cache-Control: no-store`` under a strict Content-Security-Policy
(no inline script or style, nothing from another origin); images are decrypted in memory and
sent only to roles allowed to see them.
"""

from __future__ import annotations

import secrets
import time
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.deps import RequestLimits, ServicesDep, get_services
from entryexit.api.limits import REQUEST_COSTS, client_address_of, route_path
from entryexit.bootstrap import Services
from entryexit.documents.identity import identify_document
from entryexit.domain.access import Permission
from entryexit.errors import (
    AuthenticationError,
    EntryExitError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    http_status,
)
from entryexit.services.console import Resolution
from entryexit.services.console_accounts import SignedIn
from entryexit.services.formats import overstay_csv
from entryexit.services.watchlist import Disposition

PREFIX = "/console"
# The pages people use (the officers' console, the travelers' kiosk): the same headers.
SCREEN_PREFIXES = (PREFIX, "/kiosk")
SESSION_COOKIE = "entryexit_session"
LOGIN_CSRF_COOKIE = "entryexit_login_csrf"
CSRF_HEADER = "X-CSRF-Token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_package = resources.files("entryexit.web")
templates = Jinja2Templates(directory=str(Path(str(_package.joinpath("templates")))))


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(Path(str(_package.joinpath("static")))))


class ConsoleHeaders:
    """Headers on everything under /console and /kiosk: no caching, strict CSP, no framing
    or sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        if scope["type"] != "http" or not path.startswith(SCREEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        # Only the kiosk's own page may ask for the camera; the console never does.
        camera = b"camera=(self)" if path.startswith("/kiosk") else b"camera=()"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"cache-control", b"no-store"),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"permissions-policy", camera + b", microphone=(), geolocation=()"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInRequiredError(Exception):
    """Raised by the session dependency; answered with a redirect to the sign-in page."""


async def _signed_in(request: Request, services: ServicesDep) -> SignedIn:
    return await _resume(request, services, touch=True)


async def _signed_in_polling(request: Request, services: ServicesDep) -> SignedIn:
    """A page's automatic refresh: the session must be live, but the poll does not keep it
    alive, so an unattended console still signs out after the idle timeout."""
    return await _resume(request, services, touch=False)


async def _resume(request: Request, services: ServicesDep, touch: bool) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    signed_in = await run_in_threadpool(services.accounts.session, token, touch)
    if signed_in is None:
        raise SignInRequiredError
    request.state.principal = signed_in.principal  # the audit record names the officer
    if request.method == "POST":
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            form = await request.form()
            value = form.get("csrf_token")
            presented = value if isinstance(value, str) else None
        if not services.accounts.csrf_valid(signed_in, presented):
            raise PermissionDeniedError("the form has expired or did not come from this console")
    return signed_in


SessionDep = Annotated[SignedIn, Depends(_signed_in)]
PollingSessionDep = Annotated[SignedIn, Depends(_signed_in_polling)]


def _unaudited(request: Request) -> None:
    """Polls that carry no personal data, and the sign-in page, are not each an audit event."""
    request.state.unaudited = True


def _page(
    request: Request, template: str, signed_in: SignedIn | None, status: int = 200, **context: Any
) -> HTMLResponse:
    principal = signed_in.principal if signed_in else None
    return templates.TemplateResponse(
        request,
        template,
        {
            "principal": principal,
            "csrf_token": signed_in.csrf_token if signed_in else "",
            "can": (lambda p: principal is not None and principal.can(Permission(p))),
            "now": get_services(request).clock(),
            **context,
        },
        status_code=status,
    )


def _image(data: bytes) -> Response:
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=kind, headers={"Content-Disposition": "inline"})


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login", dependencies=[Depends(_unaudited)])
def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.services.settings.console_secure_cookies,
        path=PREFIX,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    login_csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, login_csrf):
        return RedirectResponse(f"{PREFIX}/login?error=expired", status_code=303)
    try:
        token, signed_in = await run_in_threadpool(
            services.accounts.sign_in,
            username.strip().lower(),
            password,
            client_address_of(request.scope, services.settings.trusted_proxies),
        )
    except AuthenticationError:
        return RedirectResponse(f"{PREFIX}/login?error=failed", status_code=303)
    except RateLimitedError:
        return RedirectResponse(f"{PREFIX}/login?error=busy", status_code=303)
    request.state.principal = signed_in.principal
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=services.settings.console_secure_cookies,
        path=PREFIX,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def logout(services: ServicesDep, signed_in: SessionDep) -> Response:
    services.accounts.sign_out(signed_in)
    response = RedirectResponse(f"{PREFIX}/login?error=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _board_start(services: Services) -> datetime:
    """The board shows the last 12 hours' departures and the next day's: a rolling window, so
    late in the evening the night's flights are on it (a calendar day's board lost them)."""
    return services.clock() - timedelta(hours=12)


@router.get("/")
def board(request: Request, services: ServicesDep, signed_in: SessionDep) -> HTMLResponse:
    rows = services.console.board(signed_in.principal, _board_start(services))
    return _page(request, "board.html", signed_in, rows=rows)


@router.get("/board/rows", dependencies=[Depends(_unaudited)])
def board_rows(
    request: Request, services: ServicesDep, signed_in: PollingSessionDep
) -> HTMLResponse:
    rows = services.console.board(signed_in.principal, _board_start(services))
    return _page(request, "board_rows.html", signed_in, rows=rows)


@router.get("/flights/{flight_id}")
def flight_page(
    request: Request, flight_id: str, services: ServicesDep, signed_in: SessionDep
) -> HTMLResponse:
    flight, manifest = services.console.flight(signed_in.principal, flight_id)
    feed = services.console.feed(signed_in.principal, flight_id)
    return _page(request, "flight.html", signed_in, flight=flight, manifest=manifest, feed=feed)


@router.get("/flights/{flight_id}/feed", dependencies=[Depends(_unaudited)])
def flight_feed(
    request: Request, flight_id: str, services: ServicesDep, signed_in: PollingSessionDep
) -> HTMLResponse:
    feed = services.console.feed(signed_in.principal, flight_id)
    return _page(request, "feed.html", signed_in, feed=feed)


@router.post("/flights/{flight_id}/stage")
def stage(flight_id: str, services: ServicesDep, signed_in: SessionDep) -> Response:
    services.console.stage(signed_in.principal, flight_id)
    return RedirectResponse(f"{PREFIX}/flights/{flight_id}?staged=1", status_code=303)


@router.post("/flights/{flight_id}/opt-outs")
def opt_out(
    flight_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    traveler_id: Annotated[str, Form(max_length=36)],
) -> Response:
    services.console.record_opt_out(signed_in.principal, flight_id, traveler_id)
    return RedirectResponse(f"{PREFIX}/flights/{flight_id}?opted-out=1", status_code=303)


@router.get("/queue")
def queue(request: Request, services: ServicesDep, signed_in: SessionDep) -> HTMLResponse:
    cases = services.console.open_cases(signed_in.principal)
    marked = services.console.prints_possible(signed_in.principal, cases)
    return _page(request, "queue.html", signed_in, cases=cases, prints_possible=marked)


@router.get("/cases/{capture_id}")
def case_page(
    request: Request, capture_id: str, services: ServicesDep, signed_in: SessionDep
) -> HTMLResponse:
    from entryexit.web.console_fingerprints import kept_prints  # it builds on this module

    case = services.console.case(signed_in.principal, capture_id)
    _, manifest = services.console.flight(signed_in.principal, case.flight.id)
    drawings = kept_prints(services, signed_in, capture_id)
    return _page(
        request, "case.html", signed_in, case=case, manifest=manifest, kept_prints=drawings
    )


@router.post("/cases/{capture_id}/resolve")
def resolve_case(
    capture_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    resolution: Annotated[str, Form(max_length=16)],
    traveler_id: Annotated[str | None, Form(max_length=36)] = None,
) -> Response:
    try:
        chosen = Resolution(resolution)
    except ValueError:
        raise InvalidInputError("resolution is confirmed, rejected or opted_out") from None
    services.console.resolve(signed_in.principal, capture_id, chosen, traveler_id or None)
    return RedirectResponse(f"{PREFIX}/queue?resolved={chosen.value}", status_code=303)


@router.get("/images/captures/{capture_id}")
def capture_image(capture_id: str, services: ServicesDep, signed_in: SessionDep) -> Response:
    return _image(services.console.capture_image(signed_in.principal, capture_id))


@router.get("/images/travelers/{traveler_id}")
def reference_image(
    traveler_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    case: Annotated[str | None, Query(max_length=36)] = None,
    alert: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    """A traveler's enrolled photo, for the case or alert that names them (403 otherwise)."""
    return _image(
        services.console.reference_photo(signed_in.principal, traveler_id, case=case, alert=alert)
    )


@router.get("/alerts")
def alerts_page(request: Request, services: ServicesDep, signed_in: SessionDep) -> HTMLResponse:
    open_alerts = services.watchlist.alerts(signed_in.principal, "open")
    return _page(
        request,
        "alerts.html",
        signed_in,
        alerts=open_alerts,
        dispositions=[d.value for d in Disposition],
        failed_crossings=services.crossings.failed_crossings(signed_in.principal),
    )


@router.post("/alerts/crossings/{work_id}/retry")
def retry_failed_crossing(work_id: str, services: ServicesDep, signed_in: SessionDep) -> Response:
    services.crossings.retry_failed(signed_in.principal, work_id)
    return RedirectResponse(f"{PREFIX}/alerts?retried=1", status_code=303)


@router.post("/alerts/{alert_id}/disposition")
def disposition_alert(
    alert_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    disposition: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        chosen = Disposition(disposition)
    except ValueError:
        raise InvalidInputError("choose a disposition") from None
    services.watchlist.disposition(signed_in.principal, alert_id, chosen, reason)
    return RedirectResponse(f"{PREFIX}/alerts?done={chosen.value}", status_code=303)


@router.get("/overstays")
def overstays_page(
    request: Request,
    services: ServicesDep,
    signed_in: SessionDep,
    as_of: date | None = None,
) -> HTMLResponse:
    day = as_of or services.clock().date()
    report = services.crossings.overstays(signed_in.principal, day)
    return _page(request, "overstays.html", signed_in, report=report, as_of=day)


@router.get("/overstays.csv")
def overstays_csv(services: ServicesDep, signed_in: SessionDep, as_of: date) -> Response:
    report = services.crossings.overstays(signed_in.principal, as_of)
    return Response(
        overstay_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="overstays-{as_of}.csv"'},
    )


@router.get("/travelers/{traveler_id}")
def traveler_page(
    request: Request, traveler_id: str, services: ServicesDep, signed_in: SessionDep
) -> HTMLResponse:
    crossings = services.crossings.crossings(signed_in.principal, traveler_id)
    return _page(request, "traveler.html", signed_in, crossings=crossings)


@router.post("/admissions/{admission_id}")
def update_admission(
    admission_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    traveler_id: Annotated[str, Form(max_length=36)],
    admission_class: Annotated[str, Form(max_length=16)],
    admitted_until: Annotated[date | None, Form()] = None,
) -> Response:
    services.crossings.update_admission(
        signed_in.principal, admission_id, admission_class, admitted_until
    )
    return RedirectResponse(f"{PREFIX}/travelers/{traveler_id}?updated=1", status_code=303)


@router.get("/oversight")
def oversight(request: Request, services: ServicesDep, signed_in: SessionDep) -> HTMLResponse:
    principal = signed_in.principal
    if not principal.can(Permission.AUDIT_READ):
        raise PermissionDeniedError("the audit trail is for auditors, supervisors and admins")
    # The page walks the log as GET /v1/audit/verification does, at its cost (review L10).
    limits: RequestLimits = request.app.state.limits
    cost = REQUEST_COSTS[("GET", "/v1/audit/verification")]
    wait = limits.keys.take(principal.key_id, time.monotonic(), cost)
    if wait > 0:
        raise RateLimitedError("the audit check was asked for too often; try again shortly", wait)
    verification = services.checkpoints.verify_recent()
    chain = verification.chain
    head = services.audit.head()
    events = services.audit.events(after_sequence=max(0, (head[0] if head else 0) - 30))
    report = (
        services.privacy.report(services.clock() - timedelta(days=1))
        if principal.can(Permission.PRIVACY_REPORT)
        else None
    )
    policy = services.policies.in_force()
    return _page(
        request,
        "oversight.html",
        signed_in,
        chain=chain,
        checkpoints=verification.checkpoints,
        events=events,
        report=report,
        policy=policy,
    )


def _may_erase(signed_in: SignedIn) -> None:
    if not signed_in.principal.can(Permission.TRAVELER_ERASE):
        raise PermissionDeniedError("erasing a traveler is for supervisors and admins")


@router.get("/erasure")
def erasure_page(request: Request, signed_in: SessionDep) -> HTMLResponse:
    _may_erase(signed_in)
    return _page(request, "erasure.html", signed_in, report=None)


@router.post("/erasure")
def erase_traveler(
    request: Request,
    services: ServicesDep,
    signed_in: SessionDep,
    issuing_state: Annotated[str, Form(max_length=3)],
    number: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=32)],
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> HTMLResponse:
    _may_erase(signed_in)
    if confirm != "yes":
        raise InvalidInputError("confirm that the erasure cannot be undone")
    document, _ = identify_document(None, issuing_state, number, services.clock().date())
    if document is None:
        raise InvalidInputError("give the issuing state and the document number")
    report = services.erasure.erase(signed_in.principal, document, reason)
    return _page(request, "erasure.html", signed_in, report=report)


# Kiosk requests drawn on the Kiosks page (newest first); the rest are counted.
KIOSK_REQUESTS_SHOWN = 50


@router.get("/kiosks")
def kiosks_page(request: Request, services: ServicesDep, signed_in: SessionDep) -> HTMLResponse:
    principal = signed_in.principal
    manages = principal.can(Permission.KIOSK_MANAGE)
    if not manages and not principal.can(Permission.KIOSK_REQUESTS):
        raise PermissionDeniedError("kiosks are paired by supervisors and admins")
    requests, waiting = (
        services.kiosks.pending_opt_out_requests(principal, KIOSK_REQUESTS_SHOWN)
        if principal.can(Permission.KIOSK_REQUESTS)
        else ([], 0)
    )
    rows = (
        services.console.board(principal, _board_start(services))
        if principal.can(Permission.FLIGHT_READ)
        else []
    )
    flights = [row.flight for row in rows]
    names = {f.id: f"{f.carrier} {f.number}" for f in flights}
    return _page(
        request,
        "kiosks.html",
        signed_in,
        requests=requests,
        more_requests=waiting - len(requests),
        flights=flights,
        flight_names=names,
        devices=services.kiosks.devices(principal) if manages else [],
        assignments=services.kiosks.lane_assignments(principal) if manages else [],
        lane_warnings=services.kiosks.lane_warnings(principal) if manages else [],
    )


@router.post("/kiosks/pair")
def pair_kiosk(
    services: ServicesDep,
    signed_in: SessionDep,
    code: Annotated[str, Form(max_length=16)],
    carrier: Annotated[str, Form(max_length=3)],
    port: Annotated[str, Form(max_length=5)],
    lane: Annotated[str, Form(max_length=16)],
    flight_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    device = services.kiosks.pair(signed_in.principal, code, carrier, port, lane)
    if flight_id:
        port, lane = device.port or port, device.lane or lane
        services.kiosks.assign_lane(signed_in.principal, port, lane, flight_id)
    return RedirectResponse(f"{PREFIX}/kiosks?done=paired", status_code=303)


@router.post("/kiosks/{device_id}/revoke")
def revoke_kiosk(device_id: str, services: ServicesDep, signed_in: SessionDep) -> Response:
    services.kiosks.revoke(signed_in.principal, device_id)
    return RedirectResponse(f"{PREFIX}/kiosks?done=revoked", status_code=303)


@router.post("/lanes")
def assign_lane(
    services: ServicesDep,
    signed_in: SessionDep,
    port: Annotated[str, Form(max_length=5)],
    lane: Annotated[str, Form(max_length=16)],
    flight_id: Annotated[str, Form(max_length=36)],
) -> Response:
    services.kiosks.assign_lane(signed_in.principal, port, lane, flight_id)
    return RedirectResponse(f"{PREFIX}/kiosks?done=assigned", status_code=303)


@router.post("/kiosk-requests/{request_id}/handled")
def handle_kiosk_request(request_id: str, services: ServicesDep, signed_in: SessionDep) -> Response:
    services.kiosks.handle_opt_out_request(signed_in.principal, request_id)
    return RedirectResponse(f"{PREFIX}/kiosks?done=handled", status_code=303)


def error_page(request: Request, exc: EntryExitError | SignInRequiredError) -> Response:
    """Console errors are pages (or an htmx redirect), never JSON problem documents."""
    if isinstance(exc, SignInRequiredError):
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
        return RedirectResponse(f"{PREFIX}/login", status_code=303)
    status, title = http_status(exc) or (500, "Internal error")
    message = exc.message if status < 500 else "the request could not be processed"
    return _page(request, "error.html", None, status=status, title=title, message=message)
