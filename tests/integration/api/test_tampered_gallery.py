"""One traveler's sealed rows moved in the database by someone without the keys must not stop
a whole flight: staging leaves that traveler out (his captures find no match and go to an
officer), raises the alarm (an ERROR line, a metric, an audit event) and stages the rest.
SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def quarantined_metric(api: Api, monitor_key: str) -> float:
    page = api.client.get("/metrics", headers={"X-API-Key": monitor_key}).text
    found = re.search(r"^entryexit_gallery_quarantined_travelers_total (\S+)$", page, re.M)
    assert found is not None
    return float(found.group(1))


def test_a_travelers_moved_sealed_rows_quarantine_him_and_the_rest_of_the_flight_boards(
    api: Api, lfw_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    victim, source = refs["Colin_Powell"], refs["Ariel_Sharon"]
    monitor = api.services.keys.create(Role.MONITOR, "prometheus")[1]
    alarms_before = quarantined_metric(api, monitor)
    engine = api.services.uow.engine
    # The attacker copies another traveler's sealed template over the victim's, hoping to
    # board Sharon's face as Powell: sealed with Sharon as its owner, it does not open.
    with engine.begin() as connection:
        sealed = connection.execute(
            text("SELECT vector FROM reference_templates WHERE traveler_id = :t"), {"t": source}
        ).scalar_one()
        connection.execute(
            text("UPDATE reference_templates SET vector = :v WHERE traveler_id = :t"),
            {"v": sealed, "t": victim},
        )

    with caplog.at_level(logging.ERROR):
        restaged = api.client.post(
            f"/v1/flights/{flight_id}/gallery", headers=api.headers("officer")
        )
    assert restaged.status_code == 200, restaged.text
    assert restaged.json()["with_photo"] == 3
    assert any("do not open" in r.getMessage() for r in caplog.records)
    assert victim not in caplog.text  # the alarm names a flight and a count, not a traveler
    assert quarantined_metric(api, monitor) == alarms_before + 1
    with engine.connect() as connection:
        quarantined = connection.execute(
            text(
                "SELECT resource_id FROM audit_events WHERE action = 'gallery quarantine'"
                " AND outcome = 'tampered'"
            )
        ).scalars()
        assert list(quarantined) == [victim]

    # The others still match; the victim (or whoever wears his face) goes to an officer.
    for person in ("Ariel_Sharon", "Alvaro_Uribe", "Atal_Bihari_Vajpayee"):
        decided = capture(api, flight_id, lfw_image(lfw_dir, person, 2), role="officer")
        assert decided.json()["decision"] == "match", person
    powell = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2), role="officer")
    assert powell.json()["decision"] == "no_match"
