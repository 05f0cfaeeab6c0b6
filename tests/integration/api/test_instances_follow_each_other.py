"""State one instance caches follows changes made on another: a manifest replaced and
restaged, or a watchlist entry added, on instance A is used by instance B's next capture."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, enrol, manifest_row, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def capture_on(client: TestClient, api: Api, flight_id: str, photo: Path) -> dict[str, object]:
    response = client.post(
        f"/v1/flights/{flight_id}/captures",
        files={"photo": ("capture.jpg", photo.read_bytes(), "image/jpeg")},
        data={"gate": "G2", "device": "cam-2"},
        headers=api.headers("officer"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_manifest_restaged_on_one_instance_is_used_by_the_next_capture_on_another(
    two_instances: tuple[Api, TestClient], lfw_dir: Path
) -> None:
    first, second = two_instances
    flight_id, refs = staged_flight(first, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    # B builds and keeps the gallery of two.
    seen = capture_on(second, first, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
    assert (seen["decision"], seen["gallery_size"]) == ("match", 2)

    # On A: a third traveler joins the manifest and the gallery is restaged.
    rows = [
        manifest_row("D0000000", "POWELL"),
        manifest_row("D0000001", "SHARON"),
        manifest_row("D0000002", "URIBE"),
    ]
    replaced = first.client.put(
        f"/v1/flights/{flight_id}/manifest",
        json={"travelers": rows},
        headers=first.headers("officer"),
    )
    assert replaced.status_code == 200, replaced.text
    uribe = enrol(first, "D0000002", lfw_image(lfw_dir, "Alvaro_Uribe", 1))
    restaged = first.client.post(
        f"/v1/flights/{flight_id}/gallery", headers=first.headers("officer")
    )
    assert restaged.status_code == 200, restaged.text

    after = capture_on(second, first, flight_id, lfw_image(lfw_dir, "Alvaro_Uribe", 2))
    assert (after["decision"], after["traveler_ref"], after["gallery_size"]) == (
        "match",
        uribe,
        3,
    )
    assert refs["Colin_Powell"] != uribe


def test_a_watchlist_entry_added_on_one_instance_is_used_by_the_next_capture_on_another(
    two_instances: tuple[Api, TestClient], lfw_dir: Path
) -> None:
    first, second = two_instances
    flight_id, _ = staged_flight(first, lfw_dir, ("Colin_Powell", "Donald_Rumsfeld"))
    # B loads the (empty) watchlist with its first capture.
    assert capture_on(second, first, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))[
        "decision"
    ] == ("match")

    manager = first.services.keys.create(Role.WATCHLIST_MANAGER, "watchlist desk")[1]
    added = first.client.post(
        "/v1/watchlist",
        files={"photo": ("w.jpg", lfw_image(lfw_dir, "Donald_Rumsfeld", 3).read_bytes())},
        data={"category": "law-enforcement", "reason_code": "WANTED-1"},
        headers={"X-API-Key": manager},
    )
    assert added.status_code == 201, added.text

    at_gate = capture_on(second, first, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 2))
    assert (at_gate["decision"], at_gate["reasons"]) == ("manual", ["officer_review"])
    alerts = first.client.get("/v1/alerts", headers=first.headers("officer")).json()
    assert [a["source"] for a in alerts] == ["gate"]
