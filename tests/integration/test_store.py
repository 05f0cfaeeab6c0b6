"""The SQL store on SQLite and PostgreSQL: migrations, manifests, encounters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from tests.fakes import StaticKeyProvider
from tests.repository_driver import RepositoryDriver

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def traveler(number: str, surname: str = "DOE") -> ManifestTraveler:
    return ManifestTraveler(
        surname=surname,
        given_names="JANE",
        date_of_birth=date(1980, 1, 1),
        sex=Sex.FEMALE,
        nationality="UTO",
        citizenship_class=CitizenshipClass.CITIZEN,
        document_type=DocumentType.PASSPORT,
        document=DocumentKey("UTO", number),
        document_expiry=date(2030, 1, 1),
    )


@pytest.fixture
def store(database_url: str) -> Iterator[RepositoryDriver]:
    engine = create_database_engine(database_url)
    migrate(engine)
    migrate(engine)  # idempotent: a second start changes nothing
    yield RepositoryDriver(SqlUnitOfWorkFactory(engine, StaticKeyProvider()))
    engine.dispose()


def add_flight(store: RepositoryDriver, flight_id: str = "f1") -> Flight:
    flight = Flight(flight_id, "EE", "1", NOW, "AAA", "BBB", Direction.EXIT, NOW)
    store.add_flight(flight)
    return flight


def test_migrations_create_every_table(store: RepositoryDriver) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "api_keys",
        "flights",
        "travelers",
        "documents",
        "manifest_entries",
        "reference_templates",
        "captures",
        "encounters",
        "alembic_version",
    } <= tables


def test_resending_a_manifest_updates_it_without_duplicates(store: RepositoryDriver) -> None:
    add_flight(store)
    first = store.replace_manifest("f1", [traveler("A1"), traveler("B2")], NOW)
    assert (first.added, first.removed, first.updated, first.total) == (2, 0, 0, 2)
    second = store.replace_manifest("f1", [traveler("B2", "SMITH"), traveler("C3")], NOW)
    assert (second.added, second.removed, second.updated, second.total) == (1, 1, 1, 2)
    status = store.manifest_status("f1", "m")
    assert sorted(s.document.number for s in status) == ["B2", "C3"]
    assert {s.surname for s in status} == {"SMITH", "DOE"}


def test_a_document_keeps_its_traveler_across_manifests_and_photos(store: RepositoryDriver) -> None:
    add_flight(store, "f1")
    add_flight(store, "f2")
    store.replace_manifest("f1", [traveler("A1")], NOW)
    store.replace_manifest("f2", [traveler("A1")], NOW)
    _, traveler_id = store.add_reference_template(
        DocumentKey("UTO", "A1"), PhotoSource.PASSPORT, b"\x07" * 8, "m", NOW
    )
    assert {s.traveler_id for s in store.manifest_status("f1", "m")} == {traveler_id}
    assert {s.traveler_id for s in store.manifest_status("f2", "m")} == {traveler_id}
    assert [(t.traveler_id, t.vector) for t in store.gallery_templates("f2", "m")] == [
        (traveler_id, b"\x07" * 8)
    ]
    assert store.gallery_templates("f2", "other-model") == []


def test_one_encounter_per_traveler_per_flight(store: RepositoryDriver) -> None:
    add_flight(store)
    store.replace_manifest("f1", [traveler("A1")], NOW)
    traveler_id = store.manifest_status("f1", "m")[0].traveler_id

    def encounter(encounter_id: str) -> Encounter:
        return Encounter(
            encounter_id,
            "f1",
            traveler_id,
            Direction.EXIT,
            EncounterMethod.BIOMETRIC,
            "G1",
            "cam",
            NOW,
            0.8,
            "m",
            "baseline-0",
            None,
        )

    assert store.add_encounter(encounter("e1")) is True
    assert store.add_encounter(encounter("e2")) is False
    assert [e.id for e in store.list_encounters("f1")] == ["e1"]
    assert store.list_encounters("f1")[0].occurred_at == NOW


def test_staging_bumps_the_gallery_version(store: RepositoryDriver) -> None:
    add_flight(store)
    assert store.mark_gallery_staged("f1", NOW) == 1
    assert store.mark_gallery_staged("f1", NOW) == 2
    flight = store.get_flight("f1")
    assert flight is not None
    assert flight.staged
    assert flight.gallery_staged_at == NOW
