"""A draining instance (SIGTERM received) is not ready, so a balancer stops sending it new
requests, but it still answers the requests it gets."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import Api

pytestmark = [pytest.mark.models]


def test_a_draining_instance_fails_readyz_and_still_answers(api: Api) -> None:
    assert api.client.get("/readyz").status_code == 200
    api.client.app.state.draining = True  # type: ignore[attr-defined]
    try:
        ready = api.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "draining": True}
        assert api.client.get("/healthz").status_code == 200
        assert api.create_flight()["carrier"] == "EE"
    finally:
        api.client.app.state.draining = False  # type: ignore[attr-defined]
