"""Drives the SQL repositories one unit of work per call, for tests that exercise storage
behaviour (sealing, shredding, rotation, constraints) without a service in between."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.model import (
    DocumentKey,
    Encounter,
    Flight,
    ManifestChange,
    ManifestTraveler,
    PhotoSource,
)
from entryexit.services.ports import ManifestStatus, StoredTemplate
from entryexit.services.unit_of_work import UnitOfWork, in_transaction

T = TypeVar("T")


class RepositoryDriver:
    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self.factory = factory
        self.engine = factory.engine

    def write(self, work: Callable[[UnitOfWork], T]) -> T:
        return in_transaction(self.factory, work)

    def read(self, work: Callable[[UnitOfWork], T]) -> T:
        with self.factory(read_only=True) as uow:
            return work(uow)

    def add_flight(self, flight: Flight) -> None:
        self.write(lambda uow: uow.flights.add(flight))

    def get_flight(self, flight_id: str) -> Flight | None:
        return self.read(lambda uow: uow.flights.get(flight_id))

    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        return self.write(lambda uow: uow.flights.mark_gallery_staged(flight_id, now, expires_at))

    def replace_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange:
        return self.write(lambda uow: uow.flights.replace_manifest(flight_id, travelers, now))

    def manifest_status(self, flight_id: str, model: str) -> list[ManifestStatus]:
        return self.read(lambda uow: uow.flights.manifest_status(flight_id, model))

    def add_reference_template(
        self,
        document: DocumentKey,
        source: PhotoSource,
        vector: bytes,
        model: str,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> tuple[str, str]:
        return self.write(
            lambda uow: uow.travelers.add_reference_template(
                document, source, vector, model, now, expires_at
            )
        )

    def traveler_for_document(self, document: DocumentKey) -> str | None:
        return self.read(lambda uow: uow.travelers.traveler_for_document(document))

    def gallery_templates(
        self, flight_id: str, model: str, unopenable: set[str] | None = None
    ) -> list[StoredTemplate]:
        return self.read(lambda uow: uow.travelers.gallery_templates(flight_id, model, unopenable))

    def shred_traveler(self, traveler_id: str) -> int:
        return self.write(lambda uow: uow.travelers.shred(traveler_id))

    def add_encounter(self, encounter: Encounter) -> bool:
        return self.write(lambda uow: uow.captures.add_encounter(encounter))

    def list_encounters(self, flight_id: str) -> list[Encounter]:
        return self.read(lambda uow: uow.captures.encounters_of_flight(flight_id))

    def rotate_data_keys(self, batch_size: int = 500) -> int:
        rewrapped = 0
        while batch := self.write(lambda uow: uow.data_keys.rotate_batch(batch_size)):
            rewrapped += batch
        return rewrapped

    def data_keys_by_kek(self) -> dict[str, int]:
        return self.read(lambda uow: uow.data_keys.counts_by_kek())
