"""The capture path checks its caller in the worker thread that does the capture, in the
capture's one read: as strictly as every other endpoint, and never from a stale copy.
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, text

from entryexit.adapters.storage.database import READ_ONLY_TRANSACTION
from tests.integration.api.conftest import Api

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
