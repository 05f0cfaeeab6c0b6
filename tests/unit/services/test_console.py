"""The console: the flights board, the exceptions queue and the resolution of a case, which
is one transaction (encounter, outbox message, resolution and audit event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from entryexit.domain.model import Decision, Direction, EncounterMethod, Flight
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.console import FlightStatus, Resolution
from entryexit.services.privacy import OptOutRefusedError
from tests.fake_storage import InjectedCommitError
from tests.fakes import unit_vector
from tests.unit.services.world import (
    AUDITOR,
    GATE,
    MANAGER,
    OFFICER,
    OTHER_CARRIER_OFFICER,
    World,
    traveler,
)

SEEDS = {f"N{i}": i for i in range(4)}
STRANGER = 10  # scores below 0.9 against every seed in SEEDS


def boarding(world: World, direction: Direction = Direction.ENTRY) -> Flight:
    return world.boarding(direction, [traveler(n) for n in SEEDS], seeds=SEEDS)


def no_match(world: World, flight: Flight) -> str:
    outcome = world.captures.process(GATE, flight.id, f"face:{STRANGER}".encode(), "G1", "cam")
    assert outcome.decision is Decision.NO_MATCH
    return outcome.capture_id


def test_the_board_shows_each_flights_status() -> None:
    world = World()
    scheduled = world.flight(number="1")
    manifest = world.flight(number="2", travelers=[traveler("M1")])
    staged = world.boarding(number="3", travelers=[traveler("S1")], seeds={"S1": 1})
    boarding_ = world.boarding(number="4", travelers=[traveler("B1")], seeds={"B1": 2})
    world.captures.process(GATE, boarding_.id, b"face:2", "G1", "cam")
    closed = world.flight(number="5", departure=datetime(2026, 11, 23, 8, tzinfo=UTC))
    world.flight(number="6", departure=datetime(2026, 11, 25, 8, tzinfo=UTC))  # off the board

    rows = world.console.board(OFFICER, datetime(2026, 11, 23, tzinfo=UTC), hours=36)
    statuses = {row.flight.id: row.status for row in rows}
    assert statuses == {
        closed.id: FlightStatus.CLOSED,
        scheduled.id: FlightStatus.SCHEDULED,
        manifest.id: FlightStatus.MANIFEST_RECEIVED,
        staged.id: FlightStatus.GALLERY_STAGED,
        boarding_.id: FlightStatus.BOARDING,
    }
    assert rows[0].flight.id == closed.id  # by departure
    (boarded,) = [row for row in rows if row.flight.id == boarding_.id]
    assert (boarded.counts.travelers, boarded.counts.matched, boarded.counts.outstanding) == (
        1,
        1,
        0,
    )
    with pytest.raises(PermissionDeniedError):
        world.console.board(MANAGER, datetime(2026, 11, 23, tzinfo=UTC))


def test_a_case_shows_the_capture_with_the_closest_travelers() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    (open_case,) = world.console.open_cases(OFFICER)
    assert open_case.id == capture_id

    case = world.console.case(OFFICER, capture_id)
    assert (case.capture.id, case.flight.id) == (capture_id, flight.id)
    live = unit_vector(STRANGER)
    expected = sorted(SEEDS, key=lambda n: -float(live @ unit_vector(SEEDS[n])))[:3]
    assert [c.traveler.document.number for c in case.candidates] == expected
    scores = [c.score for c in case.candidates]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(float(live @ unit_vector(SEEDS[expected[0]])), abs=1e-5)
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.resource_id) == ("console case view", capture_id)
    with pytest.raises(PermissionDeniedError):
        world.console.case(AUDITOR, capture_id)
    with pytest.raises(NotFoundError):
        world.console.case(OFFICER, "no-such-capture")


def test_a_matched_capture_is_no_case_and_cannot_clear_a_second_traveler() -> None:
    # A matched capture's id is visible to officers (the flight's encounters); resolving it as
    # a case would record a second traveler's crossing on the first one's face.
    world = World()
    flight = boarding(world)
    matched = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert matched.decision is Decision.MATCH
    encounters = dict(world.uow.tables.encounters)
    with pytest.raises(NotFoundError):
        world.console.case(OFFICER, matched.capture_id)
    for resolution in Resolution:
        with pytest.raises(NotFoundError):
            world.console.resolve(OFFICER, matched.capture_id, resolution, world.traveler_id("N2"))
    assert world.uow.tables.encounters == encounters
    assert world.uow.tables.captures[matched.capture_id].resolution is None


def test_confirming_a_case_records_a_manual_encounter_handed_to_the_crossings() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    traveler_id = world.traveler_id("N2")
    encounter_id = world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED, traveler_id)

    tables = world.uow.tables
    encounter = tables.encounters[encounter_id]  # type: ignore[index]
    assert encounter.method is EncounterMethod.MANUAL_DOCUMENT_CHECK
    assert (encounter.traveler_id, encounter.capture_id) == (traveler_id, capture_id)
    assert (encounter.gate, encounter.device) == ("console", f"officer:{OFFICER.key_id}")
    row = tables.captures[capture_id]
    assert (row.resolution, row.resolved_by) == ("confirmed", OFFICER.key_id)
    event = tables.audit_events[-1].entry
    assert (event.action, event.outcome) == ("console case resolve", "confirmed")
    assert event.details == {"encounter": encounter_id}
    (message,) = tables.outbox.values()
    assert message.payload["encounter_id"] == encounter_id
    assert world.console.open_cases(OFFICER) == []
    # The worker opens the stay with the traveler's enrolled reference as its template.
    world.crossings.wait_idle(timeout=5)
    (admission,) = world.uow.tables.admissions.values()
    assert admission.traveler_id == traveler_id
    assert admission.template is not None


def test_an_opted_out_resolution_takes_the_traveler_out_of_the_gallery() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    traveler_id = world.traveler_id("N1")
    encounter_id = world.console.resolve(OFFICER, capture_id, Resolution.OPTED_OUT, traveler_id)
    encounter = world.uow.tables.encounters[encounter_id]  # type: ignore[index]
    assert encounter.method is EncounterMethod.OPT_OUT
    restaged = world.flights.get(flight.id)
    assert restaged.gallery_version == flight.gallery_version + 1
    assert traveler_id not in world.galleries.gallery_for(restaged).traveler_ids
    row = world.uow.tables.captures[capture_id]
    assert row.resolution == "opted_out"
    # The no-match photo was the traveler's, who declined biometrics: it is not kept.
    assert row.image is None
    assert traveler_id not in {r.traveler_id for r in world.uow.tables.templates.values()}


def test_an_opt_out_refused_by_policy_leaves_the_case_open() -> None:
    world = World()
    world.load_shipped("noncitizens-mandatory.toml")
    flight = boarding(world)
    capture_id = no_match(world, flight)
    before = (len(world.uow.tables.audit_events), world.flights.get(flight.id).gallery_version)
    with pytest.raises(OptOutRefusedError):
        world.console.resolve(OFFICER, capture_id, Resolution.OPTED_OUT, world.traveler_id("N1"))
    tables = world.uow.tables
    assert tables.captures[capture_id].resolution is None
    assert tables.encounters == {}
    assert tables.outbox == {}
    assert (len(tables.audit_events), world.flights.get(flight.id).gallery_version) == before


def test_a_rejected_case_records_no_encounter_and_a_second_resolution_conflicts() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    assert world.console.resolve(OFFICER, capture_id, Resolution.REJECTED) is None
    assert world.uow.tables.encounters == {}
    assert world.uow.tables.captures[capture_id].resolution == "rejected"
    for resolution in Resolution:
        with pytest.raises(ConflictError):
            world.console.resolve(OFFICER, capture_id, resolution, world.traveler_id("N1"))
    assert world.uow.tables.encounters == {}
    assert world.actions().count("console case resolve") == 1


def test_resolutions_that_are_refused() -> None:
    world = World()
    flight = boarding(world)
    other = world.boarding(number="77", travelers=[traveler("X1")], seeds={"X1": 5})
    capture_id = no_match(world, flight)
    with pytest.raises(InvalidInputError):
        world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED)
    with pytest.raises(NotFoundError):  # not on this flight's manifest
        world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED, world.traveler_id("X1"))
    with pytest.raises(NotFoundError):
        world.console.resolve(OFFICER, "no-such-capture", Resolution.REJECTED)
    with pytest.raises(PermissionDeniedError):
        world.console.resolve(OTHER_CARRIER_OFFICER, capture_id, Resolution.REJECTED)
    with pytest.raises(PermissionDeniedError):
        world.console.resolve(AUDITOR, capture_id, Resolution.REJECTED)
    # Already processed on this flight: the manual encounter conflicts, nothing stands.
    world.captures.process(GATE, flight.id, b"face:3", "G1", "cam")
    with pytest.raises(ConflictError):
        world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED, world.traveler_id("N3"))
    assert world.uow.tables.captures[capture_id].resolution is None
    assert other.id not in {c.record.flight_id for c in world.uow.tables.captures.values()}


def test_a_resolution_is_one_transaction() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    traveler_id = world.traveler_id("N2")
    events = len(world.uow.tables.audit_events)
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):
        world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED, traveler_id)
    tables = world.uow.tables
    assert tables.captures[capture_id].resolution is None
    assert tables.encounters == {}
    assert tables.outbox == {}
    assert len(tables.audit_events) == events
    assert world.console.open_cases(OFFICER)[0].id == capture_id
    # Nothing half-done stands in the way of doing it again.
    encounter_id = world.console.resolve(OFFICER, capture_id, Resolution.CONFIRMED, traveler_id)
    assert set(world.uow.tables.encounters) == {encounter_id}


def test_viewing_evidence_is_audited_and_matched_captures_keep_no_image() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    assert world.console.capture_image(OFFICER, capture_id) == f"face:{STRANGER}".encode()
    assert world.uow.tables.audit_events[-1].entry.resource_id == capture_id
    live = unit_vector(STRANGER)
    ranked = sorted(SEEDS, key=lambda n: -float(live @ unit_vector(SEEDS[n])))
    traveler_id = world.traveler_id(ranked[0])
    photo = f"face:{SEEDS[ranked[0]]}".encode()
    assert world.console.reference_photo(OFFICER, traveler_id, case=capture_id) == photo
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.resource_type, event.resource_id) == (
        "console image view",
        "traveler",
        traveler_id,
    )
    assert event.details == {"case": capture_id}
    # On the flight but not among the three candidates (review L5): refused.
    with pytest.raises(PermissionDeniedError, match="not a candidate of this case"):
        world.console.reference_photo(OFFICER, world.traveler_id(ranked[3]), case=capture_id)
    matched = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    events = len(world.uow.tables.audit_events)
    with pytest.raises(NotFoundError):
        world.console.capture_image(OFFICER, matched.capture_id)
    assert len(world.uow.tables.audit_events) == events
    with pytest.raises(PermissionDeniedError):
        world.console.capture_image(AUDITOR, capture_id)


def test_the_feed_and_a_desk_opt_out() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    assert [c.id for c in world.console.feed(OFFICER, flight.id)] == [capture_id]
    with pytest.raises(NotFoundError):
        world.console.feed(OFFICER, "no-such-flight")
    traveler_id = world.traveler_id("N0")
    encounter_id = world.console.record_opt_out(OFFICER, flight.id, traveler_id)
    assert world.uow.tables.encounters[encounter_id].method is EncounterMethod.OPT_OUT
    _, statuses = world.console.flight(OFFICER, flight.id)
    assert {s.traveler_id for s in statuses if s.opted_out} == {traveler_id}


def test_a_case_can_be_viewed_after_the_flights_gallery_was_purged() -> None:
    world = World()
    flight = boarding(world)
    capture_id = no_match(world, flight)
    world.clock.now = flight.scheduled_departure + timedelta(hours=2, minutes=30)
    counts = world.purge.run()
    assert counts["staged_galleries"] == 1
    assert world.uow.tables.captures[capture_id].image is not None  # kept 12 h, still held
    case = world.console.case(OFFICER, capture_id)
    assert case.capture.id == capture_id
    assert case.candidates == ()


def test_an_officer_cannot_page_through_enrolled_photos_without_a_case_naming_them() -> None:
    """F6: the attacker is an officer who knows (or guesses) traveler ids. An enrolled photo
    is shown only for a case on whose flight's manifest the traveler is, or an alert about
    them: not by id alone, not through a case of another flight, not through an alert about
    someone else."""
    world = World()
    flight = boarding(world)
    case = no_match(world, flight)
    elsewhere = world.boarding(number="99", travelers=[traveler("X1")], seeds={"X1": 5})
    other_case = no_match(world, elsewhere)
    target = world.traveler_id("X1")
    events = len(world.uow.tables.audit_events)
    with pytest.raises(PermissionDeniedError):
        world.console.reference_photo(OFFICER, target)
    with pytest.raises(PermissionDeniedError):
        world.console.reference_photo(OFFICER, target, case=case)  # not on that flight
    with pytest.raises(PermissionDeniedError):
        world.console.reference_photo(OFFICER, target, alert="00000000-0000-0000-0000-0000000")
    with pytest.raises(NotFoundError):
        world.console.reference_photo(OFFICER, target, case="no-such-capture")
    assert len(world.uow.tables.audit_events) == events  # nothing was shown
    assert world.console.reference_photo(OFFICER, target, case=other_case) == b"face:5"
