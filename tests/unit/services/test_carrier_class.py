"""Whose word a traveler's class is, over the fake store (the SQL store's twin tests are
``tests/integration/api/test_carrier_class.py``): the agency restating a carrier's class makes
it the agency's; a flight's encounters take the class its own carrier sent where a rival
carrier holds the details; no key or account bound to a carrier opens a case."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from entryexit.domain.access import Principal, Role
from entryexit.domain.model import CitizenshipClass, Decision, Flight
from entryexit.errors import PermissionDeniedError
from entryexit.services.console import Resolution
from tests.unit.services.test_fingerprints import VISITOR, finger
from tests.unit.services.world import (
    GATE,
    OFFICER,
    OTHER_CARRIER_OFFICER,
    World,
    traveler,
)

EE_DESK = Principal("k-desk-ee", "airline desk", Role.OFFICER, carrier="EE")
CITIZEN_V1 = replace(traveler("V1"), citizenship_class=CitizenshipClass.CITIZEN)


def test_the_agency_restating_a_carriers_citizen_class_deletes_the_prints() -> None:
    world = World()
    flight = world.flight()
    world.flights.put_manifest(flight.id, [traveler("V1")], EE_DESK)
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    world.flights.put_manifest(flight.id, [CITIZEN_V1], EE_DESK)
    world.flights.put_manifest(flight.id, [CITIZEN_V1], EE_DESK)  # a carrier's restatement
    assert len(world.uow.tables.fingerprints) == 1
    world.flights.put_manifest(flight.id, [CITIZEN_V1], OFFICER)  # the agency's, unchanged
    assert world.uow.tables.fingerprints == {}
    assert "fingerprint purge" in world.actions()


def rival_first(world: World) -> tuple[Flight, Flight]:
    """ZZ lists V1 first as a citizen; EE's manifest says foreign national."""
    rival = world.flight(carrier="ZZ", number="77")
    world.flights.put_manifest(rival.id, [CITIZEN_V1], OTHER_CARRIER_OFFICER)
    real = world.flight()
    world.flights.put_manifest(real.id, [traveler("V1")], EE_DESK)
    return rival, real


def test_a_flight_takes_its_own_carriers_class_where_a_rival_holds_the_details() -> None:
    world = World()
    rival, real = rival_first(world)
    v1 = world.traveler_id("V1")
    with world.uow(read_only=True) as uow:
        assert uow.travelers.citizenship_class(v1, real) is CitizenshipClass.FOREIGN_NATIONAL
        assert uow.travelers.citizenship_class(v1, rival) is CitizenshipClass.CITIZEN
        assert uow.travelers.citizenship_class(v1) is CitizenshipClass.CITIZEN  # in force
    # Details the agency sets govern every flight.
    world.flights.put_manifest(real.id, [CITIZEN_V1], OFFICER)
    with world.uow(read_only=True) as uow:
        assert uow.travelers.citizenship_class(v1, real) is CitizenshipClass.CITIZEN


def test_an_encounter_on_a_flight_is_kept_by_its_own_carriers_class() -> None:
    world = World()
    _, real = rival_first(world)
    world.enrol("V1", 1)
    world.galleries.stage(real.id, OFFICER)
    outcome = world.captures.process(GATE, real.id, b"face:1", "G1", "cam")
    assert outcome.decision is Decision.MATCH
    (encounter,) = world.uow.tables.encounters.values()
    assert encounter.expires_at is not None
    assert encounter.expires_at - encounter.occurred_at == timedelta(hours=43800)


def test_an_officers_manual_encounter_on_a_flight_is_kept_by_its_own_carriers_class() -> None:
    world = World()
    _, real = rival_first(world)
    world.enrol("V1", 1)
    world.galleries.stage(real.id, OFFICER)
    stranger = world.captures.process(GATE, real.id, b"face:10", "G1", "cam")
    assert stranger.decision is Decision.NO_MATCH
    world.console.resolve(
        OFFICER, stranger.capture_id, Resolution.CONFIRMED, world.traveler_id("V1")
    )
    (encounter,) = world.uow.tables.encounters.values()
    assert encounter.expires_at is not None
    assert encounter.expires_at - encounter.occurred_at == timedelta(hours=43800)


def test_a_case_is_refused_to_any_key_or_account_bound_to_a_carrier() -> None:
    """Review L7: the case photo's "serves the carrier" check could never refuse. What keeps a
    carrier's staff out of cases (another carrier's or their own): ``case:resolve`` and
    ``image:view`` are cross-carrier permissions, which a bound principal never has. The
    attacker holds a bound officer key (console accounts carry no carrier today)."""
    world = World()
    flight = world.boarding(travelers=[traveler("N1")], seeds={"N1": 1})
    stranger = world.captures.process(GATE, flight.id, b"face:10", "G1", "cam")
    assert stranger.decision is Decision.NO_MATCH
    case = stranger.capture_id
    n1 = world.traveler_id("N1")
    events = len(world.uow.tables.audit_events)
    for bound in (OTHER_CARRIER_OFFICER, EE_DESK):
        with pytest.raises(PermissionDeniedError, match="may not do this"):
            world.console.case(bound, case)
        with pytest.raises(PermissionDeniedError, match="may not do this"):
            world.console.capture_image(bound, case)
        with pytest.raises(PermissionDeniedError, match="may not do this"):
            world.console.reference_photo(bound, n1, case=case)
    assert len(world.uow.tables.audit_events) == events  # nothing was viewed
    # The agency's officer works the case.
    assert world.console.case(OFFICER, case).capture.id == case
    assert world.console.capture_image(OFFICER, case) == b"face:10"
    assert world.console.reference_photo(OFFICER, n1, case=case) == b"face:1"
