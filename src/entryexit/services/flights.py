"""Flights and their manifests; what officers see of a boarding."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from entryexit.domain.access import Principal
from entryexit.domain.model import Direction, Encounter, Flight, ManifestChange, ManifestTraveler
from entryexit.errors import InvalidInputError, NotFoundError
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import Clock, ManifestStatus
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

_CARRIER = re.compile(r"^[A-Z0-9]{2,3}$")
_FLIGHT_NUMBER = re.compile(r"^[0-9]{1,4}[A-Z]?$")
_PORT = re.compile(r"^[A-Z]{3,5}$")


@dataclass(frozen=True, slots=True)
class NewFlight:
    carrier: str
    number: str
    scheduled_departure: datetime
    origin: str
    destination: str
    direction: Direction


class FlightService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, model: str, audit: AuditTrail) -> None:
        self._uow = uow
        self._clock = clock
        self._model = model
        self._audit = audit

    def create(self, new: NewFlight, actor: Principal | None = None) -> Flight:
        carrier = new.carrier.strip().upper()
        number = new.number.strip().upper()
        origin, destination = new.origin.strip().upper(), new.destination.strip().upper()
        if not _CARRIER.match(carrier):
            raise InvalidInputError("carrier must be a 2- or 3-character airline or line code")
        if not _FLIGHT_NUMBER.match(number):
            raise InvalidInputError("flight number must be 1 to 4 digits and an optional letter")
        if not (_PORT.match(origin) and _PORT.match(destination)):
            raise InvalidInputError("origin and destination must be 3- to 5-letter port codes")
        if origin == destination:
            raise InvalidInputError("origin and destination must differ")
        if new.scheduled_departure.tzinfo is None:
            raise InvalidInputError("scheduled_departure needs a time zone (for example Z)")
        flight = Flight(
            id=str(uuid.uuid4()),
            carrier=carrier,
            number=number,
            scheduled_departure=new.scheduled_departure,
            origin=origin,
            destination=destination,
            direction=new.direction,
            created_at=self._clock(),
        )

        def store(uow: UnitOfWork) -> None:
            uow.flights.add(flight)
            self._audit.record(uow, "flight create", "ok", actor, "flight", flight.id)

        in_transaction(self._uow, store)
        return flight

    def get(self, flight_id: str) -> Flight:
        with self._uow(read_only=True) as uow:
            return self.get_in(uow, flight_id)

    @staticmethod
    def get_in(uow: UnitOfWork, flight_id: str) -> Flight:
        """The flight, read in the caller's unit of work."""
        flight = uow.flights.get(flight_id)
        if flight is None:
            raise NotFoundError(f"flight {flight_id} does not exist")
        return flight

    def put_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], actor: Principal | None = None
    ) -> ManifestChange:
        def replace(uow: UnitOfWork) -> ManifestChange:
            self.get_in(uow, flight_id)
            change = uow.flights.replace_manifest(flight_id, travelers, self._clock())
            self._audit.record(
                uow,
                "manifest replace",
                "ok",
                actor,
                "flight",
                flight_id,
                {"added": change.added, "removed": change.removed, "total": change.total},
            )
            return change

        return in_transaction(self._uow, replace)

    def manifest(self, flight_id: str) -> list[ManifestStatus]:
        with self._uow(read_only=True) as uow:
            self.get_in(uow, flight_id)
            return uow.flights.manifest_status(flight_id, self._model)

    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]:
        with self._uow(read_only=True) as uow:
            self.get_in(uow, flight_id)
            return uow.flights.manifest_travelers(flight_id)

    def encounters(self, flight_id: str) -> list[Encounter]:
        with self._uow(read_only=True) as uow:
            self.get_in(uow, flight_id)
            return uow.captures.encounters_of_flight(flight_id)
