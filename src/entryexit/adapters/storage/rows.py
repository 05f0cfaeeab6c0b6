"""Rows to domain objects, where more than one repository needs the conversion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from entryexit.adapters.storage.tables import FlightRow
from entryexit.domain.model import Direction, Flight


def flight_from_row(row: FlightRow | Row[Any]) -> Flight:
    """An entity, or a Core row of the flights table's columns."""
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
