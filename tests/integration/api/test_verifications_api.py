"""1:1 verification against a document photo, through the API."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from PIL import Image

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests import chip_builder
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, build_api, enrol, manifest_row

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
    row = manifest_row("L898902C3", "ERIKSSON", "citizen")
    sent = api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=[row], headers=api.headers("officer")
    )
    assert sent.status_code == 200, sent.text
    reference = lfw_image(lfw_dir, "Colin_Powell", 1)
    traveler = enrol(api, "L898902C3", reference, "UTO")
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


def test_a_gate_cannot_vouch_for_an_identity_with_a_photo_it_supplies(
    api: Api, lfw_dir: Path
) -> None:
    """The attack: a partner's gate sends its own "document photo" and any document number on
    its flight. It may learn whether two photos match, but no biometric encounter is recorded
    for a traveler whose photo it never had."""
    flight = api.create_flight(carrier="EE")
    row = manifest_row("L898902C3", "ERIKSSON", "citizen")
    sent = api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=[row], headers=api.headers("officer")
    )
    assert sent.status_code == 200, sent.text
    impostor = lfw_image(lfw_dir, "Ariel_Sharon", 1).read_bytes()
    response = verify(
        api,
        lfw_image(lfw_dir, "Ariel_Sharon", 2).read_bytes(),
        impostor,
        role="gate",
        mrz=TD3,
        flight_id=flight["id"],
        gate="LANE4",
    )
    assert response.json() == {"decision": "match", "reasons": []}
    encounters = api.client.get(
        f"/v1/flights/{flight['id']}/encounters", headers=api.headers("officer")
    ).json()
    assert encounters == []


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


def chip_files(lfw: Path, person: str, pki: chip_builder.Pki, jpeg2000: bool) -> dict[str, bytes]:
    image = Image.open(lfw_image(lfw, person, 1))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG2000" if jpeg2000 else "JPEG")
    groups = {
        1: chip_builder.dg1(TD3.split("\n")),
        2: chip_builder.dg2(buffer.getvalue(), jpeg2000, *image.size),
    }
    return {"dg1": groups[1], "dg2": groups[2], "sod": chip_builder.sod(groups, pki)}


@pytest.fixture
def chip_api(engine: FaceEngine, tmp_path: Path) -> Iterator[tuple[Api, chip_builder.Pki]]:
    pki = chip_builder.make_pki()
    cscas = tmp_path / "csca"
    cscas.mkdir()
    (cscas / "utopia.pem").write_bytes(pki.csca.public_bytes(serialization.Encoding.PEM))
    built, services = build_api(Settings(data_dir=tmp_path / "data", csca_dir=cscas), engine)
    with built.client:
        yield built, pki
    services.uow.engine.dispose()


def chip_verify(api: Api, capture: bytes, files: dict[str, bytes], **form: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        "/v1/verifications",
        files={"capture": ("c.jpg", capture, "image/jpeg")}
        | {name: (name, data, "application/octet-stream") for name, data in files.items()},
        data=form,
        headers=api.headers("officer"),
    )


@pytest.mark.parametrize("jpeg2000", [False, True])
def test_chip_photo_verification_with_every_check(
    chip_api: tuple[Api, chip_builder.Pki], lfw_dir: Path, jpeg2000: bool
) -> None:
    api, pki = chip_api
    files = chip_files(lfw_dir, "Colin_Powell", pki, jpeg2000)
    response = chip_verify(api, lfw_image(lfw_dir, "Colin_Powell", 4).read_bytes(), files, mrz=TD3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "match"
    assert body["chip_checks"] == {
        "dg1_matches_printed_mrz": "passed",
        "dg1_hash": "passed",
        "dg2_hash": "passed",
        "signature": "passed",
        "csca_chain": "passed",
    }


def test_a_tampered_chip_photo_goes_to_an_officer(
    chip_api: tuple[Api, chip_builder.Pki], lfw_dir: Path
) -> None:
    api, pki = chip_api
    genuine = chip_files(lfw_dir, "Colin_Powell", pki, jpeg2000=False)
    impostor = chip_files(lfw_dir, "Ariel_Sharon", pki, jpeg2000=False)
    # The impostor's face in DG2, under the genuine document's signed security object.
    files = {**genuine, "dg2": impostor["dg2"]}
    response = chip_verify(api, lfw_image(lfw_dir, "Ariel_Sharon", 2).read_bytes(), files)
    body = response.json()
    assert body["decision"] == "manual"
    assert body["reasons"] == ["chip_check_failed:dg2_hash"]
    assert body["chip_checks"]["dg2_hash"] == "failed"
    assert body["chip_checks"]["signature"] == "passed"
    assert body["similarity"] is None


def test_a_chip_that_disagrees_with_the_printed_mrz(
    chip_api: tuple[Api, chip_builder.Pki], lfw_dir: Path
) -> None:
    api, pki = chip_api
    files = chip_files(lfw_dir, "Colin_Powell", pki, jpeg2000=False)
    other = (
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
    )
    other = other.replace("ANNA<MARIA<<", "ANNA<MARIE<<")
    response = chip_verify(
        api, lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes(), files, mrz=other
    )
    assert response.json()["decision"] == "manual"
    assert "chip_check_failed:dg1_matches_printed_mrz" in response.json()["reasons"]


def test_enrolment_by_mrz_names_the_same_document_as_the_path(api: Api, lfw_dir: Path) -> None:
    photo = lfw_image(lfw_dir, "Colin_Powell", 1)
    by_path = enrol(api, "L898902C3", photo, "UTO")
    by_mrz = api.client.post(
        "/v1/documents/photos",
        files={"photo": ("p.jpg", photo.read_bytes(), "image/jpeg")},
        data={"mrz": TD3, "source": "chip"},
        headers=api.headers("officer"),
    )
    assert by_mrz.status_code == 201, by_mrz.text
    assert by_mrz.json()["traveler_ref"] == by_path
    unnamed = api.client.post(
        "/v1/documents/photos",
        files={"photo": ("p.jpg", photo.read_bytes(), "image/jpeg")},
        headers=api.headers("officer"),
    )
    assert unnamed.status_code == 422


def test_a_chip_whose_signer_no_csca_vouches_for_goes_to_an_officer(
    api: Api, lfw_dir: Path
) -> None:
    # No CSCA store: the signature verifies under the chip's own (self-made) signer, which
    # proves nothing about who made the chip.
    files = chip_files(lfw_dir, "Colin_Powell", chip_builder.make_pki(), jpeg2000=False)
    response = chip_verify(api, lfw_image(lfw_dir, "Colin_Powell", 4).read_bytes(), files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "manual"
    assert body["reasons"] == ["chip_chain_not_checked"]
    assert body["chip_checks"]["signature"] == "passed"
    assert body["chip_checks"]["csca_chain"] == "not_checked"


@pytest.mark.parametrize(
    "fields",
    [
        {"dg2", "dg1", "ef_sod"},  # the security object under a name the endpoint ignores
        {"dg1", "sod"},  # chip files without the DG2 they vouch for (document photo sent)
    ],
)
def test_chip_files_in_the_wrong_field_are_refused(
    chip_api: tuple[Api, chip_builder.Pki], lfw_dir: Path, fields: set[str]
) -> None:
    api, pki = chip_api
    files = chip_files(lfw_dir, "Colin_Powell", pki, jpeg2000=False)
    files["ef_sod"] = files["sod"]
    sent = {name: data for name, data in files.items() if name in fields}
    if "dg2" not in fields:
        sent["document_photo"] = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    response = chip_verify(api, lfw_image(lfw_dir, "Colin_Powell", 4).read_bytes(), sent)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
