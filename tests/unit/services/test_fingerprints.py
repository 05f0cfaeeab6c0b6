"""The fingerprint use cases over the in-memory store and a fake engine: who gives prints,
what is kept, what an officer learns, and when prints are deleted."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import date, timedelta

import pytest

from entryexit.domain.access import Principal, Role
from entryexit.domain.fingerprints import FingerprintDecision
from entryexit.domain.model import CitizenshipClass, ConflictSide, DocumentKey, EncounterMethod
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    WorkerUnavailableError,
)
from entryexit.services.fingerprints import FingerprintSlots, SubmittedPrint
from tests import fake_storage
from tests.fakes import fake_print
from tests.unit.services.world import (
    AUDITOR,
    FOREIGN_STATE,
    GATE,
    OFFICER,
    OTHER_CARRIER_OFFICER,
    SUPERVISOR,
    World,
    traveler,
)

VISITOR = DocumentKey(FOREIGN_STATE, "V1")


def finger(position: int, grey: int) -> SubmittedPrint:
    return SubmittedPrint(position, fake_print(grey), ppi=500)


def world_with(*travelers: object) -> World:
    world = World()
    world.flight(travelers=list(travelers))  # type: ignore[arg-type]
    return world


def test_enrolled_prints_confirm_the_traveler_and_not_a_stranger() -> None:
    world = world_with(traveler("V1"))
    enrolment = world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40), finger(7, 80)])
    assert [f.finger for f in enrolment.fingers] == [2, 7]
    assert enrolment.traveler_id == world.traveler_id("V1")
    same = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40), finger(7, 80)])
    assert same.decision is FingerprintDecision.MATCH
    assert same.fused_score == 1.0
    stranger = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 41), finger(7, 81)])
    assert stranger.decision is FingerprintDecision.NO_MATCH
    # One finger right, one wrong: the mean is 0.5, above the 1e-3 threshold (0.358).
    half = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40), finger(7, 81)])
    assert (half.fused_score, half.decision) == (0.5, FingerprintDecision.MATCH)
    assert world.actions().count("fingerprint verify") == 3


def test_the_policy_decides_who_gives_prints() -> None:
    citizen = traveler("C1", CitizenshipClass.CITIZEN)
    child = traveler("K1", born=date(2020, 1, 1))
    world = world_with(citizen, child, traveler("V1"))
    for number in ("C1", "K1"):
        with pytest.raises(ConflictError, match="takes no fingerprints"):
            world.fingerprints.enrol(OFFICER, world.document(number), [finger(2, 40)])
    with pytest.raises(InvalidInputError, match="not one the policy takes"):
        world.fingerprints.enrol(OFFICER, VISITOR, [finger(3, 40)])
    with pytest.raises(NotFoundError, match="on no manifest"):
        world.fingerprints.enrol(OFFICER, DocumentKey("UTO", "ZZ9"), [finger(2, 40)])
    assert "fingerprint enrol" not in world.actions()


def test_only_officers_touch_prints_and_bad_prints_store_nothing() -> None:
    world = world_with(traveler("V1"))
    for principal in (GATE, AUDITOR):
        with pytest.raises(PermissionDeniedError):
            world.fingerprints.enrol(principal, VISITOR, [finger(2, 40)])
        with pytest.raises(PermissionDeniedError):
            world.fingerprints.verify(principal, VISITOR, [finger(2, 40)])
    with pytest.raises(InvalidInputError, match="recapture"):
        world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40), finger(7, 255)])
    with pytest.raises(InvalidInputError, match="twice"):
        world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40), finger(2, 41)])
    with pytest.raises(InvalidInputError, match="resolution"):
        world.fingerprints.enrol(OFFICER, VISITOR, [SubmittedPrint(2, fake_print(40))])
    with pytest.raises(NotFoundError, match="no fingerprints are enrolled"):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])
    assert world.uow.tables.fingerprints == {}


def test_enrolled_prints_are_deleted_when_their_retention_ends() -> None:
    world = world_with(traveler("V1"))
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    world.advance(hours=43799)
    assert world.purge.run()["fingerprint_templates"] == 0
    world.advance(hours=2)
    assert world.purge.run()["fingerprint_templates"] == 1
    with pytest.raises(NotFoundError):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])


def test_a_match_on_a_flight_is_the_travelers_encounter_once() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1")])
    other = world.flight(travelers=[traveler("W1")], number="13")
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    miss = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 41)], flight.id)
    assert (miss.decision, miss.encounter_id) == (FingerprintDecision.NO_MATCH, None)
    assert world.flights.encounters(flight.id) == []
    hit = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)], flight.id, "desk 4")
    (encounter,) = world.flights.encounters(flight.id)
    assert encounter.id == hit.encounter_id
    assert (encounter.method, encounter.model, encounter.device) == (
        EncounterMethod.BIOMETRIC,
        "nbis-mcc-v1",
        "desk 4",
    )
    assert encounter.score == 1.0
    again = world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)], flight.id)
    assert again.encounter_id is None
    assert len(world.flights.encounters(flight.id)) == 1
    # A flight the traveler is not on records nothing; another carrier's desk may not use it.
    assert (
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)], other.id).encounter_id is None
    )
    desk_zz = Principal("k-zz", "desk", Role.OFFICER, carrier="ZZ")
    with pytest.raises(PermissionDeniedError):
        world.fingerprints.verify(desk_zz, VISITOR, [finger(2, 40)], flight.id)


def test_a_search_proposes_the_flights_travelers_best_first_and_decides_nothing() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1"), traveler("V2"), traveler("V3")])
    for number, grey in (("V1", 40), ("V2", 60), ("V3", 80)):
        world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, number), [finger(2, grey)])
    found = world.fingerprints.search(OFFICER, flight.id, [finger(2, 60)])
    assert found.searched == 3
    best, *rest = found.candidates
    assert (best.traveler_id, best.fused_score, best.meets_threshold) == (
        world.traveler_id("V2"),
        1.0,
        True,
    )
    assert all(not c.meets_threshold for c in rest)
    assert world.flights.encounters(flight.id) == []
    assert "fingerprint search" in world.actions()
    with pytest.raises(PermissionDeniedError):
        world.fingerprints.search(GATE, flight.id, [finger(2, 60)])


# --- citizens' prints are never kept (probe F1 part 3) ---------------------------------------
def as_citizen(world: World, number: str) -> None:
    """Data from before the citizen rule: the stored class says citizen, prints enrolled."""
    (key,) = [k for k in world.uow.tables.documents if k.number == number]
    row = world.uow.tables.documents[key]
    assert row.details is not None
    row.details = replace(row.details, citizenship_class=CitizenshipClass.CITIZEN)


def test_a_manifest_that_shows_a_citizen_deletes_their_prints_in_its_transaction() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1"), traveler("V2")])
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40), finger(7, 80)])
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 60)])
    v1 = world.traveler_id("V1")
    # The carrier corrects V1's class (a dual national on the foreign passport).
    corrected = replace(traveler("V1"), citizenship_class=CitizenshipClass.CITIZEN)
    world.flights.put_manifest(flight.id, [corrected, traveler("V2")], OFFICER)
    left = {traveler_id for traveler_id, _, _ in world.uow.tables.fingerprints}
    assert left == {world.traveler_id("V2")}
    (event,) = [
        e.entry for e in world.uow.tables.audit_events if e.entry.action == "fingerprint purge"
    ]
    assert (event.resource_id, event.details["templates"]) == (v1, 2)
    assert event.details["reason"] == "citizen"
    # Nothing personal beyond the id: no name, number or nationality in the details.
    assert not {"V1", "DOE", "JANE", FOREIGN_STATE} & {str(v) for v in event.details.values()}
    with pytest.raises(NotFoundError):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])


def test_a_conflict_resolved_to_a_citizens_details_deletes_their_prints() -> None:
    world = World()
    world.flight(travelers=[traveler("V1")])
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    other = world.flight(travelers=[], carrier="ZZ", number="77")
    corrected = replace(traveler("V1"), citizenship_class=CitizenshipClass.CITIZEN)
    change = world.flights.put_manifest(other.id, [corrected], OTHER_CARRIER_OFFICER)
    assert change.conflicts == 1
    assert world.uow.tables.fingerprints  # not applied: the prints stay
    (conflict,) = world.flights.manifest_conflicts()
    world.flights.resolve_manifest_conflict(conflict.id, ConflictSide.PROPOSED)
    assert world.uow.tables.fingerprints == {}
    assert "fingerprint purge" in world.actions()


def test_a_citizens_prints_from_before_the_rule_are_never_compared_and_are_purged() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1"), traveler("V2")])
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 60)])
    as_citizen(world, "V1")
    # The attacker holds the citizen's print: the 1:1 refuses, the search does not see him.
    with pytest.raises(ConflictError, match="citizen"):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])
    found = world.fingerprints.search(OFFICER, flight.id, [finger(2, 40)])
    assert found.searched == 1
    assert [c.traveler_id for c in found.candidates] == [world.traveler_id("V2")]
    # The purge deletes them whatever their expiry, counted, and the report says so.
    assert world.purge.preview(world.clock())["citizen_fingerprint_templates"] == 1
    assert world.purge.run()["citizen_fingerprint_templates"] == 1
    assert {t for t, _, _ in world.uow.tables.fingerprints} == {world.traveler_id("V2")}
    since = world.clock() - timedelta(days=1)
    report = world.privacy.report(since)
    assert report["purges"]["deleted"]["citizen_fingerprint_templates"] == 1  # type: ignore[index]
    assert "citizen_fingerprint_templates" not in world.purge.run()


def test_prints_beyond_the_slots_wait_a_bounded_time_then_are_refused_busy() -> None:
    """Probe F2: forty threads could each run a costly print at once. With every slot taken
    (another request's print being read or compared), a request waits, then is refused with
    a time to retry, having stored and recorded nothing."""
    world = world_with(traveler("V1"))
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    slots = FingerprintSlots(1, wait=0.05)
    world.fingerprints._slots = slots  # the wiring's setting, made small
    recorded = len(world.actions())
    with slots.taken():
        for attempt in (
            lambda: world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)]),
            lambda: world.fingerprints.enrol(
                SUPERVISOR, VISITOR, [finger(2, 40)], reason="injured_finger"
            ),
        ):
            started = time.monotonic()
            with pytest.raises(WorkerUnavailableError, match="slots are busy") as refused:
                attempt()
            assert time.monotonic() - started >= 0.05
            assert refused.value.retry_after >= 1
    assert len(world.actions()) == recorded
    assert world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)]).decision is (
        FingerprintDecision.MATCH
    )


def test_a_traveler_shown_to_be_a_citizen_while_his_prints_are_read_keeps_none() -> None:
    """Enrolment checks the traveler's class, reads the prints (seconds), then stores them: a
    manifest showing him to be a citizen in between deleted nothing (there was nothing yet),
    so the store checks again under the write lock (review L4)."""
    world = world_with(traveler("V1"))
    original = world.fingerprints._template

    def template_then_manifest(submitted: SubmittedPrint) -> object:
        as_citizen(world, "V1")
        return original(submitted)

    world.fingerprints._template = template_then_manifest  # type: ignore[method-assign,assignment]
    with pytest.raises(ConflictError, match="changed while the prints were read"):
        world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    assert world.uow.tables.fingerprints == {}


def test_a_carriers_word_that_a_foreign_passport_holder_is_a_citizen_deletes_no_prints() -> None:
    """Review H1: an airline desk key re-sending its own manifest with a foreign passport
    holder stated ``citizen`` erased the prints the agency enrolled (and the purge did the
    same by the stated class). A carrier's word alone deletes nothing: the prints are refused
    by every comparison until the agency confirms, and the event says they were kept."""
    world = World()
    flight = world.flight(carrier="ZZ")
    world.flights.put_manifest(flight.id, [traveler("V1")], OTHER_CARRIER_OFFICER)
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    claimed = replace(traveler("V1"), citizenship_class=CitizenshipClass.CITIZEN)
    world.flights.put_manifest(flight.id, [claimed], OTHER_CARRIER_OFFICER)
    assert len(world.uow.tables.fingerprints) == 1
    assert world.purge.run().get("citizen_fingerprint_templates", 0) == 0
    assert len(world.uow.tables.fingerprints) == 1
    with pytest.raises(ConflictError):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])


# --- what a search opens, and how long a request waits (review L10, L13) -------------------
def as_national(world: World, number: str) -> None:
    """Data from before manifests were checked: a home-state national whose stored class and
    passport say foreign (only the sealed nationality shows the citizen)."""
    (key,) = [k for k in world.uow.tables.documents if k.number == number]
    row = world.uow.tables.documents[key]
    assert row.details is not None
    row.details = replace(row.details, nationality="UTO")


def test_a_search_opens_the_sealed_details_of_the_travelers_it_proposes_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review L10: deciding who is a citizen opened every enrolled traveler's sealed details
    on every search. Clear columns decide for the flight; only the candidates' details (a
    national shown by them alone is never proposed) are opened."""
    numbers = [f"V{i}" for i in range(1, 10)]
    world = World()
    flight = world.flight(travelers=[traveler(n) for n in numbers])
    for grey, number in enumerate(numbers, start=40):
        world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, number), [finger(2, grey)])
    opened: list[str] = []
    original = fake_storage._personal

    def spy(t: fake_storage.FakeTables, doc: fake_storage.DocumentRow) -> dict[str, str]:
        opened.append(doc.traveler_id)
        return original(t, doc)

    monkeypatch.setattr(fake_storage, "_personal", spy)
    found = world.fingerprints.search(OFFICER, flight.id, [finger(2, 40)])
    assert found.searched == len(numbers)
    proposed = {c.traveler_id for c in found.candidates}
    assert len(proposed) == 5 < len(numbers)
    assert opened
    assert set(opened) <= proposed


def test_a_national_shown_by_sealed_details_alone_is_never_proposed_nor_confirmed() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("V1"), traveler("V2")])
    world.fingerprints.enrol(OFFICER, VISITOR, [finger(2, 40)])
    world.fingerprints.enrol(OFFICER, DocumentKey(FOREIGN_STATE, "V2"), [finger(2, 60)])
    as_national(world, "V1")
    found = world.fingerprints.search(OFFICER, flight.id, [finger(2, 40)])
    assert [c.traveler_id for c in found.candidates] == [world.traveler_id("V2")]
    assert found.searched == 1
    with pytest.raises(ConflictError, match="citizen"):
        world.fingerprints.verify(OFFICER, VISITOR, [finger(2, 40)])


class Contended:
    """The slots' semaphore under other requests' load: a slot frees 0.6 of the wait after a
    request starts waiting for it (a shorter wait runs out first)."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.waits: list[float] = []

    def acquire(self, timeout: float | None = None) -> bool:
        self.waits.append(-1.0 if timeout is None else timeout)
        frees_after = 0.6 * self.wait
        if timeout is not None and timeout < frees_after:
            time.sleep(timeout)
            return False
        time.sleep(frees_after)
        return True

    def release(self) -> None:
        pass


def test_a_search_waits_for_slots_once_in_all_not_once_per_comparison() -> None:
    """Review L13: each comparison waited up to the whole wait for its slot, so a search of a
    flight's many fingers under contention could run for minutes and still end in a 503.
    Under load each slot comes after 0.6 of the wait: the search gets one, then is refused
    within about one wait in all (the old way: 42 slots, 25 waits, and an answer)."""
    numbers = [f"V{i}" for i in range(1, 21)]
    world = World()
    flight = world.flight(travelers=[traveler(n) for n in numbers])
    for number in numbers:
        world.fingerprints.enrol(
            OFFICER, DocumentKey(FOREIGN_STATE, number), [finger(2, 40), finger(7, 80)]
        )
    wait = 1.0  # margins of 0.4 s either way: a loaded CI machine stalls threads for 0.1 s
    slots = FingerprintSlots(1, wait=wait)
    contended = Contended(wait)
    slots._fair = contended  # type: ignore[assignment]
    world.fingerprints._slots = slots
    recorded = len(world.actions())
    started = time.monotonic()
    with pytest.raises(WorkerUnavailableError, match="slots are busy"):
        world.fingerprints.search(OFFICER, flight.id, [finger(2, 40), finger(7, 80)])
    took = time.monotonic() - started
    assert len(contended.waits) == 2
    assert contended.waits[1] < wait / 2  # what was left of the one wait
    assert took < 5 * wait  # tolerant of a loaded machine; the old way took 25 waits
    assert len(world.actions()) == recorded


def test_one_officers_flood_of_prints_does_not_queue_anothers() -> None:
    """Review L11: the fingerprint slots were a plain semaphore, so one officer's flood of
    255-minutia prints queued every other officer's behind all of it. A freed slot now goes
    to the waiting officer holding fewest, as the face decode slots do."""
    slots = FingerprintSlots(2, wait=30.0)
    served: list[str] = []

    def request(owner: str) -> None:
        with slots.request(owner), slots.taken():
            served.append(owner)

    def queued(count: int) -> None:
        for _ in range(2000):
            if len(slots._fair._queue) == count:
                return
            time.sleep(0.005)
        raise AssertionError(f"{count} requests never queued")

    with slots.request("flood"):
        first, second = slots.taken(), slots.taken()
        first.__enter__()
        second.__enter__()
        waiting = [threading.Thread(target=request, args=(owner,)) for owner in ("flood", "other")]
        for thread in waiting:  # the flood's next print first, then the other officer's
            thread.start()
            queued(waiting.index(thread) + 1)
        second.__exit__(None, None, None)
        for _ in range(2000):
            if served:
                break
            time.sleep(0.005)
        first.__exit__(None, None, None)
    for thread in waiting:
        thread.join(timeout=30)
    assert served == ["other", "flood"]
