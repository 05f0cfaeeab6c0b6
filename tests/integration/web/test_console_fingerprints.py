"""The console's fingerprint step over the real app, database, face and fingerprint engines
and FVC2002 prints: the queue marks a no-match "prints possible" once a traveler still to
board has prints; on the case page an officer (or supervisor) reads a document and compares
live prints 1:1 (a match is the traveler's biometric encounter and closes the case), or
searches the flight for candidates to confirm; an auditor cannot, and a gate learns nothing
of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.web.app import create_service_app
from tests.conftest import lfw_image
from tests.integration.api.conftest import FOREIGN_STATE, Api, build_api, capture, staged_flight
from tests.integration.api.test_fingerprints import FVC, prints, send
from tests.integration.web.test_console import PASSWORD, csrf, fresh, sign_in

pytestmark = [pytest.mark.models, pytest.mark.lfw]

USERS = {"olga": Role.OFFICER, "sam": Role.SUPERVISOR, "ada": Role.AUDITOR}
DB = "DB1_B"
FIRST = "D0000000"  # Colin_Powell's document in staged_flight


@pytest.fixture
def console(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    if not (FVC / DB / "101_1.tif").is_file():
        pytest.skip(f"fvc2002-b data set not found at {FVC}")
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    built, services = build_api(settings, engine, create_service_app, "https://testserver")
    for name, role in USERS.items():
        services.accounts.create_user(name, PASSWORD, role)
    with built.client:
        yield built
    services.uow.engine.dispose()


def live(*names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("prints", (f"{n}.tif", (FVC / DB / f"{n}.tif").read_bytes(), "image/tiff")) for n in names
    ]


def check(
    client: object, capture_id: str, page: str, action: str, names: tuple[str, ...], **form: str
) -> httpx.Response:
    data: dict[str, object] = {
        "csrf_token": csrf(page),
        "action": action,
        "fingers": ["2", "7"][: len(names)],
        "format": "image",
        "ppi": "500",
        **form,
    }
    response: httpx.Response = client.post(  # type: ignore[attr-defined]
        f"/console/cases/{capture_id}/fingerprints", data=data, files=live(*names)
    )
    return response


def no_match_case(console: Api, lfw_dir: Path) -> tuple[str, str, dict[str, str]]:
    flight_id, refs = staged_flight(console, lfw_dir)
    stranger = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert stranger.json()["decision"] == "no_match"
    return flight_id, stranger.json()["capture_id"], refs


def test_a_no_match_is_settled_by_the_travelers_prints(console: Api, lfw_dir: Path) -> None:
    flight_id, capture_id, refs = no_match_case(console, lfw_dir)
    client = fresh(console)
    sign_in(client, "olga")
    # Nobody on the flight has prints yet: the case is not marked, the page has no step.
    assert "prints possible" not in client.get("/console/queue").text
    assert "Live prints" not in client.get(f"/console/cases/{capture_id}").text

    enrolled = send(
        console, "/v1/documents/fingerprints", prints(FVC, "101_1", "102_1"), [2, 7], number=FIRST
    )
    assert enrolled.status_code == 201, enrolled.text
    queue = client.get("/console/queue")
    assert re.search(rf'/console/cases/{capture_id}">.*?prints possible', queue.text, re.S)
    page = client.get(f"/console/cases/{capture_id}")
    assert "Live prints" in page.text

    # Another traveler's document read, these prints: no match, nothing recorded, case open.
    wrong = check(
        client,
        capture_id,
        page.text,
        "verify",
        ("101_3", "102_3"),
        issuing_state=FOREIGN_STATE,
        number="D0000001",
    )
    assert wrong.status_code == 404
    assert "no fingerprints are enrolled" in wrong.text
    stranger = check(
        client,
        capture_id,
        page.text,
        "verify",
        ("105_3", "106_3"),
        issuing_state=FOREIGN_STATE,
        number=FIRST,
    )
    assert stranger.status_code == 200
    assert "No fingerprint match" in stranger.text
    assert "Confirm identity after document check" in stranger.text

    # The right document and the traveler's own fingers (other impressions): a match.
    matched = check(
        client,
        capture_id,
        page.text,
        "verify",
        ("101_3", "102_3"),
        issuing_state=FOREIGN_STATE,
        number=FIRST,
    )
    assert matched.status_code == 200, matched.text
    text = matched.text
    assert "Fingerprint match" in text
    fused = re.search(r"fused score (\d\.\d{3}) against threshold (\d\.\d{3})", text)
    assert fused is not None
    assert float(fused.group(1)) >= float(fused.group(2))
    assert "the case is closed as confirmed" in text
    # The face evidence of the same person beside it (the gate capture against the traveler's
    # reference), summed with the fingers' as rarity among impostors; for the officer only.
    assert "Face score of the gate capture against this traveler" in text
    assert re.search(r"Face and fingers together .*?= \d+\.\d\d decades", text, re.S)
    assert "This case is closed: confirmed" in text
    encounters = console.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=console.headers("auditor")
    ).json()
    assert [(e["method"], e["traveler_ref"]) for e in encounters] == [
        ("biometric", refs["Colin_Powell"])
    ]
    assert f"/console/cases/{capture_id}" not in client.get("/console/queue").text
    events = [e.entry for e in console.services.audit.all_events("fingerprint verify")]
    assert [e.outcome for e in events] == ["no_match", "match"]
    assert events[-1].details["capture"] == capture_id
    assert FIRST not in repr(events)


def test_a_flight_search_proposes_and_the_officer_confirms(console: Api, lfw_dir: Path) -> None:
    flight_id, capture_id, refs = no_match_case(console, lfw_dir)
    for number, names in ((FIRST, ("101_1", "102_1")), ("D0000001", ("103_1", "104_1"))):
        enrolled = send(
            console, "/v1/documents/fingerprints", prints(FVC, *names), [2, 7], number=number
        )
        assert enrolled.status_code == 201
    client = fresh(console)
    sign_in(client, "sam")  # a supervisor may do all an officer does
    page = client.get(f"/console/cases/{capture_id}")
    found = check(client, capture_id, page.text, "search", ("103_4", "104_4"))
    assert found.status_code == 200, found.text
    text = found.text
    assert "2 travelers with enrolled prints searched" in text
    assert "Check the candidate&#39;s document before confirming" in text
    first = re.search(r"<li>([A-Z_]+), TEST \(XYZ (D\d+)\)", text)
    assert first is not None
    assert first.group(2) == "D0000001"
    # Nothing is decided by the search: no encounter, the case still open.
    assert (
        console.client.get(
            f"/v1/flights/{flight_id}/encounters", headers=console.headers("auditor")
        ).json()
        == []
    )
    confirm = client.post(
        f"/console/cases/{capture_id}/resolve",
        data={
            "csrf_token": csrf(text),
            "resolution": "confirmed",
            "traveler_id": refs["Ariel_Sharon"],
        },
    )
    assert "Case resolved: confirmed" in confirm.text
    assert [a.entry.action for a in console.services.audit.all_events("fingerprint search")]


def test_bad_prints_are_shown_on_the_case_and_record_nothing(console: Api, lfw_dir: Path) -> None:
    flight_id, capture_id, _ = no_match_case(console, lfw_dir)
    send(console, "/v1/documents/fingerprints", prints(FVC, "101_1"), [2], number=FIRST)
    client = fresh(console)
    sign_in(client, "olga")
    page = client.get(f"/console/cases/{capture_id}").text
    low = check(
        client,
        capture_id,
        page,
        "verify",
        ("101_3",),
        issuing_state=FOREIGN_STATE,
        number=FIRST,
        ppi="150",
    )
    assert low.status_code == 422
    assert "Fingerprint check not made" in low.text
    assert "ppi" in low.text
    junk = client.post(
        f"/console/cases/{capture_id}/fingerprints",
        data={
            "csrf_token": csrf(page),
            "action": "verify",
            "fingers": ["2"],
            "ppi": "500",
            "issuing_state": FOREIGN_STATE,
            "number": FIRST,
        },
        files=[("prints", ("x.png", b"not an image", "image/png"))],
    )
    assert junk.status_code == 422
    no_document = check(client, capture_id, page, "verify", ("101_3",))
    assert no_document.status_code == 422
    assert "identify the document" in no_document.text
    forged = client.post(
        f"/console/cases/{capture_id}/fingerprints",
        data={
            "csrf_token": "forged",
            "action": "verify",
            "fingers": ["2"],
            "ppi": "500",
            "issuing_state": FOREIGN_STATE,
            "number": FIRST,
        },
        files=live("101_3"),
    )
    assert forged.status_code == 403
    assert (
        console.client.get(
            f"/v1/flights/{flight_id}/encounters", headers=console.headers("auditor")
        ).json()
        == []
    )
    assert list(console.services.audit.all_events("fingerprint verify")) == []


def test_auditors_and_gates_get_no_fingerprint_step(console: Api, lfw_dir: Path) -> None:
    flight_id, capture_id, _ = no_match_case(console, lfw_dir)
    before = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 2)).json()
    send(console, "/v1/documents/fingerprints", prints(FVC, "101_1"), [2], number=FIRST)
    # The gate's answer for the same person is the same with prints enrolled: no marking,
    # no reason, nothing about prints.
    after = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 2))
    assert "print" not in after.text.lower()
    assert set(after.json()) == set(before)
    assert after.json()["decision"] == before["decision"]
    auditor = fresh(console)
    sign_in(auditor, "ada")
    board = auditor.get("/console/").text
    assert auditor.get("/console/queue").status_code == 403
    refused = auditor.post(
        f"/console/cases/{capture_id}/fingerprints",
        data={"csrf_token": csrf(board), "action": "search", "fingers": ["2"], "ppi": "500"},
        files=live("101_3"),
    )
    assert refused.status_code == 403
    # A gate's key opens no console page.
    gate = fresh(console)
    response = gate.post(
        f"/console/cases/{capture_id}/fingerprints",
        data={"action": "search", "fingers": ["2"], "ppi": "500"},
        files=live("101_3"),
        headers=console.headers("gate"),
    )
    assert response.url.path == "/console/login"
    search = console.client.post(
        f"/v1/flights/{flight_id}/fingerprint-searches",
        data={"fingers": ["2"], "ppi": "500"},
        files=live("101_3"),
        headers=console.headers("gate"),
    )
    assert search.status_code == 403
    assert list(console.services.audit.all_events("fingerprint search")) == []
