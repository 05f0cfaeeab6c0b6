"""Over HTTP: a manifest upload that finds the manifest workers busy is a 503 problem with
Retry-After (documented for the operation), and the manifest in force does not change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.integration.api.conftest import Api, build_api, manifest_row
from tests.integration.api.test_errors_and_roles import assert_problem

pytestmark = [pytest.mark.models]


@pytest.fixture
def busy_api(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        manifest_workers=1,
        manifest_queue_seconds=0.05,
    )
    built, services = build_api(settings, engine)
    with built.client:
        yield built
    services.uow.engine.dispose()


def test_a_busy_pool_is_a_503_with_retry_after_and_changes_nothing(busy_api: Api) -> None:
    api = busy_api
    first, second = api.create_flight(), api.create_flight()
    url = f"/v1/flights/{second['id']}/manifest"
    assert api.client.put(url, json=[manifest_row("A1", "ONE")], headers=api.headers("officer"))
    big = [manifest_row(f"B{n:07d}", "MANY") for n in range(3000)]
    answers: list[httpx.Response] = []
    upload = threading.Thread(
        target=lambda: answers.append(
            api.client.put(
                f"/v1/flights/{first['id']}/manifest", json=big, headers=api.headers("officer")
            )
        )
    )
    upload.start()
    workers = api.services.manifest_workers
    assert workers is not None
    # Wait until the big upload holds the only worker (its first batches are written).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (workers.pids() and workers._idle.empty()):
        time.sleep(0.02)
    refused = api.client.put(
        url, json=[manifest_row("C3", "THREE")], headers=api.headers("officer")
    )
    upload.join()
    assert_problem(refused, 503, "worker-unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    assert answers[0].status_code == 200, answers[0].text
    current = api.client.get(url, headers=api.headers("officer")).json()
    assert [t["document"]["number"] for t in current] == ["A1"]
    documented = api.client.get("/openapi.json").json()["paths"]["/v1/flights/{flight_id}/manifest"]
    assert "Retry-After" in documented["put"]["responses"]["503"]["headers"]
