"""1:1 verification against a document photo, through the API."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, enrol, manifest_row

pytestmark = [pytest.mark.models, pytest.mark.lfw]

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def verify(api: Api, capture: bytes, reference: bytes, role: str = "officer", **form: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        "/v1/verifications",
        files={
            "capture": ("c.jpg", capture, "image/jpeg"),
            "document_photo": ("d.jpg", reference, "image/jpeg"),
        },
        data=form,
        headers=api.headers(role),
    )


def test_same_person_matches_and_another_does_not(api: Api, lfw_dir: Path) -> None:
    reference = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    same = verify(api, lfw_image(lfw_dir, "Colin_Powell", 5).read_bytes(), reference)
    assert same.status_code == 200, same.text
    assert same.json()["decision"] == "match"
    assert same.json()["similarity"] >= same.json()["threshold"]
    other = verify(api, lfw_image(lfw_dir, "Ariel_Sharon", 1).read_bytes(), reference)
    assert other.json()["decision"] == "no_match"
    assert other.json()["encounter_id"] is None


def test_the_gate_sees_only_the_decision(api: Api, lfw_dir: Path) -> None:
    response = verify(
        api,
        lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes(),
        lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes(),
        role="gate",
    )
    assert response.json() == {"decision": "match", "reasons": []}


def test_a_match_tied_to_a_document_and_lane_is_an_encounter(api: Api, lfw_dir: Path) -> None:
    flight = api.create_flight()
    row = {**manifest_row("L898902C3", "ERIKSSON"), "issuing_state": "UTO"}
    api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=[row], headers=api.headers("officer")
    )
    reference = lfw_image(lfw_dir, "Colin_Powell", 1)
    traveler = enrol(api, "L898902C3", reference)
    response = verify(
        api,
        lfw_image(lfw_dir, "Colin_Powell", 3).read_bytes(),
        reference.read_bytes(),
        mrz=TD3,
        flight_id=flight["id"],
        gate="LANE4",
        device="kiosk-2",
    )
    assert response.json()["decision"] == "match"
    assert response.json()["encounter_id"]
    (encounter,) = api.client.get(
        f"/v1/flights/{flight['id']}/encounters", headers=api.headers("officer")
    ).json()
    assert encounter["traveler_ref"] == traveler
    assert encounter["gate"] == "LANE4"


def test_poor_captures_and_bad_inputs(api: Api, lfw_dir: Path) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, format="PNG")
    reference = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    recapture = verify(api, blank.getvalue(), reference)
    assert recapture.json()["decision"] == "recapture"
    assert recapture.json()["reasons"] == ["no_face"]
    bad_photo = verify(api, reference, b"not an image")
    assert bad_photo.status_code == 422
    assert bad_photo.json()["detail"].startswith("document photo:")
    bad_mrz = verify(api, reference, reference, mrz="P<UTO\nL898")
    assert bad_mrz.status_code == 422
    assert bad_mrz.json()["type"] == "urn:entryexit:problem:invalid-mrz"
