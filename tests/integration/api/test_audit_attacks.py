"""The audit log against someone who can write to the database but holds no audit key.

Each attack worked on the service before events had their own MAC and before writers checked
the head: the service re-signed whatever head it found, and `audit verify` then said intact.
Now the service refuses audited actions (503, problem type naming the audit log), readiness
says why, verification names the first wrong event, and only the audited repair command lets
work go on, without hiding anything.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import build_services
from tests.integration.api.conftest import Api, manifest_row

pytestmark = [pytest.mark.models]


def sql(api: Api, statement: str, **params: object) -> None:
    with api.services.uow.engine.begin() as connection:
        connection.execute(text(statement), params)


def last_sequence(api: Api) -> int:
    with api.services.uow.engine.connect() as connection:
        return int(connection.execute(text("SELECT max(sequence) FROM audit_events")).scalar_one())


def some_audited_work(api: Api) -> int:
    for _ in range(3):
        api.create_flight()
    return last_sequence(api)


def refused(api: Api) -> None:
    response = api.client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": "7",
            "scheduled_departure": "2030-01-01T10:00:00Z",
            "origin": "AAA",
            "destination": "BBB",
            "direction": "exit",
        },
        headers=api.headers("admin"),
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith(":audit-log-untrusted")
    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["audit_log"] == "untrusted"


def test_truncating_the_log_and_moving_the_head_back_stops_audited_work(api: Api) -> None:
    last = some_audited_work(api)
    sql(api, "DELETE FROM audit_events WHERE sequence > :keep", keep=last - 2)
    sql(
        api,
        "UPDATE audit_head SET sequence = :seq, hash ="
        " (SELECT hash FROM audit_events WHERE sequence = :seq), signature = :junk",
        seq=last - 2,
        junk="0" * 64,
    )
    refused(api)
    # A refused action is not done: no flight was created, nothing was re-signed.
    assert last_sequence(api) == last - 2
    verification = api.client.get("/v1/audit/verification", headers=api.headers("auditor"))
    assert verification.status_code == 200
    assert verification.json()["ok"] is False


def test_a_modified_event_rehashed_forward_is_named_and_never_re_signed(api: Api) -> None:
    last = some_audited_work(api)
    target = last - 2
    with api.services.uow.engine.begin() as connection:
        found = connection.execute(
            text("SELECT * FROM audit_events WHERE sequence >= :s ORDER BY sequence"),
            {"s": target},
        ).mappings()
        rows = [dict(r) for r in found]
        previous = rows[0]["previous_hash"]
        for row in rows:
            if row["sequence"] == target:
                row["outcome"] = "denied"
            # Plain SHA-256 over the same canonical form the service uses: no key needed.
            canonical = json.dumps(
                {
                    "sequence": row["sequence"],
                    "occurred_at": _iso(row["occurred_at"]),
                    "action": row["action"],
                    "outcome": row["outcome"],
                    "actor_key_id": row["actor_key_id"],
                    "actor_role": row["actor_role"],
                    "resource_type": row["resource_type"],
                    "resource_id": row["resource_id"],
                    "policy_version": row["policy_version"],
                    "details": json.loads(row["details"]),
                    "previous_hash": previous,
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            row["hash"] = hashlib.sha256(canonical).hexdigest()
            connection.execute(
                text(
                    "UPDATE audit_events SET outcome = :o, previous_hash = :p, hash = :h"
                    " WHERE sequence = :s"
                ),
                {"o": row["outcome"], "p": previous, "h": row["hash"], "s": row["sequence"]},
            )
            previous = row["hash"]
        connection.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": previous})
    refused(api)  # the head's signature no longer fits the last event
    # The auditor's own verification request re-signs nothing: it still fails, at the event.
    for _ in range(2):
        result = api.client.get("/v1/audit/verification", headers=api.headers("auditor")).json()
        assert (result["ok"], result["first_broken_sequence"]) == (False, target)


def test_only_the_audited_repair_lets_work_go_on_and_it_hides_nothing(api: Api) -> None:
    last = some_audited_work(api)
    sql(api, "DELETE FROM audit_events WHERE sequence = :s", s=last)
    refused(api)
    found = api.services.audit.repair()
    assert not found.ok
    assert api.client.get("/readyz").status_code == 200
    api.create_flight()  # audited work goes on
    # What the repair found is itself in the log, where it was found: the cut-off event.
    (repair,) = api.services.audit.events(0, 1000, action="audit repair")
    assert repair.sequence == last  # in the place of the deleted event
    assert repair.entry.details["chain_ok"] == "no"
    assert f"names sequence {last}" in str(repair.entry.details["head_problem"])


def _iso(value: object) -> str:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC).isoformat()


def test_storage_that_cannot_write_is_a_503_and_not_ready(api: Api, engine: FaceEngine) -> None:
    """A read-only (or full) database: writes answer 503 storage-unavailable, never 500, and
    readiness says so."""
    url = api.services.settings.resolved_database_url
    if not url.startswith("sqlite"):
        pytest.skip("a store that cannot write is simulated with SQLite's read-only mode")
    path = url.split("///", 1)[1]
    settings = api.services.settings.model_copy(
        update={"database_url": f"sqlite:///file:{path}?mode=ro&uri=true"}
    )
    services = build_services(
        settings, engine=engine, keys=FileKeyProvider(settings.resolved_key_dir)
    )
    client = TestClient(create_app(services))
    assert client.get("/readyz").json() == {"status": "unavailable", "database": "cannot write"}
    response = client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": "7",
            "scheduled_departure": "2030-01-01T10:00:00Z",
            "origin": "AAA",
            "destination": "BBB",
            "direction": "exit",
        },
        headers=api.headers("admin"),
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith(":storage-unavailable")
    services.uow.engine.dispose()


def test_reads_of_personal_data_stop_while_the_log_is_untrusted(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """After the truncation above, an officer's read of a manifest or a flight's encounters
    could no longer be recorded: the read is refused (503, no names in the body) rather
    than served unaudited, and the operator is told at ERROR level."""
    flight = api.create_flight()
    manifest = f"/v1/flights/{flight['id']}/manifest"
    loaded = api.client.put(
        manifest, json=[manifest_row("A1", "ZWANENBURG")], headers=api.headers("officer")
    )
    assert loaded.status_code == 200, loaded.text
    assert "ZWANENBURG" in api.client.get(manifest, headers=api.headers("officer")).text
    last = some_audited_work(api)
    sql(api, "DELETE FROM audit_events WHERE sequence > :keep", keep=last - 2)
    sql(
        api,
        "UPDATE audit_head SET sequence = :seq, hash ="
        " (SELECT hash FROM audit_events WHERE sequence = :seq), signature = :junk",
        seq=last - 2,
        junk="0" * 64,
    )
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        for url in (manifest, f"/v1/flights/{flight['id']}/encounters"):
            response = api.client.get(url, headers=api.headers("officer"))
            assert response.status_code == 503, (url, response.text)
            assert response.json()["type"].endswith(":audit-log-untrusted")
            assert "ZWANENBURG" not in response.text
    assert any(r.levelno >= logging.ERROR and "audit" in r.getMessage() for r in caplog.records)


def test_a_read_refused_for_an_untrusted_log_still_carries_the_baseline_headers(
    api: Api,
) -> None:
    """Review L3: the access log's replacement 503 (a read it could not record) was sent past
    the baseline headers: no no-store, nosniff or DENY on that answer."""
    flight_id = api.create_flight()["id"]
    last = some_audited_work(api)
    sql(api, "UPDATE audit_head SET signature = :junk WHERE sequence = :s", junk="0" * 64, s=last)
    response = api.client.get(f"/v1/flights/{flight_id}", headers=api.headers("officer"))
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith(":audit-log-untrusted")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
