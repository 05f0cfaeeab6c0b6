"""Through the API with the real model and database: each capture is held to the 1:N
threshold of its candidate's reference count (one photo enrolled, or two)."""

from __future__ import annotations

from pathlib import Path

from entryexit.biometrics.embed import SFACE_MANIFEST
from tests.conftest import lfw_image
from tests.integration.api.conftest import FOREIGN_STATE, Api, capture, manifest_row


def enrol_as(api: Api, number: str, photo: Path, source: str) -> str:
    response = api.client.post(
        f"/v1/documents/{FOREIGN_STATE}/{number}/photos",
        files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"source": source},
        headers=api.headers("officer"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["traveler_ref"])


def test_a_two_photo_entry_is_held_to_its_own_stricter_threshold(api: Api, lfw_dir: Path) -> None:
    calibration = SFACE_MANIFEST.calibration("flip")
    one, two = (calibration.gallery_threshold(1e-3, references=r) for r in (1, 2))
    assert one < two  # the shipped calibration has its own threshold per count

    flight = api.create_flight()
    rows = [manifest_row("D0000001", "POWELL"), manifest_row("D0000002", "SHARON")]
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        json={"travelers": rows},
        headers=api.headers("officer"),
    )
    assert response.status_code == 200, response.text
    powell = enrol_as(api, "D0000001", lfw_image(lfw_dir, "Colin_Powell", 1), "passport")
    assert enrol_as(api, "D0000001", lfw_image(lfw_dir, "Colin_Powell", 2), "visa") == powell
    sharon = enrol_as(api, "D0000002", lfw_image(lfw_dir, "Ariel_Sharon", 1), "passport")
    staged = api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200, staged.text

    two_photos = capture(api, str(flight["id"]), lfw_image(lfw_dir, "Colin_Powell", 3), "officer")
    assert two_photos.status_code == 200, two_photos.text
    assert (two_photos.json()["traveler_ref"], two_photos.json()["threshold"]) == (powell, two)
    one_photo = capture(api, str(flight["id"]), lfw_image(lfw_dir, "Ariel_Sharon", 2), "officer")
    assert one_photo.status_code == 200, one_photo.text
    assert (one_photo.json()["traveler_ref"], one_photo.json()["threshold"]) == (sharon, one)
