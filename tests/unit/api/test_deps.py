"""The services dependency every route takes runs on the event loop: a plain function would
be sent to FastAPI's thread pool and back on every request (issue 17's capture profile)."""

from __future__ import annotations

import threading
from typing import get_args

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entryexit.api import deps
from entryexit.api.deps import ServicesDep


def test_the_services_dependency_is_answered_on_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, int] = {}
    original = deps.get_services

    app = FastAPI()
    app.state.services = object()

    @app.get("/probe")
    async def probe(services: ServicesDep) -> dict[str, bool]:
        threads["route"] = threading.get_ident()
        return {"same": threads["route"] == threads["dependency"]}

    def recording_get_services(request: object) -> object:
        threads["dependency"] = threading.get_ident()
        return original(request)  # type: ignore[arg-type]

    monkeypatch.setattr(deps, "get_services", recording_get_services)
    with TestClient(app) as client:
        assert client.get("/probe").json() == {"same": True}
    dependency = get_args(ServicesDep)[1].dependency
    assert dependency is deps.services_dependency
