"""Issue 14: an exit that cannot be linked to the stay it ends (here: the entry template's
key-encryption key is gone, as after a rotation that retired a key still in use) was only a
log line, and the traveler later read as an overstay. Now it is an alert on the officers'
console, in the audit log, and an officer can retry it once the cause is fixed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture
from tests.integration.api.test_entry_exit_api import board, crossings, flight
from tests.integration.web.test_console import console, csrf, fresh, sign_in

pytestmark = [pytest.mark.models, pytest.mark.lfw]
__all__ = ["console"]  # the fixture, shared with the console's own tests


def sql(api: Api, statement: str, **params: object) -> None:
    with api.services.uow.engine.begin() as connection:
        connection.execute(text(statement), params)


def admission_template(api: Api) -> bytes:
    with api.services.uow.engine.connect() as connection:
        return bytes(connection.execute(text("SELECT template FROM admissions")).scalar_one())


def test_an_exit_that_cannot_be_linked_is_an_alert_on_the_console(
    console: Api, lfw_dir: Path
) -> None:
    api = console
    arrival = flight(api, "entry", "301")
    entered = board(api, arrival, {"S0000001": ("SHARON", lfw_image(lfw_dir, "Ariel_Sharon", 1))})
    assert (
        capture(api, arrival, lfw_image(lfw_dir, "Ariel_Sharon", 2)).json()["decision"] == "match"
    )
    sharon = entered["S0000001"]
    assert crossings(api, sharon)["admissions"][0]["exited_on"] is None
    kept = admission_template(api)
    # Its sealed entry template no longer opens (damaged storage, a lost key).
    sql(api, "UPDATE admissions SET template = :t", t=bytes(len(kept)))

    # She leaves on a new passport: only her face ties the exit to her stay.
    departure = flight(api, "exit", "302")
    left = board(api, departure, {"S0000002": ("SHARON", lfw_image(lfw_dir, "Ariel_Sharon", 3))})
    assert capture(api, departure, lfw_image(lfw_dir, "Ariel_Sharon", 4)).json()["decision"] == (
        "match"
    )
    deadline = time.monotonic() + 60
    while not _parked(api):
        assert time.monotonic() < deadline, "the exit's work was never given up on"
        api.services.crossings.process_pending()
        time.sleep(0.05)
    assert crossings(api, sharon)["admissions"][0]["exited_on"] is None

    client = fresh(api)
    sign_in(client, "olga")
    page = client.get("/console/alerts")
    assert page.status_code == 200
    assert "Exit not linked to its stay" in page.text
    assert left["S0000002"][:8] in page.text
    events = api.client.get(
        "/v1/audit/events?action=admission%20work%20failed", headers=api.headers("auditor")
    ).json()
    assert [e["details"]["direction"] for e in events] == ["exit"]

    # The template restored, the officer retries: the exit closes her stay, the alert is gone.
    sql(api, "UPDATE admissions SET template = :t", t=kept)
    work_id = _parked(api)[0]
    retried = client.post(
        f"/console/alerts/crossings/{work_id}/retry",
        data={"csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    closed = crossings(api, sharon)["admissions"][0]
    assert closed["exit_link"] == "biometric"
    assert "Exit not linked to its stay" not in client.get("/console/alerts").text


def _parked(api: Api) -> list[str]:
    with api.services.uow(read_only=True) as uow:
        return [w.id for w in uow.outbox.parked("admission", 10)]
