from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from entryexit.api.deps import ServicesDep
from entryexit.errors import StorageUnavailableError, StoredDataUntrustedError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep, request: Request) -> JSONResponse:
    """The database answers and can write, the models are loaded, the policy in force passes
    its integrity check, and the audit log can be extended (its head verifies): readiness
    recovers by itself once each of them does. A stopping instance is not ready (SIGTERM with
    a drain: the balancer moves traffic away while requests are still answered)."""
    if getattr(request.app.state, "draining", False):
        return JSONResponse({"status": "unavailable", "draining": True}, status_code=503)
    try:
        services.uow.ping()
    except Exception:  # any failure of the database means "not ready"
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    try:
        services.uow.probe_write(services.clock())
    except StorageUnavailableError:
        return JSONResponse({"status": "unavailable", "database": "cannot write"}, status_code=503)
    try:
        services.policies.in_force()
    except StoredDataUntrustedError:
        return JSONResponse({"status": "unavailable", "policy": "untrusted"}, status_code=503)
    problem = services.audit.integrity_problem()
    if problem is not None:
        return JSONResponse(
            {"status": "unavailable", "audit_log": "untrusted", "reason": problem},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "model": services.engine.model, "audit_log": "ok"})
