"""A request the body guard refuses (413 too large, 408 too slow) is still an access event:
refusing a body must not be a way to reach the service unrecorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.integration.api.conftest import Api, build_api

pytestmark = [pytest.mark.models]
LIMIT = 4096


@pytest.fixture
def small(engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    built, services = build_api(
        Settings(data_dir=tmp_path / "data", max_request_bytes=LIMIT), engine
    )
    with built.client:
        yield built
    services.uow.engine.dispose()


def access_events(api: Api, action: str) -> list[dict[str, Any]]:
    events = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor")).json()
    return [e for e in events if e["action"] == action]


def chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 1024):
        yield b"x" * 1024


def test_a_declared_oversized_body_is_refused_and_recorded(small: Api) -> None:
    refused = small.client.post(
        "/v1/flights",
        content=b"{" + b" " * (2 * LIMIT) + b"}",
        headers={**small.headers("officer"), "Content-Type": "application/json"},
    )
    assert refused.status_code == 413
    [event] = access_events(small, "POST /v1/flights")
    assert event["outcome"] == "rejected"
    assert event["details"]["status"] == 413
    assert event["actor_role"] == "officer"  # the key that sent it, though never authorised


def test_a_streamed_oversized_body_is_refused_and_recorded(small: Api) -> None:
    flight = small.create_flight()
    refused = small.client.post(
        f"/v1/flights/{flight['id']}/captures",
        content=chunks(8 * LIMIT),  # chunked: no declared length, refused while reading
        headers={**small.headers("gate"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert refused.status_code == 413
    [event] = access_events(small, "POST /v1/flights/{flight_id}/captures")
    assert event["outcome"] == "rejected"
    assert event["details"]["status"] == 413
    assert event["resource_id"] == flight["id"]
    assert event["actor_role"] == "gate"
