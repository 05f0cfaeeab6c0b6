"""Fingerprints where the officer works: which console cases are marked "prints possible",
a 1:1 made from a case (the match is the traveler's encounter, linked to the capture, and
closes the case in the same transaction), and a flight's prints prepared when its gallery is
staged rather than at its first search."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import date, timedelta

import pytest

from entryexit.biometrics.fingerprints import fingerprint_threshold
from entryexit.domain.fingerprints import FingerprintDecision
from entryexit.domain.model import CitizenshipClass, Decision, DocumentKey, EncounterMethod, Flight
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.fingerprints import FingerprintService, SubmittedPrint
from entryexit.services.unit_of_work import in_transaction
from entryexit.services.watchlist import Disposition
from tests.fakes import FakeFingerprintEngine, fake_print
from tests.unit.services.test_watchlist import listed
from tests.unit.services.world import (
    AUDITOR,
    FOREIGN_STATE,
    GATE,
    HOME_STATE,
    MANAGER,
    OFFICER,
    OTHER_CARRIER_OFFICER,
    SUPERVISOR,
    World,
    policy_with,
    traveler,
)

SEEDS = {"V1": 1, "V2": 2, "C1": 3, "K1": 4}
STRANGER = 10


def finger(position: int, grey: int) -> SubmittedPrint:
    return SubmittedPrint(position, fake_print(grey), ppi=500)


def boarding(world: World) -> Flight:
    travelers = [
        traveler("V1"),
        traveler("V2"),
        traveler("C1", CitizenshipClass.CITIZEN),
        traveler("K1", born=date(2020, 1, 1)),
    ]
    return world.boarding(travelers=travelers, seeds=SEEDS)


def gate_capture(world: World, flight: Flight, seed: int) -> tuple[str, Decision]:
    outcome = world.captures.process(GATE, flight.id, f"face:{seed}".encode(), "G1", "cam")
    return outcome.capture_id, outcome.decision


def test_a_no_match_is_marked_only_where_a_traveler_still_to_board_has_prints() -> None:
    world = World()
    flight = boarding(world)
    capture_id, decision = gate_capture(world, flight, STRANGER)
    assert decision is Decision.NO_MATCH
    cases = world.console.open_cases(OFFICER)
    # Nobody on the flight has prints yet: nothing to compare with.
    assert world.console.prints_possible(OFFICER, cases) == frozenset()
    assert not world.console.case(OFFICER, capture_id).prints_possible
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40)])
    assert world.console.prints_possible(OFFICER, cases) == {capture_id}
    assert world.console.case(OFFICER, capture_id).prints_possible
    # Once V1 has boarded (face match), no one with prints is left to be this person.
    _, matched = gate_capture(world, flight, SEEDS["V1"])
    assert matched is Decision.MATCH
    assert world.console.prints_possible(OFFICER, world.console.open_cases(OFFICER)) == frozenset()


def test_the_marking_follows_the_policy_and_is_for_officers_only() -> None:
    world = World()
    flight = boarding(world)
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 40)])
    capture_id, _ = gate_capture(world, flight, STRANGER)
    cases = world.console.open_cases(OFFICER)
    assert world.console.prints_possible(OFFICER, cases) == {capture_id}
    # A later policy that takes prints from permanent residents only: V2's prints (a foreign
    # national's) no longer count.
    text = policy_with("prints-pr-only")
    text = text.replace(
        'classes = ["foreign_national", "permanent_resident"]', 'classes = ["permanent_resident"]'
    )
    world.load_policy(text)
    world.advance(days=100)
    assert world.console.prints_possible(OFFICER, cases) == frozenset()
    with pytest.raises(PermissionDeniedError):  # the auditor does not even see the queue
        world.console.prints_possible(AUDITOR, cases)


def test_a_match_from_a_case_is_the_encounter_and_closes_the_case_together() -> None:
    world = World()
    flight = boarding(world)
    world.fingerprints.enrol(
        OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40), finger(7, 80)]
    )
    capture_id, _ = gate_capture(world, flight, STRANGER)
    v1 = DocumentKey(FOREIGN_STATE, "V1")

    miss = world.fingerprints.verify(
        OFFICER, v1, [finger(2, 41), finger(7, 81)], flight.id, "desk", capture_id
    )
    assert (miss.decision, miss.encounter_id, miss.resolved_case) == (
        FingerprintDecision.NO_MATCH,
        None,
        None,
    )
    assert world.uow.tables.captures[capture_id].resolution is None

    hit = world.fingerprints.verify(
        OFFICER, v1, [finger(2, 40), finger(7, 80)], flight.id, "desk", capture_id
    )
    assert hit.decision is FingerprintDecision.MATCH
    assert hit.resolved_case == capture_id
    encounter = world.uow.tables.encounters[hit.encounter_id]  # type: ignore[index]
    assert (encounter.method, encounter.capture_id, encounter.model) == (
        EncounterMethod.BIOMETRIC,
        capture_id,
        "nbis-mcc-v1",
    )
    row = world.uow.tables.captures[capture_id]
    assert (row.resolution, row.resolved_by) == ("confirmed", OFFICER.key_id)
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.outcome) == ("fingerprint verify", "match")
    assert event.details["capture"] == capture_id
    assert event.details["encounter"] == hit.encounter_id
    assert world.console.open_cases(OFFICER) == []
    # A closed case takes no second check, and a case of another flight is not this one's.
    with pytest.raises(ConflictError, match="already resolved"):
        world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], flight.id, "desk", capture_id)
    other = world.flight(number="99", travelers=[traveler("W1")])
    with pytest.raises(NotFoundError):
        world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], other.id, "desk", capture_id)
    with pytest.raises(InvalidInputError, match="flight"):
        world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], None, "desk", capture_id)


def test_a_match_of_someone_not_on_the_flight_leaves_the_case_open() -> None:
    world = World()
    flight = boarding(world)
    elsewhere = world.flight(number="77", travelers=[traveler("W1")])
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "W1"), [finger(2, 40)])
    capture_id, _ = gate_capture(world, flight, STRANGER)
    result = world.fingerprints.verify(
        OFFICER, DocumentKey(FOREIGN_STATE, "W1"), [finger(2, 40)], flight.id, "desk", capture_id
    )
    assert result.decision is FingerprintDecision.MATCH
    assert (result.encounter_id, result.resolved_case) == (None, None)
    assert world.uow.tables.captures[capture_id].resolution is None
    assert world.flights.encounters(elsewhere.id) == []


def test_staging_prepares_the_flights_prints_before_the_first_search() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1"), traveler("V2")])
    world.fingerprints.enrol(
        OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40), finger(7, 80)]
    )
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 60)])
    engine = world.fingerprints.engine
    assert isinstance(engine, FakeFingerprintEngine)
    assert engine.prepared == []
    world.galleries.stage(flight.id, OFFICER)
    assert world.fingerprints.wait_prepared(flight.id, timeout=10)
    prepared = list(engine.prepared)
    assert sorted(int(t.finger) for t in prepared) == [2, 2, 7]
    # The search compares against the very templates prepared (the engine's cache is keyed by
    # template identity): none is opened or decoded again.
    found = world.fingerprints.search(OFFICER, flight.id, [finger(2, 60)])
    assert found.candidates[0].traveler_id == world.traveler_id("V2")
    references = list(world.fingerprints._references.values())
    assert all(any(r is p for p in prepared) for r in references)
    assert len(references) == 3


def test_staging_a_flight_without_prints_does_not_load_the_engine() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1")])
    world.galleries.stage(flight.id, OFFICER)
    assert world.fingerprints._engine is None
    assert world.fingerprints.wait_prepared(flight.id, timeout=0)


def test_face_evidence_is_added_only_where_the_face_is_calibrated() -> None:
    world = World()
    flight = boarding(world)
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40)])
    result = world.fingerprints.verify(
        OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40)], flight.id
    )

    def service(**face: object) -> FingerprintService:
        return FingerprintService(
            world.uow,
            FakeFingerprintEngine,
            world.clock,
            world.policies,
            world.services.audit,
            fingerprint_threshold,
            **face,  # type: ignore[arg-type]
        )

    # Without a face calibration (explicit face thresholds) there is nothing to sum.
    assert service().with_face(result, 0.5) is None
    calibrated = service(face_calibration=lambda: {1e-2: 0.30, 1e-3: 0.37, 1e-4: 0.41})
    assert calibrated.with_face(result, None) is None
    together = calibrated.with_face(result, 0.37)
    assert together is not None
    # A perfect fake finger is capped at the rarest calibrated finger rate (1e-4).
    assert (together.face, together.finger) == pytest.approx((3.0, 4.0))
    assert together.reaches_target
    # It is shown, never recorded: the decision and the encounter are the fingers' alone.
    assert result.decision is FingerprintDecision.MATCH


def test_watchlist_prints_raise_an_alert_for_an_officer_and_decide_nothing() -> None:
    world = World()
    flight = boarding(world)
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40)])
    for principal in (OFFICER, GATE, AUDITOR):
        with pytest.raises(PermissionDeniedError):
            world.fingerprints.add_to_watchlist(principal, [finger(2, 99)], "wanted", "W1")
    with pytest.raises(InvalidInputError, match="category"):
        world.fingerprints.add_to_watchlist(MANAGER, [finger(2, 99)], "a name, say", "W1")
    entry_id = world.fingerprints.add_to_watchlist(
        MANAGER, [finger(2, 99), finger(7, 98)], "wanted", "W1"
    )
    added = world.uow.tables.audit_events[-1].entry
    assert (added.action, added.details["fingers"]) == ("watchlist add", "2,7")

    # The listed person presents V1's document at the desk: their prints do not match V1's,
    # and the list's entry is hit: an alert naming the document's traveler, for an officer.
    capture_id, _ = gate_capture(world, flight, STRANGER)
    result = world.fingerprints.verify(
        OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 99)], flight.id, "desk", capture_id
    )
    assert result.decision is FingerprintDecision.NO_MATCH
    assert result.alerts == 1
    (alert,) = world.watchlist.alerts(OFFICER, "open")
    assert (alert.source, alert.watchlist_entry_id, alert.model) == (
        "fingerprint",
        entry_id,
        "nbis-mcc-v1",
    )
    # The prints were not V1's (no match): the alert is the case's, and names no traveler.
    assert (alert.traveler_id, alert.capture_id, alert.flight_id) == (None, capture_id, flight.id)
    assert "watchlist alert" in world.actions()
    # Nothing else changes: the case stays open, no encounter; the officer dispositions it.
    assert world.uow.tables.captures[capture_id].resolution is None
    assert world.flights.encounters(flight.id) == []
    world.watchlist.disposition(OFFICER, alert.id, Disposition.DISMISSED_OTHER, "checked")
    assert world.watchlist.alerts(OFFICER, "open") == []

    # A flight search is screened too; prints not on the list raise nothing.
    found = world.fingerprints.search(OFFICER, flight.id, [finger(7, 98)])
    assert found.alerts == 1
    clean = world.fingerprints.search(OFFICER, flight.id, [finger(2, 40)])
    assert clean.alerts == 0
    # Without a flight (the API's bare 1:1) there is nothing to attach an alert to.
    bare = world.fingerprints.verify(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 99)])
    assert bare.alerts == 0


def test_a_manual_case_is_marked_by_its_own_travelers_prints() -> None:
    world = World()
    listed(world, SEEDS["V1"])  # V1's face is on the list: the gate sends V1 to an officer
    flight = boarding(world)
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 40)])
    capture_id, decision = gate_capture(world, flight, SEEDS["V1"])
    assert decision is Decision.MANUAL
    cases = world.console.open_cases(OFFICER)
    # The gate named V1, who has no prints: V2's prints are no use for this case.
    assert world.console.prints_possible(OFFICER, cases) == frozenset()
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 60)])
    assert world.console.prints_possible(OFFICER, cases) == {capture_id}


def test_a_case_check_keeps_its_prints_for_the_officer_who_took_them() -> None:
    world = World()
    flight = boarding(world)
    v1 = DocumentKey(FOREIGN_STATE, "V1")
    world.fingerprints.enrol(OFFICER, v1, [finger(2, 40), finger(7, 80)])
    capture_id, _ = gate_capture(world, flight, STRANGER)
    other_case, _ = gate_capture(world, flight, STRANGER + 1)
    hit = world.fingerprints.verify(
        OFFICER, v1, [finger(2, 40), finger(7, 80)], flight.id, "desk", capture_id
    )
    assert hit.decision is FingerprintDecision.MATCH
    views = world.fingerprints.case_prints(OFFICER, capture_id)
    assert [v.finger for v in views] == [2, 7]
    for view in views:
        assert view.enrolled is not None
        assert len(view.pairs) == len(view.live.minutiae) == 20  # the fake pairs equal minutiae
        assert view.live.quality == 60
        assert view.has_image
    image = world.fingerprints.case_print_image(OFFICER, capture_id, views[0].id)
    assert image.startswith(b"\x89PNG")
    viewed = list(world.audit.all_events("fingerprint image view"))
    assert [(e.entry.actor_key_id, e.entry.resource_id) for e in viewed] == [
        (OFFICER.key_id, capture_id)
    ]
    # Nobody else: the supervisor reading the case sees none, and is refused the image; an
    # auditor, a gate, an officer of another carrier are refused; a guessed URL naming
    # another case finds nothing.
    assert world.fingerprints.case_prints(SUPERVISOR, capture_id) == ()
    for stranger in (SUPERVISOR, AUDITOR, GATE, OTHER_CARRIER_OFFICER):
        with pytest.raises(PermissionDeniedError):
            world.fingerprints.case_print_image(stranger, capture_id, views[0].id)
    with pytest.raises(NotFoundError):
        world.fingerprints.case_print_image(OFFICER, other_case, views[0].id)
    assert len(list(world.audit.all_events("fingerprint image view"))) == 1


def test_a_policy_that_keeps_no_case_prints_keeps_none() -> None:
    world = World()
    text = policy_with("no-case-prints").replace(
        "target_far = 0.001  # the officer's 1:1 check",
        "target_far = 0.001\nkeep_case_prints = false",
    )
    assert "keep_case_prints = false" in text
    world.load_policy(text)
    world.advance(days=100)
    flight = boarding(world)
    v1 = DocumentKey(FOREIGN_STATE, "V1")
    world.fingerprints.enrol(OFFICER, v1, [finger(2, 40)])
    capture_id, _ = gate_capture(world, flight, STRANGER)
    hit = world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], flight.id, "desk", capture_id)
    assert hit.decision is FingerprintDecision.MATCH
    assert world.uow.tables.case_prints == {}
    assert world.fingerprints.case_prints(OFFICER, capture_id) == ()


def test_a_check_outside_a_case_keeps_no_prints() -> None:
    world = World()
    flight = boarding(world)
    v1 = DocumentKey(FOREIGN_STATE, "V1")
    world.fingerprints.enrol(OFFICER, v1, [finger(2, 40)])
    world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], flight.id, "desk")
    assert world.uow.tables.case_prints == {}


def test_the_watchlist_of_prints_is_held_to_its_size_limit() -> None:
    # Every officer check with a flight compares the live prints with every listed entry, in
    # the request: a manager adding entries without end would slow every desk.
    world = World()
    capped = FingerprintService(
        world.uow,
        FakeFingerprintEngine,
        world.clock,
        world.policies,
        world.services.audit,
        fingerprint_threshold,
        max_watchlist_print_entries=2,
    )
    for minutiae in (91, 92):
        capped.add_to_watchlist(MANAGER, [finger(2, minutiae)], "wanted", "W1")
    with pytest.raises(ConflictError, match="limit"):
        capped.add_to_watchlist(MANAGER, [finger(2, 93)], "wanted", "W1")
    assert len(world.uow.tables.watchlist) == 2


def test_a_citizen_stored_as_foreign_is_neither_enrolled_nor_offered_for_prints() -> None:
    """Defence in depth (probe F1): a home-state passport holder whose stored class says
    foreign national (written before manifests were checked) gives no prints, and prints
    already enrolled for them are not offered to settle a case."""
    world = World()
    flight = boarding(world)
    citizen = DocumentKey(HOME_STATE, "C1")
    row = world.uow.tables.documents[citizen]
    assert row.details is not None
    row.details = dataclasses.replace(
        row.details, citizenship_class=CitizenshipClass.FOREIGN_NATIONAL
    )
    with pytest.raises(ConflictError, match="takes no fingerprints"):
        world.fingerprints.enrol(OFFICER, citizen, [finger(2, 40)])
    # Prints stored before the rule (straight into the store, as the old code would have).
    now = world.clock()
    in_transaction(
        world.uow,
        lambda uow: uow.fingerprints.enrol(
            citizen, 2, "fake", b"minutiae", 40, now, now + timedelta(days=30)
        ),
    )
    capture_id, decision = gate_capture(world, flight, STRANGER)
    assert decision is Decision.NO_MATCH
    cases = world.console.open_cases(OFFICER)
    assert world.console.prints_possible(OFFICER, cases) == frozenset()
    # The control: a foreign national's prints mark the same case.
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V1"), [finger(2, 40)])
    assert world.console.prints_possible(OFFICER, cases) == {capture_id}


def test_a_case_page_draws_no_enrolled_print_of_a_traveler_now_shown_a_citizen() -> None:
    """The case page pairs the live prints with the enrolled ones: once the stored class says
    citizen (prints from before the rule), that side is neither drawn nor compared."""
    world = World()
    flight = boarding(world)
    v1 = DocumentKey(FOREIGN_STATE, "V1")
    world.fingerprints.enrol(OFFICER, v1, [finger(2, 40)])
    capture_id, _ = gate_capture(world, flight, STRANGER)
    world.fingerprints.verify(OFFICER, v1, [finger(2, 40)], flight.id, "desk", capture_id)
    (before,) = world.fingerprints.case_prints(OFFICER, capture_id)
    assert before.enrolled is not None
    row = world.uow.tables.documents[v1]
    assert row.details is not None
    row.details = replace(row.details, citizenship_class=CitizenshipClass.CITIZEN)
    (after,) = world.fingerprints.case_prints(OFFICER, capture_id)
    assert (after.enrolled, after.pairs) == (None, ())
