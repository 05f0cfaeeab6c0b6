"""The service as ``entryexit serve`` runs it: the API with the officer console at /console
and the travelers' self-service kiosk at /kiosk."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from entryexit.api.app import create_app
from entryexit.api.problems import problem_for
from entryexit.bootstrap import Services
from entryexit.errors import EntryExitError
from entryexit.web.console import (
    PREFIX,
    ConsoleHeaders,
    SignInRequiredError,
    error_page,
    router,
    static_files,
)
from entryexit.web.console_fingerprints import router as fingerprints_router
from entryexit.web.kiosk import KIOSK_PREFIX, pairing_limits
from entryexit.web.kiosk import router as kiosk_router


def create_service_app(services: Services, jobs: bool = True) -> FastAPI:
    app = create_app(services, jobs)
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
