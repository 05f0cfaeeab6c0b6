"""A manifest conflict's proposal, over SQLite and PostgreSQL, once the traveler's data key
changed (shredded, then a key made anew when their details came again): the proposal is
unreadable (the list still answers, as the fake store's does), and applying it is refused
(review L7); the details in force stay readable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from entryexit.domain.model import CitizenshipClass, ConflictSide, Direction, Flight
from entryexit.errors import ConflictError
from tests.integration.test_erasure_storage import DEPARTURE, NUMBER, person, store
from tests.repository_driver import RepositoryDriver

__all__ = ["store"]


def upload(store: RepositoryDriver, flight_id: str, carrier: str, surname: str) -> None:
    traveler = person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL, surname)
    store.write(
        lambda uow: uow.flights.replace_manifest(
            flight_id, [traveler], DEPARTURE, uploader_carrier=carrier
        )
    )


def test_a_proposal_sealed_under_a_replaced_key_is_unreadable_and_not_applied(
    store: RepositoryDriver,
) -> None:
    for flight_id, carrier in (("f1", "EE"), ("f2", "ZZ")):
        store.add_flight(
            Flight(flight_id, carrier, "1", DEPARTURE, "AAA", "BBB", Direction.ENTRY, DEPARTURE)
        )
    upload(store, "f1", "EE", "REAL")
    upload(store, "f2", "ZZ", "HACKED")  # EE set the details first: a conflict
    (conflict,) = store.read(lambda uow: uow.flights.manifest_conflicts())
    assert conflict.proposed is not None
    assert conflict.proposed.surname == "HACKED"
    traveler_id = conflict.traveler_id
    store.shred_traveler(traveler_id)
    # EE's next manifest brings the details again: sealed under a key made anew.
    later = person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL, "REALER")
    store.write(
        lambda uow: uow.flights.replace_manifest(
            "f1", [later], DEPARTURE + timedelta(minutes=1), uploader_carrier="EE"
        )
    )
    (conflict,) = store.read(lambda uow: uow.flights.manifest_conflicts())
    assert conflict.proposed is None
    assert conflict.kept is not None
    assert conflict.kept.surname == "REALER"
    with pytest.raises(ConflictError, match="can no longer be read"):
        store.write(
            lambda uow: uow.flights.resolve_manifest_conflict(
                conflict.id, ConflictSide.PROPOSED, DEPARTURE + timedelta(minutes=2)
            )
        )
    status = store.manifest_status("f1", "m")
    assert [s.surname for s in status] == ["REALER"]  # nothing was applied
    store.write(
        lambda uow: uow.flights.resolve_manifest_conflict(
            conflict.id, ConflictSide.KEPT, DEPARTURE + timedelta(minutes=2)
        )
    )
    assert store.read(lambda uow: uow.flights.manifest_conflicts()) == []
