"""The capture path checks its caller in the worker thread that does the capture, in the
capture's one read: as strictly as every other endpoint, and never from a stale copy.
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, text

from entryexit.adapters.storage.database import READ_ONLY_TRANSACTION
from entryexit.biometrics.engine import FaceAnalysis, FaceEngine
from entryexit.config import Settings
from entryexit.domain.throttle import TokenBuckets
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, build_api, capture, staged_flight

pytestmark = [pytest.mark.models]


def post_capture(
    client: TestClient, flight_id: str, headers: dict[str, str], form: bool = True
) -> int:
    status: int = client.post(
        f"/v1/flights/{flight_id}/captures",
        files={"photo": ("c.jpg", b"not looked at", "image/jpeg")} if form else None,
        data={"gate": "G1", "device": "cam"} if form else None,
        headers=headers,
    ).status_code
    return status


def key_id(api: Api, name: str) -> str:
    with api.services.uow.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT id FROM api_keys WHERE name = :name"), {"name": name}
            ).scalar_one()
        )


def test_a_key_revoked_anywhere_is_refused_by_the_next_capture_everywhere(
    two_instances: tuple[Api, TestClient],
) -> None:
    first, second = two_instances
    flight = first.create_flight()  # not staged: a capture the key passes is a 409
    gate = first.headers("gate")
    assert post_capture(first.client, flight["id"], gate) == 409
    assert post_capture(second, flight["id"], gate) == 409
    first.services.keys.revoke(key_id(first, "gate EE"))
    assert post_capture(first.client, flight["id"], gate) == 401  # this instance
    assert post_capture(second, flight["id"], gate) == 401  # and the other, at once


def test_the_key_is_checked_before_the_capture_form(api: Api) -> None:
    """A caller without a valid key, or with the wrong carrier's, learns nothing of the
    form; a valid caller is told which fields are missing."""
    flight = api.create_flight()
    for headers in ({}, {"X-API-Key": "eex_0123456789ab_wrong"}):
        assert post_capture(api.client, flight["id"], headers, form=False) == 401
        assert post_capture(api.client, flight["id"], headers) == 401
    other_carrier = api.headers("gate_other_carrier")
    assert post_capture(api.client, flight["id"], other_carrier, form=False) == 403
    assert post_capture(api.client, flight["id"], other_carrier) == 403
    assert post_capture(api.client, flight["id"], api.headers("auditor"), form=False) == 403
    missing = api.client.post(
        f"/v1/flights/{flight['id']}/captures",
        files={"photo": ("c.jpg", b"x", "image/jpeg")},
        data={"device": "cam"},
        headers=api.headers("gate"),
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["errors"] == [{"field": "body.gate", "message": "Field required"}]


@contextmanager
def read_transactions(engine: Engine) -> Iterator[list[object]]:
    begun: list[object] = []

    def count(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_TRANSACTION):
            begun.append(connection)

    event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", count)


def test_a_capture_reads_the_store_once_before_its_model_runs(api: Api) -> None:
    """The key, the flight (carrier check and gallery version) and the watchlist's
    generation come from one read transaction (there were four)."""
    flight = api.create_flight()
    assert post_capture(api.client, flight["id"], api.headers("gate")) == 409  # warm
    with read_transactions(api.services.uow.engine) as begun:
        assert post_capture(api.client, flight["id"], api.headers("gate")) == 409
    assert len(begun) == 1


@contextmanager
def read_threads(engine: Engine) -> Iterator[list[str]]:
    """The names of the threads that began a read transaction."""
    names: list[str] = []

    def record(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_TRANSACTION):
            names.append(threading.current_thread().name)

    event.listen(engine, "begin", record)
    try:
        yield names
    finally:
        event.remove(engine, "begin", record)


def revoke_by_sql(api: Api, name: str) -> None:
    with api.services.uow.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_keys SET revoked_at = :now WHERE name = :name"),
            {"now": datetime.now(UTC), "name": name},
        )


@pytest.mark.lfw
@pytest.mark.parametrize("revoke", ["service", "sql"])
def test_a_key_revoked_since_it_was_remembered_is_refused_though_its_model_started(
    api: Api, lfw_dir: Path, revoke: str
) -> None:
    """The attacker: a gate key revoked a moment ago (through the service, or by an edit of
    its row in the database, which no cache hears of) sends a real face to a staged flight.
    This instance remembers the key's row and lets the model start beside the capture's
    read; the read must still refuse it, and nothing may be recorded or answered."""
    flight_id, _ = staged_flight(api, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    photo = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
    first = capture(api, flight_id, photo)  # the key's row and the flight's carrier remembered
    assert first.status_code == 200, first.text
    with read_threads(api.services.uow.engine) as threads:
        again = capture(api, flight_id, photo)
    assert again.status_code == 200, again.text
    # The read ran on its own thread, beside the model: the path under test is taken.
    reads = [name for name in threads if name != "admissions"]  # the crossings' worker
    assert reads, threads
    assert all(name.startswith("capture-read") for name in reads), threads
    records = len(api.services.boards.recent_captures(flight_id, 100))
    events = sum(1 for _ in api.services.audit.all_events("capture"))
    if revoke == "service":
        api.services.keys.revoke(key_id(api, "gate EE"))
    else:
        revoke_by_sql(api, "gate EE")

    refused = capture(api, flight_id, photo)

    assert refused.status_code == 401, refused.text
    assert "decision" not in refused.text
    assert len(api.services.boards.recent_captures(flight_id, 100)) == records
    assert sum(1 for _ in api.services.audit.all_events("capture")) == events


def test_a_key_over_its_own_limit_never_starts_a_model_run(
    api: Api, engine: FaceEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker: an officer's key (no gate bucket; the per-key one) that this instance
    remembers floods captures past its limit. The early path must charge the key's bucket
    before it lets the model start: over the limit, 429 and no model run."""
    flight = api.create_flight()
    officer = api.headers("officer")
    assert post_capture(api.client, flight["id"], officer) == 409  # key and carrier remembered
    limits = api.client.app.state.limits  # type: ignore[attr-defined]
    api.client.app.state.limits = replace(limits, keys=TokenBuckets(1e-6, 1))  # type: ignore[attr-defined]
    runs: list[bytes] = []
    analyse = engine.analyse

    def counted(photo: bytes) -> FaceAnalysis:
        runs.append(photo)
        return analyse(photo)

    monkeypatch.setattr(engine, "analyse", counted)
    with read_threads(api.services.uow.engine) as threads:
        assert post_capture(api.client, flight["id"], officer) == 409  # the one token
    # The early path is taken for this key: its read ran beside its model run.
    assert any(name.startswith("capture-read") for name in threads), threads
    assert len(runs) == 1

    assert post_capture(api.client, flight["id"], officer) == 429

    assert len(runs) == 1


def test_the_capture_read_threads_end_with_the_service(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    """The threads that run a capture's read beside its model are stopped at shutdown."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    built, services = build_api(settings, engine)
    try:
        with built.client:
            flight = built.create_flight()
            gate = built.headers("gate")
            assert post_capture(built.client, flight["id"], gate) == 409  # carrier remembered
            assert post_capture(built.client, flight["id"], gate) == 409  # read beside model
            assert capture_read_threads()
        assert not capture_read_threads()
    finally:
        services.uow.engine.dispose()


def capture_read_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("capture-read")]
