"""Request dependencies: the wired services, and who is calling with what permission."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.bootstrap import Services
from entryexit.domain.access import Permission, Principal
from entryexit.errors import PermissionDeniedError

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def authorize(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """Authenticate the key, then check the route's permission in the one table."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    needed = ENDPOINT_PERMISSIONS.get((request.method, path))
    principal = services.keys.authenticate(token)
    request.state.principal = principal  # for the audit record of this access
    if needed is None or needed == PUBLIC or not isinstance(needed, Permission):
        raise PermissionDeniedError("this endpoint is not open to API keys")
    if not principal.can(needed):
        raise PermissionDeniedError(f"role {principal.role.value} may not do {needed.value}")
    return principal


CallerDep = Annotated[Principal, Depends(authorize)]
