"""Issue 6 end to end over the API: a stay past its end shows in the overstay report; a
traveler who leaves on a new passport closes their stay by a biometric link; a watchlisted
person raises alerts at staging and at the gate, goes to an officer, and the disposition is
recorded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture, enrol, manifest_row

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def flight(api: Api, direction: str, number: str, hours: int = 3) -> str:
    response = api.client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": number,
            "scheduled_departure": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
            "origin": "AAA" if direction == "entry" else "HOM",
            "destination": "HOM" if direction == "entry" else "BBB",
            "direction": direction,
        },
        headers=api.headers("officer"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def board(api: Api, flight_id: str, travelers: dict[str, tuple[str, Path]]) -> dict[str, str]:
    """Manifest (document -> surname, photo), enrol, stage; returns document -> traveler ref."""
    rows = [manifest_row(number, surname) for number, (surname, _) in travelers.items()]
    put = api.client.put(
        f"/v1/flights/{flight_id}/manifest",
        json={"travelers": rows},
        headers=api.headers("officer"),
    )
    assert put.status_code == 200, put.text
    refs = {number: enrol(api, number, photo) for number, (_, photo) in travelers.items()}
    staged = api.client.post(f"/v1/flights/{flight_id}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200, staged.text
    return refs


def crossings(api: Api, traveler_ref: str) -> dict[str, Any]:
    api.services.crossings.wait_idle()  # admissions are recorded off the gate's hot path
    response = api.client.get(
        f"/v1/travelers/{traveler_ref}/crossings", headers=api.headers("officer")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_overstays_biometric_exit_link_and_exits_without_entry(api: Api, lfw_dir: Path) -> None:
    arrival = flight(api, "entry", "201")
    entered = board(
        api,
        arrival,
        {
            "P0000001": ("POWELL", lfw_image(lfw_dir, "Colin_Powell", 1)),
            "S0000001": ("SHARON", lfw_image(lfw_dir, "Ariel_Sharon", 1)),
        },
    )
    for person in ("Colin_Powell", "Ariel_Sharon"):
        assert capture(api, arrival, lfw_image(lfw_dir, person, 2)).json()["decision"] == "match"
    powell, sharon = entered["P0000001"], entered["S0000001"]
    stay = crossings(api, powell)["admissions"]
    assert len(stay) == 1
    assert stay[0]["class"] == "WT"  # the policy's default class: 90 days
    today = date.today()
    assert stay[0]["admitted_until"] == (today + timedelta(days=90)).isoformat()

    # Sharon leaves in time, on a new passport: a different document, so a different
    # traveler record, tied to the stay only by the face.
    departure = flight(api, "exit", "202")
    # Uribe leaves without having been seen entering.
    left = board(
        api,
        departure,
        {
            "S0000002": ("SHARON", lfw_image(lfw_dir, "Ariel_Sharon", 3)),
            "U0000001": ("URIBE", lfw_image(lfw_dir, "Alvaro_Uribe", 1)),
        },
    )
    assert capture(api, departure, lfw_image(lfw_dir, "Ariel_Sharon", 4)).json()["decision"] == (
        "match"
    )
    assert capture(api, departure, lfw_image(lfw_dir, "Alvaro_Uribe", 2)).json()["decision"] == (
        "match"
    )
    closed = crossings(api, sharon)["admissions"][0]
    assert closed["exited_on"] == today.isoformat()
    assert closed["exit_link"] == "biometric"
    assert closed["exit_link_score"] > 0.5
    assert closed["days_over"] == 0
    new_passport = crossings(api, left["S0000002"])
    assert len(new_passport["exits"]) == 1
    assert new_passport["admissions"][0]["admission_id"] == closed["admission_id"]

    api.services.crossings.wait_idle()
    # 100 days on: Powell is 10 days over; Sharon left in time; Uribe has an exit only.
    as_of = today + timedelta(days=100)
    report = api.client.get(
        "/v1/reports/overstays", params={"as_of": as_of.isoformat()}, headers=api.headers("officer")
    )
    assert report.status_code == 200, report.text
    body = report.json()
    assert [(r["traveler_ref"], r["days_over"]) for r in body["in_country"]] == [(powell, 10)]
    assert body["in_country"][0]["document"] == "XYZ P0000001"
    assert body["out_of_country"] == []
    assert [e["traveler_ref"] for e in body["exits_without_entry"]] == [left["U0000001"]]
    by_flight = {f["flight_id"]: f for f in body["exit_confirmation"]["by_flight"]}
    assert by_flight[departure]["rate"] == 1.0
    assert body["exit_confirmation"]["by_carrier"][0]["carrier"] == "EE"
    as_csv = api.client.get(
        "/v1/reports/overstays",
        params={"as_of": as_of.isoformat(), "format": "csv"},
        headers=api.headers("officer"),
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["kind"], r["surname"], r["days_over"]) for r in rows] == [
        ("in_country", "POWELL", "10")
    ]
    # An auditor reads the audit trail, not people's overstays; a gate reads nothing.
    for role in ("auditor", "gate"):
        denied = api.client.get(
            "/v1/reports/overstays", params={"as_of": as_of.isoformat()}, headers=api.headers(role)
        )
        assert denied.status_code == 403

    # The officer records the real class and end date from the arrival record.
    admission_id = stay[0]["admission_id"]
    patched = api.client.patch(
        f"/v1/admissions/{admission_id}",
        json={"admission_class": "b2", "admitted_until": (today + timedelta(days=180)).isoformat()},
        headers=api.headers("officer"),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["class"] == "B2"
    again = api.client.get(
        "/v1/reports/overstays", params={"as_of": as_of.isoformat()}, headers=api.headers("officer")
    ).json()
    assert again["in_country"] == []


def test_a_watchlisted_person_raises_alerts_and_an_officer_decides(api: Api, lfw_dir: Path) -> None:
    manager_key = api.services.keys.create(Role.WATCHLIST_MANAGER, "watchlist desk")[1]
    manager = {"X-API-Key": manager_key}
    added = api.client.post(
        "/v1/watchlist",
        files={"photo": ("w.jpg", lfw_image(lfw_dir, "Donald_Rumsfeld", 3).read_bytes())},
        data={"category": "law-enforcement", "reason_code": "WANTED-1"},
        headers=manager,
    )
    assert added.status_code == 201, added.text
    # Officers can neither change nor read the list itself.
    assert api.client.get("/v1/watchlist", headers=api.headers("officer")).status_code == 403
    assert api.client.get("/v1/alerts", headers=manager).status_code == 403

    departure = flight(api, "exit", "301")
    refs = board(
        api,
        departure,
        {
            "R0000001": ("RUMSFELD", lfw_image(lfw_dir, "Donald_Rumsfeld", 1)),
            "P0000009": ("POWELL", lfw_image(lfw_dir, "Colin_Powell", 1)),
        },
    )
    alerts = api.client.get("/v1/alerts", headers=api.headers("officer")).json()
    assert [(a["source"], a["traveler_id"]) for a in alerts] == [("staging", refs["R0000001"])]
    assert alerts[0]["score"] >= 0.484
    assert alerts[0]["model"] == "sface-2021dec+flip"
    assert alerts[0]["policy_version"] == "default-2"

    # At the gate: sent to an officer, and the gate learns nothing more than that.
    gate = capture(api, departure, lfw_image(lfw_dir, "Donald_Rumsfeld", 2))
    assert gate.json() == {
        "capture_id": gate.json()["capture_id"],
        "decision": "manual",
        "reasons": ["officer_review"],
        "already_processed": False,
    }
    assert capture(api, departure, lfw_image(lfw_dir, "Colin_Powell", 2)).json()["decision"] == (
        "match"
    )
    open_alerts = api.client.get("/v1/alerts", headers=api.headers("officer")).json()
    assert sorted(a["source"] for a in open_alerts) == ["gate", "staging"]
    assert not any(
        e["traveler_ref"] == refs["R0000001"]
        for e in api.client.get(
            f"/v1/flights/{departure}/encounters", headers=api.headers("officer")
        ).json()
    )

    for alert in open_alerts:
        missing_reason = api.client.post(
            f"/v1/alerts/{alert['id']}/disposition",
            json={"disposition": "dismissed_different_person", "reason": ""},
            headers=api.headers("officer"),
        )
        assert missing_reason.status_code == 422
        done = api.client.post(
            f"/v1/alerts/{alert['id']}/disposition",
            json={"disposition": "dismissed_different_person", "reason": "passport checked"},
            headers=api.headers("officer"),
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "dismissed_different_person"
        assert done.json()["dispositioned_by"]
    assert api.client.get("/v1/alerts", headers=api.headers("officer")).json() == []
    events = [e.entry for e in api.services.audit.all_events()]
    assert sum(e.action == "watchlist alert" for e in events) == 2
    assert sum(e.action == "alert disposition" for e in events) == 2
    assert any(e.action == "watchlist add" and e.actor_role == "watchlist_manager" for e in events)

    removed = api.client.delete(f"/v1/watchlist/{added.json()['entry_id']}", headers=manager)
    assert removed.status_code == 204
    assert api.client.get("/v1/watchlist", headers=manager).json() == []
