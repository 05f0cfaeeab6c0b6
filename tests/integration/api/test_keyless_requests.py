"""A caller without a key is answered from its headers: the body it sends is never read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message

from tests.integration.api.conftest import Api


def send_headers_only(
    api: Api, path: str, headers: dict[str, str], timeout: float = 20, root_path: str = ""
) -> tuple[int, bool]:
    """Call the app with a 15 MiB body declared that never comes: the status, and whether the
    app asked for the body at all."""
    app = api.client.app
    asked = False
    answered: list[int] = []

    async def receive() -> Message:
        nonlocal asked
        asked = True
        await asyncio.sleep(3600)  # the attacker's body: it never arrives
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", str(15 * 1024 * 1024).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("203.0.113.9", 50000),
        "server": ("testserver", 80),
        "app": app,
        "state": {},
    }

    async def call() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=timeout)

    asyncio.run(call())
    return answered[0], asked


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic x"},
        # Well formed, but made up: no such key is stored.
        {"X-API-Key": "eex_0123456789abcdef_madeupsecret"},
    ],
)
def test_no_key_or_a_malformed_one_is_refused_without_reading_the_body(
    api: Api, headers: dict[str, str]
) -> None:
    flight = api.create_flight()
    status, asked = send_headers_only(api, f"/v1/flights/{flight['id']}/captures", headers)
    assert (status, asked) == (401, False)


def test_a_blocked_address_is_answered_429_without_reading_the_body(api: Api) -> None:
    flight = api.create_flight()
    path = f"/v1/flights/{flight['id']}/captures"
    failures = api.services.settings.sign_in_failures_before_block
    statuses = [send_headers_only(api, path, {})[0] for _ in range(failures + 1)]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    assert send_headers_only(api, path, {})[1] is False


def test_a_real_key_goes_on_and_a_revoked_one_is_refused(api: Api) -> None:
    flight = api.create_flight()
    path = f"/v1/flights/{flight['id']}/captures"
    # A real gate key: the guard lets the request on to read its body (here it never comes,
    # so the call times out waiting: the body was asked for).
    with pytest.raises(TimeoutError):
        send_headers_only(api, path, api.headers("gate"), timeout=2)
    other_gate = api.services.keys.authenticate(api.keys["gate_other_carrier"])
    api.services.keys.revoke(other_gate.key_id)
    assert send_headers_only(api, path, api.headers("gate_other_carrier")) == (401, False)


def test_the_guard_applies_under_a_root_path(api: Api) -> None:
    """Mounted under a prefix (uvicorn --root-path, a proxy's mount), the request's path
    carries it: the guard matches the route path below it, so the body is still never read."""
    flight = api.create_flight()
    path = f"/v1/flights/{flight['id']}/captures"
    assert send_headers_only(api, path, {}, root_path="/entry-exit") == (401, False)
