"""Request dependencies: the wired services, and who is calling with what permission."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from entryexit.api.limits import REQUEST_COSTS, client_address_of
from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.bootstrap import Services
from entryexit.domain.access import CROSS_CARRIER_PERMISSIONS, Permission, Principal, Role
from entryexit.domain.model import Flight
from entryexit.domain.throttle import FailureLockout, TokenBuckets
from entryexit.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from entryexit.services.unit_of_work import UnitOfWork

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestLimits:
    gate: TokenBuckets
    sign_in: FailureLockout
    # Every other role's keys (per key; expensive endpoints cost more: REQUEST_COSTS).
    keys: TokenBuckets


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def services_dependency(request: Request) -> Services:
    # async: FastAPI runs a plain function dependency on its thread pool, a hand-off for
    # what is an attribute read.
    return get_services(request)


ServicesDep = Annotated[Services, Depends(services_dependency)]


def authorize(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """Authenticate the key, then check the route's permission in the one table."""
    return check_access(request, services, token)[0]


def _endpoint(request: Request) -> tuple[str, str]:
    """(method, route template) of the request, the key of the endpoint tables."""
    route = request.scope.get("route")
    return request.method, getattr(route, "path", request.url.path)


def _needed(request: Request) -> Permission | str | None:
    return ENDPOINT_PERMISSIONS.get(_endpoint(request))


def check_access(
    request: Request,
    services: Services,
    token: str | None,
    within: UnitOfWork | None = None,
    rate_taken_by: str | None = None,
) -> tuple[Principal, Flight | None]:
    """:func:`authorize`'s checks, reading in ``within`` (a read unit of work) when given;
    with the flight when the carrier check read it. ``rate_taken_by``: the key id whose
    rate token (gate or per-key) this request spent already (:meth:`PendingAccess.early`)."""
    needed = _needed(request)
    limits: RequestLimits = request.app.state.limits
    now = time.monotonic()
    if token is None:
        # Monitoring systems (Prometheus) send a key as a bearer token more easily.
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            token = credentials.strip()
    try:
        principal = services.keys.authenticate(token, within)
    except AuthenticationError:
        # Unauthenticated traffic is limited per client address; a valid key never is by
        # its address, so a noisy neighbour behind the same NAT cannot lock gates out.
        source = client_address_of(request.scope, services.settings.trusted_proxies)
        blocked = limits.sign_in.blocked_for(source, now)
        if blocked > 0:
            raise RateLimitedError(
                "too many failed sign-ins from this address; wait", blocked
            ) from None
        limits.sign_in.failure(source, now)
        logger.warning("failed API authentication")
        raise
    request.state.principal = principal  # for the audit record of this access
    if principal.role is Role.GATE:
        # A capture whose model started early spent its token then (PendingAccess.early).
        wait = limits.gate.take(principal.key_id, now) if principal.key_id != rate_taken_by else 0
        if wait > 0:
            raise RateLimitedError("this gate key is sending too fast", wait)
    else:
        wait = (
            limits.keys.take(principal.key_id, now, REQUEST_COSTS.get(_endpoint(request), 1))
            if principal.key_id != rate_taken_by
            else 0
        )
        if wait > 0:
            raise RateLimitedError("this key is sending too fast", wait)
    if needed is None or needed == PUBLIC or not isinstance(needed, Permission):
        raise PermissionDeniedError("this endpoint is not open to API keys")
    if not principal.can(needed):
        if principal.carrier is not None and needed in CROSS_CARRIER_PERMISSIONS:
            raise PermissionDeniedError(
                f"a key bound to a carrier may not do {needed.value}: it spans every carrier"
            )
        raise PermissionDeniedError(f"role {principal.role.value} may not do {needed.value}")
    flight_id = request.path_params.get("flight_id")
    if principal.carrier is not None and flight_id is not None:
        # A key bound to a carrier acts on that carrier's flights only, on every
        # flight-scoped endpoint (manifests name travelers; encounters say who boarded).
        return principal, services.flights.check_serves(principal, str(flight_id), within)
    return principal, None


CallerDep = Annotated[Principal, Depends(authorize)]


@dataclass(slots=True)
class PendingAccess:
    """A request whose key is checked later, by the worker thread that does the work, in
    the work's own read: the same checks as :func:`authorize`, without a thread hand-off
    and a transaction of their own (the capture path)."""

    request: Request
    services: Services
    token: str | None
    rate_taken_by: str | None = None

    def check(self, within: UnitOfWork | None = None) -> tuple[Principal, Flight | None]:
        return check_access(
            self.request, self.services, self.token, within, rate_taken_by=self.rate_taken_by
        )

    def early(self) -> Principal | None:
        """Who the caller is if its key's row is as this instance last read it (the secret
        checked against that row; no read), with the route's permission and its rate (the
        gate's bucket or the key's; the token spent here is not spent again by
        :meth:`check`). ``None`` when memory cannot say or a check refuses: :meth:`check`,
        which reads the row, always decides; this only lets work start sooner."""
        principal = self.services.keys.remembered(self.token)
        needed = _needed(self.request)
        if principal is None or not isinstance(needed, Permission) or not principal.can(needed):
            return None
        # The rate is charged here, to the gate's bucket or the key's: a key over its limit
        # never starts a model run (check() refuses it before any other work).
        limits: RequestLimits = self.request.app.state.limits
        now = time.monotonic()
        if principal.role is Role.GATE:
            wait = limits.gate.take(principal.key_id, now)
        else:
            cost = REQUEST_COSTS.get(_endpoint(self.request), 1)
            wait = limits.keys.take(principal.key_id, now, cost)
        if wait > 0:
            return None
        self.rate_taken_by = principal.key_id
        return principal


async def pending_access(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(api_key_header)],
) -> PendingAccess:
    return PendingAccess(request, services, token)


PendingAccessDep = Annotated[PendingAccess, Depends(pending_access)]
