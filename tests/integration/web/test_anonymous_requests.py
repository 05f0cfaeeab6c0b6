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
from entryexit.domain.access import Role
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


def test_forged_session_cookies_are_audited_like_bad_keys(service: Api) -> None:
    # A forged, stolen or expired console or kiosk session is someone trying to get in.
    before = events(service)
    for name in ("entryexit_session", "entryexit_kiosk"):
        service.client.cookies.clear()
        service.client.cookies.set(name, "forged-session-token")
        page = "/console/" if name == "entryexit_session" else "/kiosk/opt-out-requests"
        service.client.get(page, follow_redirects=False)
    service.client.cookies.clear()
    assert events(service) == before + 2


def test_junk_keys_first_do_not_push_a_real_keys_failure_out_of_the_log(service: Api) -> None:
    principal, real = service.services.keys.create(Role.OFFICER, "desk")
    service.services.keys.revoke(principal.key_id)
    for i in range(40):  # past the audited budget of this address
        service.client.get("/v1/flights/x", headers={"X-API-Key": f"eex_junk{i}_secret"})
    before = events(service)
    refused = service.client.get("/v1/flights/x", headers={"X-API-Key": real})
    assert refused.status_code in (401, 429)  # the address is blocked by now, too
    assert events(service) == before + 1
