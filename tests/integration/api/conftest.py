"""The real app over a real database and the real face engine, with a key per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.biometrics.fingerprints import open_engine
from entryexit.bootstrap import Services, SqlServices, build_services
from entryexit.config import Settings
from entryexit.domain.access import Role
from tests.conftest import installed_model_dir_path, lfw_image


@dataclass
class Api:
    client: TestClient
    services: SqlServices
    keys: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def create_flight(self, carrier: str = "EE", role: str = "admin") -> dict[str, Any]:
        response = self.client.post(
            "/v1/flights",
            json={
                "carrier": carrier,
                "number": "101",
                "scheduled_departure": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
            },
            headers=self.headers(role),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def build_api(
    settings: Settings,
    engine: FaceEngine,
    app_factory: Callable[[Services], FastAPI] = create_app,
    base_url: str = "http://testserver",
) -> tuple[Api, SqlServices]:
    if not {"key_requests_per_second", "key_burst"} & settings.model_fields_set:
        # Tests walk the API with one key far faster than a person or a tool would; the
        # per-key limit itself is tested with its own settings (test_rate_limits.py).
        settings = settings.model_copy(update={"key_requests_per_second": 1e6, "key_burst": 1e6})
    keys = FileKeyProvider(settings.resolved_key_dir)
    if not keys.exists():
        keys.initialise()
    services = build_services(
        settings,
        engine=engine,
        keys=keys,
        # The installed engine (the test's data directory has no models of its own).
        fingerprint_engine=lambda: open_engine(installed_model_dir_path()),
    )
    admin = services.keys.create_first_admin()
    assert admin is not None
    api_keys = {"admin": admin}
    for role in (Role.OFFICER, Role.AUDITOR):
        api_keys[role.value] = services.keys.create(role, f"test {role.value}")[1]
    api_keys["gate"] = services.keys.create(Role.GATE, "gate EE", carrier="EE")[1]
    api_keys["gate_other_carrier"] = services.keys.create(Role.GATE, "gate ZZ", carrier="ZZ")[1]
    return Api(TestClient(app_factory(services), base_url=base_url), services, api_keys), services


@pytest.fixture
def api(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    built, services = build_api(settings, engine)
    with built.client:
        yield built
    services.uow.engine.dispose()


# The deployment's home state (Settings.home_state's default): its nationals and the holders of
# its passports are citizens (a manifest declaring them anything else is refused). Travelers
# of the other classes hold FOREIGN_STATE's passports.
HOME_STATE = "UTO"
FOREIGN_STATE = "XYZ"


def manifest_row(
    number: str, surname: str, citizenship: str = "foreign_national"
) -> dict[str, str]:
    state = HOME_STATE if citizenship == "citizen" else FOREIGN_STATE
    return {
        "surname": surname,
        "given_names": "TEST",
        "date_of_birth": "1970-01-01",
        "sex": "M",
        "nationality": state,
        "citizenship_class": citizenship,
        "document_type": "passport",
        "document_number": number,
        "issuing_state": state,
        "document_expiry": "2031-01-01",
    }


def enrol(api: Api, number: str, photo: Path, state: str = FOREIGN_STATE) -> str:
    response = api.client.post(
        f"/v1/documents/{state}/{number}/photos",
        files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
        headers=api.headers("officer"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["traveler_ref"])


def capture(api: Api, flight_id: str, photo: Path | bytes, role: str = "gate") -> Any:
    data = photo if isinstance(photo, bytes) else photo.read_bytes()
    return api.client.post(
        f"/v1/flights/{flight_id}/captures",
        files={"photo": ("capture.jpg", data, "image/jpeg")},
        data={"gate": "G7", "device": "cam-1"},
        headers=api.headers(role),
    )


PEOPLE = ("Colin_Powell", "Ariel_Sharon", "Alvaro_Uribe", "Atal_Bihari_Vajpayee")


def staged_flight(
    api: Api, lfw: Path, people: tuple[str, ...] = PEOPLE
) -> tuple[str, dict[str, str]]:
    """A flight with ``people`` on the manifest, each enrolled with photo 1, staged."""
    flight = api.create_flight()
    rows = [
        manifest_row(f"D{index:07d}", person.split("_")[-1].upper())
        for index, person in enumerate(people)
    ]
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        json={"travelers": rows},
        headers=api.headers("officer"),
    )
    assert response.status_code == 200, response.text
    refs = {
        person: enrol(api, f"D{index:07d}", lfw_image(lfw, person, 1))
        for index, person in enumerate(people)
    }
    staged = api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200, staged.text
    return str(flight["id"]), refs


@pytest.fixture
def two_instances(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> Iterator[tuple[Api, TestClient]]:
    """Two service instances (own caches and pools) on one database, as behind a balancer."""
    keys = tmp_path / "keys"  # the hosts of one deployment share their keys
    first, first_services = build_api(
        Settings(data_dir=tmp_path / "a", database_url=database_url, key_dir=keys), engine
    )
    second_services = build_services(
        Settings(data_dir=tmp_path / "b", database_url=database_url, key_dir=keys), engine=engine
    )
    second = TestClient(create_app(second_services))
    with first.client, second:
        yield first, second
    for services in (first_services, second_services):
        services.uow.engine.dispose()
