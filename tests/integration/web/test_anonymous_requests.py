"""Log flooding (probe F9): requests by nobody are counted, not each an audit event.

Before, every anonymous request (the sign-in page, the kiosk's pairing screen, a keyless API
call) wrote a permanent, HMAC-chained audit row: anyone reaching the port could write ~25 a
second. A presented credential that fails is still audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from entryexit.api.audit import UNAUDITED_ANONYMOUS
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.integration.api.conftest import Api
from tests.integration.web.test_kiosk import site

pytestmark = [pytest.mark.models]


@pytest.fixture
def service(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    built = site(Settings(data_dir=tmp_path / "data", database_url=database_url), engine)
    with built.client:
        yield built
    built.services.uow.engine.dispose()


def events(api: Api) -> int:
    with api.services.uow.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one())


def anonymous_count() -> float:
    return sum(
        sample.value
        for metric in UNAUDITED_ANONYMOUS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def test_fifty_anonymous_gets_add_no_audit_event_but_are_counted(service: Api) -> None:
    client = service.client
    client.get("/console/login")  # warm-up: whatever a first request records
    before, counted = events(service), anonymous_count()
    paths = [
        "/console/login",
        "/kiosk",
        "/v1/flights/x",
        "/console/",
        "/console/static/console.css",
    ]
    for i in range(50):
        client.cookies.clear()
        response = client.get(paths[i % len(paths)], follow_redirects=False)
        assert response.status_code in (200, 303, 401, 404), (paths[i % len(paths)], response)
    assert events(service) == before
    # Not lost: counted (the static files are not requests for anything, not counted).
    assert anonymous_count() - counted == 40


def test_bad_api_keys_still_add_failure_events(service: Api) -> None:
    before = events(service)
    for i in range(5):
        response = service.client.get("/v1/flights/x", headers={"X-API-Key": f"ee_bad{i}"})
        assert response.status_code == 401
    bearer = service.client.get("/v1/flights/x", headers={"Authorization": "Bearer ee_nope"})
    assert bearer.status_code == 401
    assert events(service) == before + 6
    with service.services.uow.engine.connect() as connection:
        outcomes = connection.execute(
            text("SELECT outcome FROM audit_events ORDER BY sequence DESC LIMIT 6")
        ).scalars()
        assert set(outcomes) == {"denied"}
