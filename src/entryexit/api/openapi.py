"""Every status code and content type an operation can answer, in the OpenAPI document.

Derived per operation from what the operation is (public or keyed, with a body, with path
parameters) and from the permissions table, so a new endpoint is documented by the same rules
(schemathesis checks the document against the live answers in the test suite).
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute, APIRouter

from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.api.problems import MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_WHY = {
    400: "A page cursor ('after') this list did not hand out",
    401: "No API key, or an unknown or revoked one",
    403: "The key's role may not do this (or a gate key reaches for another carrier)",
    404: "A resource named in the request does not exist",
    408: "The request body did not arrive in time",
    409: "The request conflicts with the resource's state",
    413: "The request body (or an image in it) is too large",
    422: "The request is invalid",
    429: "Too many requests (gate key rate, or failed sign-ins from this address)",
    503: "A dependency (the database) is not available",
}
# Operations that name a resource in their body, form or query rather than their path (the
# overstay report needs the policy in force on ``as_of``).
_REFERS_IN_BODY = {("POST", "/v1/verifications"), ("GET", "/v1/reports/overstays")}
# Lists read in keyset pages: a cursor (``after``) they did not hand out is a 400.
_CURSORED = {("GET", "/v1/manifest-conflicts")}
# Operations that answer 503 when the database is not reachable (documented state).
_DEPENDENCY = {("GET", "/readyz")}
# Operations handed to a bounded pool of worker processes: 503 with Retry-After when every
# worker is busy, or the one given the work died or ran out of time (nothing changed).
_WORKERS_BUSY = (
    "The manifest workers are all busy, or the one processing this manifest stopped or ran"
    " out of time: nothing was changed; send it again after Retry-After seconds"
)
# Operations that read or compare prints in the bounded fingerprint slots (503 with
# Retry-After when every slot stayed busy for the wait allowed).
_SLOTS_BUSY = (
    "Every fingerprint slot stayed busy (prints being read or compared for other requests):"
    " nothing was changed; send it again after Retry-After seconds"
)
_WORKERS = {
    ("PUT", "/v1/flights/{flight_id}/manifest"): _WORKERS_BUSY,
    ("POST", "/v1/documents/fingerprints"): _SLOTS_BUSY,
    ("POST", "/v1/fingerprint-verifications"): _SLOTS_BUSY,
    ("POST", "/v1/flights/{flight_id}/fingerprint-searches"): _SLOTS_BUSY,
    ("POST", "/v1/watchlist/fingerprints"): _SLOTS_BUSY,
}


def _problem(status: int) -> dict[str, Any]:
    if status == 503:  # readiness answers in its own shape, not a problem
        return {"description": _WHY[status], "content": {"application/json": {}}}
    return {"description": _WHY[status], "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}


def _workers_busy(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }


def statuses(method: str, path: str, route: APIRoute) -> list[int]:
    """The error statuses ``method path`` can answer."""
    codes: set[int] = set()
    keyed = ENDPOINT_PERMISSIONS.get((method, path), None) != PUBLIC
    if keyed:
        codes |= {401, 403, 429}
    has_body = method in ("POST", "PUT", "PATCH")
    if has_body:
        codes |= {408, 413, 422}
        if keyed:
            codes.add(409)  # a state conflict, or a writer race lost every retry
    if route.dependant.path_params or (method, path) in _REFERS_IN_BODY:
        codes |= {404, 422}
    if route.dependant.query_params:
        codes.add(422)
    if (method, path) in _CURSORED:
        codes.add(400)
    if (method, path) in _DEPENDENCY:
        codes.add(503)
    return sorted(codes)


def document_responses(router: APIRouter) -> APIRouter:
    """Add the problem responses to every operation of ``router`` (before it is included)."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            for status in statuses(method, route.path, route):
                route.responses.setdefault(status, _problem(status))
            busy = _WORKERS.get((method, route.path))
            if busy is not None:
                route.responses.setdefault(503, _workers_busy(busy))
    return router
