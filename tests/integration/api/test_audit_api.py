"""Every API access is in the audit log, with identifiers only, and auditors can read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def test_accesses_are_audited_without_personal_data(api: Api, lfw_dir: Path) -> None:
    flight_id, _ = staged_flight(api, lfw_dir)
    capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
    api.client.get("/v1/flights/x", headers={"X-API-Key": "garbage"})
    api.client.post("/v1/flights", json={}, headers=api.headers("auditor"))

    response = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor"))
    assert response.status_code == 200
    events = response.json()
    actions = [(e["action"], e["outcome"]) for e in events]
    # A request that reaches a use case is one event, written in the use case's transaction
    # and naming the request; one refused before any use case is the middleware's event.
    assert ("capture", "ok") in actions
    assert ("GET /v1/flights/{flight_id}", "denied") in actions  # unauthenticated
    assert ("POST /v1/flights", "denied") in actions  # forbidden for auditors
    gate_event = next(e for e in events if e["action"] == "capture")
    assert gate_event["details"]["request"] == "POST /v1/flights/{flight_id}/captures"
    assert not any(e["action"] == "POST /v1/flights/{flight_id}/captures" for e in events)
    assert gate_event["actor_role"] == "gate"
    assert gate_event["resource_type"] == "flight"
    assert gate_event["resource_id"] == flight_id
    enrolments = [e for e in events if e["action"] == "reference enrol"]
    assert enrolments
    assert all(e["resource_id"] is None for e in enrolments)  # no document numbers
    text = json.dumps(events)
    for personal in ("D0000000", "POWELL", "SHARON", "Colin"):
        assert personal not in text
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)

    page = api.client.get(
        f"/v1/audit/events?after={sequences[2]}&limit=2", headers=api.headers("admin")
    ).json()
    assert [e["sequence"] for e in page] == sequences[3:5]
    verification = api.client.get("/v1/audit/verification", headers=api.headers("auditor"))
    assert verification.json()["ok"] is True


def test_partners_and_officers_cannot_read_the_audit_log(api: Api) -> None:
    for role in ("gate", "officer"):
        response = api.client.get("/v1/audit/events", headers=api.headers(role))
        assert response.status_code == 403


def test_text_typed_where_an_id_belongs_never_reaches_the_audit_log(api: Api) -> None:
    # The audit log is kept for years and never sealed: a name or a document number pasted
    # into an id's place (by mistake, or to plant it there) must not be kept in it.
    planted = ("SMITH JOHN 1980-01-01", "D1234567", "<img src=x>")
    for value in planted:
        for path in (
            f"/v1/travelers/{value}/crossings",
            f"/v1/flights/{value}",
            f"/v1/admissions/{value}",
        ):
            method = "PATCH" if path.startswith("/v1/admissions") else "GET"
            api.client.request(method, path, headers=api.headers("admin"))
    response = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor"))
    events = response.json()
    text = json.dumps(events)
    for value in planted:
        assert value not in text
        assert json.dumps(value)[1:-1] not in text
    marked = [e for e in events if e["details"].get("resource_id") == "not an identifier"]
    assert marked
    assert all(e["resource_id"] is None for e in marked)
