"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from entryexit.errors import (
    EntryExitError,
    RateLimitedError,
    WorkerUnavailableError,
    http_status,
)

logger = logging.getLogger(__name__)
PROBLEM_TYPE_BASE = "urn:entryexit:problem:"
MEDIA_TYPE = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if status == 401 else None
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_for(exc: EntryExitError) -> JSONResponse:
    mapped = http_status(exc)
    if mapped is None:
        logger.error("unmapped error %s", type(exc).__name__)
        return problem(500, "internal", "Internal error", "the request could not be processed")
    status, title = mapped
    response = problem(status, exc.code, title, exc.message)
    if isinstance(exc, RateLimitedError | WorkerUnavailableError):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(EntryExitError)
    async def _domain(_: Request, exc: EntryExitError) -> JSONResponse:
        return problem_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Field locations and messages only: never echo the submitted values back.
        errors = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return problem(
            422, "invalid-input", "Invalid input", "the request is invalid", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
            exc.status_code, "http-error"
        )
        return problem(exc.status_code, code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error: %s", type(exc).__name__)
        return problem(500, "internal", "Internal error", "the request could not be processed")
