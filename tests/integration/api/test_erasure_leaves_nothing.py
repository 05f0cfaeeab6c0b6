"""A supervisor erases a traveler a gate had matched under an Idempotency-Key; the attacker
then reads every cell of the database (SQLite and PostgreSQL) looking for the traveler."""

from __future__ import annotations

from pathlib import Path

import pytest

from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, staged_flight
from tests.integration.test_erasure_storage import cells_naming
from tests.repository_driver import RepositoryDriver

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def test_an_erased_traveler_the_gate_matched_idempotently_is_in_no_cell(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, refs = staged_flight(api, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    traveler_id = refs["Ariel_Sharon"]
    matched = api.client.post(
        f"/v1/flights/{flight_id}/captures",
        files={
            "photo": ("c.jpg", lfw_image(lfw_dir, "Ariel_Sharon", 2).read_bytes(), "image/jpeg")
        },
        data={"gate": "G7", "device": "cam-1"},
        headers={**api.headers("gate"), "Idempotency-Key": "gate-7-0001"},
    )
    assert matched.json()["decision"] == "match", matched.text
    database = RepositoryDriver(api.services.uow)
    assert "capture_idempotency_keys.outcome" in cells_naming(database, traveler_id)

    api.keys["supervisor"] = api.services.keys.create(Role.SUPERVISOR, "shift lead")[1]
    erased = api.client.post(
        "/v1/erasures",
        json={"issuing_state": "XYZ", "number": "D0000001", "reason": "court_order"},
        headers=api.headers("supervisor"),
    )
    assert erased.status_code == 201, erased.text
    # The audit event names the erased traveler by id on purpose (what was erased, and why).
    remaining = cells_naming(database, traveler_id)
    assert set(remaining) <= {"audit_events.resource_id"}, remaining
    assert erased.json()["erased"]["idempotency_keys"] == 1
