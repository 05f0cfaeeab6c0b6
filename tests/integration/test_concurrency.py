"""Two service processes' worth of state on one PostgreSQL: one encounter per traveler."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from tests.conftest import lfw_image
from tests.integration.api.conftest import build_api, staged_flight

pytestmark = [pytest.mark.postgres, pytest.mark.models, pytest.mark.lfw]


def test_concurrent_matches_of_one_traveler_record_one_encounter(
    postgres_url: str, engine: FaceEngine, lfw_dir: Path, tmp_path: Path
) -> None:
    # Two independent service instances (separate gallery caches and connection pools),
    # as two uvicorn workers or two hosts would be.
    keys = tmp_path / "keys"  # shared, as the hosts of one deployment share their KEK
    first, first_services = build_api(
        Settings(data_dir=tmp_path / "a", database_url=postgres_url, key_dir=keys), engine
    )
    second_services_settings = Settings(
        data_dir=tmp_path / "b", database_url=postgres_url, key_dir=keys
    )
    from fastapi.testclient import TestClient

    from entryexit.api.app import create_app
    from entryexit.bootstrap import build_services

    second_services = build_services(second_services_settings, engine=engine)
    second_client = TestClient(create_app(second_services))
    try:
        flight_id, refs = staged_flight(first, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
        photos = [lfw_image(lfw_dir, "Colin_Powell", n).read_bytes() for n in range(2, 14)]

        def send(index_and_photo: tuple[int, bytes]) -> dict[str, object]:
            index, photo = index_and_photo
            client = first.client if index % 2 == 0 else second_client
            response = client.post(
                f"/v1/flights/{flight_id}/captures",
                files={"photo": ("c.jpg", photo, "image/jpeg")},
                data={"gate": f"G{index % 2}", "device": f"cam-{index}"},
                headers=first.headers("officer"),
            )
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(send, enumerate(photos)))
        matched = [r for r in results if r["decision"] == "match"]
        assert len(matched) >= len(photos) - 2  # a hard photo may fall below threshold
        assert all(r["traveler_ref"] == refs["Colin_Powell"] for r in matched)
        assert sum(1 for r in matched if not r["already_processed"]) == 1
        encounters = first.client.get(
            f"/v1/flights/{flight_id}/encounters", headers=first.headers("auditor")
        ).json()
        assert len(encounters) == 1
    finally:
        first.client.close()
        second_client.close()
        first_services.uow.engine.dispose()
        second_services.uow.engine.dispose()
