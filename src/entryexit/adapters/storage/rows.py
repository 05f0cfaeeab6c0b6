"""What the store's modules share: rows to domain objects, and the shape of the store that
the query mixins are written against."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session

from entryexit.adapters.storage.tables import FlightRow
from entryexit.domain.model import Direction, Flight
from entryexit.services.ports import KeyProvider


class HasTransactions(Protocol):
    """The part of :class:`~entryexit.adapters.storage.store.SqlStore` its mixins use."""

    _keys: KeyProvider

    def _transaction(self) -> AbstractContextManager[Session]: ...


def flight_from_row(row: FlightRow) -> Flight:
    return Flight(
        id=row.id,
        carrier=row.carrier,
        number=row.number,
        scheduled_departure=row.scheduled_departure,
        origin=row.origin,
        destination=row.destination,
        direction=Direction(row.direction),
        created_at=row.created_at,
        gallery_version=row.gallery_version,
        gallery_staged_at=row.gallery_staged_at,
        gallery_expires_at=row.gallery_expires_at,
    )
