"""A small flight boarded through the API: decisions, privacy of the gate's view, encounters."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, capture, enrol, manifest_row, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]

GATE_FIELDS = {"capture_id", "decision", "reasons", "already_processed"}


def test_a_traveler_on_the_manifest_matches_once_and_the_gate_sees_only_the_decision(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    first = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
    assert first.status_code == 200, first.text
    assert set(first.json()) == GATE_FIELDS
    assert first.json()["decision"] == "match"
    assert first.json()["already_processed"] is False

    again = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 3), role="officer")
    body = again.json()
    assert body["decision"] == "match"
    assert body["already_processed"] is True
    assert body["traveler_ref"] == refs["Colin_Powell"]
    assert body["score"] >= body["threshold"] > 0.4
    assert body["model"] == "sface-2021dec+flip"

    encounters = api.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=api.headers("auditor")
    )
    assert encounters.status_code == 200
    (encounter,) = encounters.json()
    assert encounter["traveler_ref"] == refs["Colin_Powell"]
    assert encounter["direction"] == "exit"
    assert encounter["method"] == "biometric"
    assert encounter["gate"] == "G7"
    assert encounter["capture_id"] == first.json()["capture_id"]
    assert encounter["policy_version"]

    outstanding = api.client.get(
        f"/v1/flights/{flight_id}/outstanding", headers=api.headers("officer")
    )
    assert {t["traveler_ref"] for t in outstanding.json()} == set(refs.values()) - {
        refs["Colin_Powell"]
    }


def test_someone_not_on_the_manifest_gets_no_match(api: Api, lfw_dir: Path) -> None:
    flight_id, _ = staged_flight(api, lfw_dir)
    response = capture(api, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1), role="officer")
    assert response.json()["decision"] == "no_match"
    assert response.json()["traveler_ref"] is None
    assert response.json()["reasons"] in (["below_threshold"], ["ambiguous"])
    encounters = api.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=api.headers("officer")
    )
    assert encounters.json() == []


def test_no_face_and_poor_quality_ask_for_a_recapture(api: Api, lfw_dir: Path) -> None:
    flight_id, _ = staged_flight(api, lfw_dir)
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank, format="JPEG")
    response = capture(api, flight_id, blank.getvalue())
    assert response.json() == {**response.json(), "decision": "recapture", "reasons": ["no_face"]}

    face = Image.open(lfw_image(lfw_dir, "Colin_Powell", 2))
    far_away = Image.new("RGB", (640, 480), (120, 120, 120))
    far_away.paste(face.resize((60, 60)), (290, 210))
    small = io.BytesIO()
    far_away.save(small, format="JPEG", quality=95)
    response = capture(api, flight_id, small.getvalue())
    if response.json()["decision"] != "recapture":  # the detector may not see a 20 px face
        pytest.fail(f"a tiny face was not sent back for recapture: {response.json()}")
    assert response.json()["reasons"] in (["too_far"], ["no_face"])


def test_staging_lists_travelers_without_photos_and_restaging_is_incremental(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, _ = staged_flight(api, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    rows = [
        manifest_row("D0000000", "POWELL"),
        manifest_row("N0000001", "NOPHOTO"),
    ]
    change = api.client.put(
        f"/v1/flights/{flight_id}/manifest", json=rows, headers=api.headers("officer")
    )
    assert change.json() == {
        "added": 1,
        "removed": 1,
        "updated": 1,
        "total": 2,
        "flagged": [],
        "details_kept": 0,
        "conflicts": 0,
    }
    staged = api.client.post(
        f"/v1/flights/{flight_id}/gallery", headers=api.headers("officer")
    ).json()
    assert staged["travelers"] == 2
    assert staged["with_photo"] == 1
    assert (staged["added"], staged["removed"], staged["unchanged"]) == (0, 1, 1)
    assert staged["without_photo"] == [{"issuing_state": "XYZ", "number": "N0000001"}]
    assert staged["gallery_version"] == 2
    # Ariel Sharon was taken off the manifest: no longer matched on this flight.
    response = capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2), role="officer")
    assert response.json()["decision"] == "no_match"


def test_a_cold_start_rebuilds_galleries_from_the_database(api: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    api.services.galleries.forget(flight_id)
    response = capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 3), role="officer")
    assert response.json()["decision"] == "match"
    assert response.json()["traveler_ref"] == refs["Ariel_Sharon"]


def test_an_empty_gallery_sends_everyone_to_an_officer(api: Api, lfw_dir: Path) -> None:
    flight = api.create_flight()
    api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        json=[manifest_row("Z1", "NOBODY")],
        headers=api.headers("officer"),
    )
    api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    response = capture(api, flight["id"], lfw_image(lfw_dir, "Colin_Powell", 1))
    assert response.json()["decision"] == "manual"
    assert np.isclose(len(response.json()["reasons"]), 1)


def test_a_large_full_resolution_capture_is_decided(api: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    rng = np.random.default_rng(0)
    frame = Image.fromarray(rng.integers(60, 200, (1536, 2048, 3), dtype=np.uint8))
    frame.paste(Image.open(lfw_image(lfw_dir, "Alvaro_Uribe", 2)).resize((700, 700)), (700, 400))
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 4 * 1024 * 1024  # well past Starlette's 1 MiB spool size
    response = capture(api, flight_id, buffer.getvalue(), role="officer")
    assert response.status_code == 200, response.text
    assert response.json()["decision"] == "match"
    assert response.json()["traveler_ref"] == refs["Alvaro_Uribe"]


def test_a_flight_staged_from_a_paxlst_manifest_boards(api: Api, lfw_dir: Path) -> None:
    from datetime import date

    from entryexit.documents.paxlst import export_paxlst, parse_paxlst
    from entryexit.domain.model import (
        CitizenshipClass,
        DocumentKey,
        DocumentType,
        ManifestTraveler,
        Sex,
    )

    people = {"Colin_Powell": "P0000101", "Ariel_Sharon": "P0000102"}
    travelers = [
        ManifestTraveler(
            person.split("_")[-1].upper(),
            person.split("_")[0].upper(),
            date(1950, 1, 1),
            Sex.MALE,
            "UTO",
            CitizenshipClass.CITIZEN,
            DocumentType.PASSPORT,
            DocumentKey("UTO", number),
            date(2031, 1, 1),
        )
        for person, number in people.items()
    ]
    message = export_paxlst("EE", "101", "AAA", "BBB", date(2026, 11, 23), travelers)
    message = message.replace("CNT+42:2'", "NAD+FL+++NODOC:ANN'ATT+2++F'CNT+42:2'")
    message = message.replace("UNT+22+1'", "UNT+24+1'")
    flight = api.create_flight()
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        content=message.encode(),
        headers={**api.headers("officer"), "content-type": "application/edifact"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 2
    assert [f["reason"] for f in response.json()["flagged"]] == ["no travel document (DOC)"]
    refs = {
        person: enrol(api, number, lfw_image(lfw_dir, person, 1), "UTO")
        for person, number in people.items()
    }
    api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    boarded = capture(api, flight["id"], lfw_image(lfw_dir, "Ariel_Sharon", 2), role="officer")
    assert boarded.json()["decision"] == "match"
    assert boarded.json()["traveler_ref"] == refs["Ariel_Sharon"]
    # What the store holds reads back as the same travelers (the export of the flight).
    held = api.services.flights.manifest_travelers(flight["id"])
    assert held == sorted(travelers, key=lambda t: (t.surname, t.given_names, t.document.number))
    assert parse_paxlst(message.encode(), date(2026, 11, 23), "UTO").travelers == tuple(travelers)
