"""The service as ``entryexit serve`` runs it: the API with the officer console at /console
and the travelers' self-service kiosk at /kiosk."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import Scope

from entryexit.api.app import create_app
from entryexit.api.keyless import SessionArea
from entryexit.api.problems import problem_for
from entryexit.bootstrap import Services
from entryexit.errors import AuthenticationError, EntryExitError
from entryexit.web.console import (
    PREFIX,
    SESSION_COOKIE,
    ConsoleHeaders,
    SignInRequiredError,
    error_page,
    router,
    static_files,
)
from entryexit.web.console_fingerprints import router as fingerprints_router
from entryexit.web.kiosk import (
    KIOSK_COOKIE,
    KIOSK_PREFIX,
    pairing_limits,
    refused_outside_lanes,
)
from entryexit.web.kiosk import router as kiosk_router

# The most body a form taken without a session may have: the sign-in form is a few hundred
# bytes (a username, a password of at most a few hundred characters, a CSRF token); pairing
# starts with an empty POST.
SIGN_IN_FORM_BYTES = 16 * 1024
PAIRING_FORM_BYTES = 4 * 1024


def _sign_in_again(scope: Scope) -> Response:
    # What the console's session dependency answers (error_page): the sign-in page.
    headers = dict(scope.get("headers") or [])
    if headers.get(b"hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
    return RedirectResponse(f"{PREFIX}/login", status_code=303)


def _not_paired(scope: Scope) -> Response:
    return problem_for(AuthenticationError("this kiosk is not paired (or was revoked)"))


def session_areas() -> tuple[SessionArea, ...]:
    """The console's and the kiosk's forms, refused to clients without a live session before
    their body is read (api/keyless.py, ``AnonymousFormGuard``)."""
    return (
        SessionArea(
            prefix=PREFIX,
            cookie=SESSION_COOKIE,
            live=lambda services, token: services.accounts.session(token, touch=False) is not None,
            refusal=_sign_in_again,
            open_forms={f"{PREFIX}/login": SIGN_IN_FORM_BYTES},
        ),
        SessionArea(
            prefix=KIOSK_PREFIX,
            cookie=KIOSK_COOKIE,
            live=lambda services, token: services.kiosks.session(token) is not None,
            refusal=_not_paired,
            open_forms={f"{KIOSK_PREFIX}/pairing": PAIRING_FORM_BYTES},
            refused_early=refused_outside_lanes,
        ),
    )


def open_form_paths() -> frozenset[bytes]:
    """The forms anyone may post without a session (sign-in, pairing): the connection guard
    counts their requests anonymous whatever cookie they carry (cli/connections.py)."""
    return frozenset(path.encode() for area in session_areas() for path in area.open_forms)


def create_service_app(services: Services, jobs: bool = True) -> FastAPI:
    app = create_app(services, jobs)
    app.state.session_areas = session_areas()
    app.mount(f"{PREFIX}/static", static_files(), name="console-static")
    app.include_router(router)
    app.include_router(fingerprints_router)
    app.mount(f"{KIOSK_PREFIX}/static", static_files(), name="kiosk-static")
    app.include_router(kiosk_router)
    app.state.kiosk_pairing = pairing_limits()

    @app.exception_handler(EntryExitError)
    async def _errors(request: Request, exc: EntryExitError) -> Response:
        if request.url.path.startswith(PREFIX):
            return error_page(request, exc)
        return problem_for(exc)

    @app.exception_handler(SignInRequiredError)
    async def _sign_in(request: Request, exc: SignInRequiredError) -> Response:
        return error_page(request, exc)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.add_middleware(ConsoleHeaders)
    return app
