"""One way to make an encounter record, whatever recorded it (gate, officer, chip, opt-out)."""

from __future__ import annotations

import uuid
from datetime import datetime

from entryexit.domain.model import CitizenshipClass, Encounter, EncounterMethod, Flight
from entryexit.domain.policy import DataKind, Policy


def new_encounter(
    flight: Flight,
    traveler_id: str,
    method: EncounterMethod,
    *,
    gate: str,
    device: str,
    at: datetime,
    policy: Policy,
    citizenship: CitizenshipClass | None,
    score: float | None = None,
    model: str | None = None,
    capture_id: str | None = None,
) -> Encounter:
    """An encounter on ``flight``, kept as long as the policy keeps this traveler's class's
    encounter records (the shortest of any class when the class is unknown)."""
    return Encounter(
        id=str(uuid.uuid4()),
        flight_id=flight.id,
        traveler_id=traveler_id,
        direction=flight.direction,
        method=method,
        gate=gate,
        device=device,
        occurred_at=at,
        score=score,
        model=model,
        policy_version=policy.version,
        capture_id=capture_id,
        expires_at=at + policy.retention(DataKind.ENCOUNTER_RECORDS, citizenship),
    )
