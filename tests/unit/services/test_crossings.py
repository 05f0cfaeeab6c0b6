"""Crossings: entries open admissions and exits close them, handed over through the outbox
(written in the encounter's own unit of work, applied once by ``process_pending``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from entryexit.domain.admission import ExitLink
from entryexit.domain.model import CitizenshipClass, Decision, Direction, EncounterMethod
from entryexit.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from entryexit.services.crossings import ADMISSION_WORK, PARK_AFTER_ATTEMPTS, CrossingService
from entryexit.services.gallery import GalleryService
from tests.fake_storage import AdmissionRow, InjectedCommitError
from tests.unit.services.world import (
    AUDITOR,
    GATE,
    OFFICER,
    World,
    policy_with,
    traveler,
)

ENTRY_DAY = date(2026, 11, 23)


def enter(world: World, number: str = "N1", seed: int = 1) -> str:
    """A non-citizen enters on an entry flight and the worker records it; the traveler id."""
    flight = world.boarding(Direction.ENTRY, [traveler(number)], seeds={number: seed})
    outcome = world.captures.process(GATE, flight.id, f"face:{seed}".encode(), "G1", "cam")
    assert outcome.decision is Decision.MATCH
    assert outcome.traveler_id is not None
    world.crossings.wait_idle(timeout=5)
    return outcome.traveler_id


def leave(world: World, number: str, seed: int, departure: datetime | None = None) -> str:
    """A capture of ``face:<seed>`` on an exit flight whose manifest holds ``number``
    (enrolled with that face if not yet); the exiting traveler's id."""
    with world.uow(read_only=True) as uow:
        known = any(d.number == number for d in uow.tables.documents)
    flight = world.boarding(
        Direction.EXIT,
        [traveler(number)],
        seeds={} if known else {number: seed},
        number="99",
        departure=departure or datetime(2026, 11, 30, 18, tzinfo=UTC),
    )
    outcome = world.captures.process(GATE, flight.id, f"face:{seed}".encode(), "G7", "cam")
    assert outcome.decision is Decision.MATCH
    assert outcome.traveler_id is not None
    world.crossings.wait_idle(timeout=5)
    return outcome.traveler_id


def only_admission(world: World) -> AdmissionRow:
    (row,) = world.uow.tables.admissions.values()
    return row


def test_an_entry_encounter_hands_the_admission_over_in_its_own_unit_of_work() -> None:
    world = World()
    flight = world.boarding(Direction.ENTRY, [traveler("N1")], seeds={"N1": 1})
    outcome = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert outcome.decision is Decision.MATCH

    tables = world.uow.tables  # committed: the encounter and its message, no admission yet
    (encounter,) = tables.encounters.values()
    (message,) = tables.outbox.values()
    assert message.kind == ADMISSION_WORK
    assert message.payload["encounter_id"] == encounter.id
    assert message.payload["traveler_id"] == outcome.traveler_id
    assert message.payload["flight_id"] == flight.id
    assert message.payload["method"] == EncounterMethod.BIOMETRIC.value
    assert message.template is not None  # the live template, for a later biometric link
    assert tables.admissions == {}

    assert world.crossings.process_pending() == 1
    assert world.uow.tables.outbox == {}
    row = only_admission(world)
    assert row.traveler_id == outcome.traveler_id
    assert (row.admission_class, row.admitted_on) == ("WT", ENTRY_DAY)
    assert row.admitted_until == ENTRY_DAY + timedelta(days=90)  # WT's default stay
    assert (row.entry_flight_id, row.entry_encounter_id) == (flight.id, encounter.id)
    assert row.template is not None
    assert row.template_model == world.engine.model
    assert row.exited_on is None
    assert world.crossings.process_pending() == 0


def test_a_capture_that_fails_to_commit_leaves_neither_encounter_nor_message() -> None:
    world = World()
    flight = world.boarding(Direction.ENTRY, [traveler("N1")], seeds={"N1": 1})
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):
        world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    tables = world.uow.tables
    assert (tables.encounters, tables.outbox, tables.captures) == ({}, {}, {})
    assert world.crossings.process_pending() == 0
    assert tables.admissions == {}


def test_citizens_open_no_admission_and_permanent_residents_one_without_end() -> None:
    world = World()
    manifest = [
        traveler("C1", CitizenshipClass.CITIZEN),
        traveler("P1", CitizenshipClass.PERMANENT_RESIDENT),
    ]
    flight = world.boarding(Direction.ENTRY, manifest, seeds={"C1": 1, "P1": 2})
    for seed in (1, 2):
        assert world.captures.process(GATE, flight.id, f"face:{seed}".encode(), "G1", "c").decision
    assert len(world.uow.tables.outbox) == 2  # both encounters are handed over
    assert world.crossings.process_pending() == 2
    row = only_admission(world)  # only the permanent resident's
    assert row.traveler_id == world.traveler_id("P1")
    assert (row.admission_class, row.admitted_until) == ("LPR", None)
    assert world.uow.tables.outbox == {}


def test_an_entry_opt_out_opens_an_admission_without_a_template() -> None:
    world = World()
    flight = world.boarding(Direction.ENTRY, [traveler("N1")], seeds={"N1": 1})
    world.opt_outs.record(GATE, flight.id, traveler("N1").document, "G1")
    world.crossings.wait_idle(timeout=5)
    row = only_admission(world)
    assert row.traveler_id == world.traveler_id("N1")
    assert (row.template, row.template_model) == (None, None)


def test_an_exit_closes_the_travelers_own_stay_by_document() -> None:
    world = World()
    traveler_id = enter(world)
    assert leave(world, "N1", 1) == traveler_id
    row = only_admission(world)
    assert row.exited_on == date(2026, 11, 23)  # the fake clock has not moved a day
    assert (row.link, row.link_score) == (ExitLink.DOCUMENT, None)
    assert row.exit_traveler_id == traveler_id
    assert row.template is None  # the entry template is not kept once the stay is closed
    assert "exit linked biometrically" not in world.actions()

    crossings = world.crossings.crossings(OFFICER, traveler_id)
    assert (len(crossings["entries"]), len(crossings["exits"])) == (1, 1)
    (admission,) = crossings["admissions"]
    assert admission["exit_link"] == "document"
    assert admission["exit_without_entry"] is False


def test_an_exit_on_a_new_document_is_linked_to_the_stay_biometrically() -> None:
    world = World()
    entered = enter(world, "N1", seed=1)
    left = leave(world, "NEW1", seed=1)  # a new passport: a new traveler record, same face
    assert left != entered
    row = only_admission(world)
    assert row.traveler_id == entered
    assert row.exit_traveler_id == left
    assert row.link is ExitLink.BIOMETRIC
    assert row.link_score == pytest.approx(1.0, abs=1e-5)
    (event,) = [
        e for e in world.uow.tables.audit_events if e.entry.action == "exit linked biometrically"
    ]
    assert (event.entry.resource_type, event.entry.resource_id) == ("admission", row.id)
    assert event.entry.details == {"score": "1.0000", "model": world.engine.model}
    assert event.entry.actor_key_id is None


def test_an_exit_that_matches_no_open_stay_is_an_exit_without_entry() -> None:
    world = World()
    entered = enter(world, "N1", seed=1)
    left = leave(world, "NEW1", seed=5)  # someone else: below the threshold
    rows = {r.id: r for r in world.uow.tables.admissions.values()}
    (stay,) = [r for r in rows.values() if r.traveler_id == entered]
    assert stay.exited_on is None  # the stay is not closed by a stranger
    (orphan,) = [r for r in rows.values() if r.admitted_on is None]
    assert orphan.exit_traveler_id == left
    assert orphan.exited_on == date(2026, 11, 23)
    assert world.reports.exits_without_entry(ENTRY_DAY, ENTRY_DAY) == [
        (left, ENTRY_DAY, orphan.exit_flight_id)
    ]
    assert world.crossings.crossings(OFFICER, left)["admissions"][0]["exit_without_entry"]


def test_crossings_need_permission_and_a_known_traveler() -> None:
    world = World()
    with pytest.raises(PermissionDeniedError):
        world.crossings.crossings(GATE, "anyone")
    with pytest.raises(NotFoundError):
        world.crossings.crossings(OFFICER, "nobody")


def test_an_officer_updates_an_admission_and_it_is_audited() -> None:
    world = World()
    traveler_id = enter(world)
    admission_id = only_admission(world).id
    updated = world.crossings.update_admission(OFFICER, admission_id, " b2 ", date(2027, 1, 31))
    assert updated["class"] == "B2"
    assert updated["admitted_until"] == "2027-01-31"
    row = only_admission(world)
    assert (row.admission_class, row.admitted_until) == ("B2", date(2027, 1, 31))
    event = world.uow.tables.audit_events[-1]
    assert (event.entry.action, event.entry.actor_key_id) == ("admission update", OFFICER.key_id)
    assert (event.entry.resource_id, event.entry.details) == (admission_id, {"class": "B2"})
    assert world.crossings.crossings(OFFICER, traveler_id)["admissions"][0]["class"] == "B2"


@pytest.mark.parametrize("actor", [GATE, AUDITOR])
def test_only_officers_update_admissions(actor: object) -> None:
    world = World()
    enter(world)
    admission_id = only_admission(world).id
    with pytest.raises(PermissionDeniedError):
        world.crossings.update_admission(actor, admission_id, "B2", None)  # type: ignore[arg-type]
    assert only_admission(world).admission_class == "WT"


@pytest.mark.parametrize("value", ["", "   ", "X" * 17, "B 2", "B2!", "B2;DROP"])
def test_an_invalid_class_of_admission_is_refused(value: str) -> None:
    world = World()
    enter(world)
    events = len(world.uow.tables.audit_events)
    with pytest.raises(InvalidInputError):
        world.crossings.update_admission(OFFICER, only_admission(world).id, value, None)
    assert only_admission(world).admission_class == "WT"
    assert len(world.uow.tables.audit_events) == events


def test_updating_a_missing_admission_or_an_exit_without_entry_is_not_found() -> None:
    world = World()
    leave(world, "N5", seed=5)  # an exit without an entry
    orphan = only_admission(world)
    events = len(world.uow.tables.audit_events)
    for admission_id in ("no-such-admission", orphan.id):
        with pytest.raises(NotFoundError):
            world.crossings.update_admission(OFFICER, admission_id, "B2", None)
    assert len(world.uow.tables.audit_events) == events  # the rolled-back event is gone


def test_in_country_overstays_are_reported_after_the_grace_days() -> None:
    world = World()
    world.load_policy(policy_with("grace-3", grace_days=3))
    traveler_id = enter(world)
    until = ENTRY_DAY + timedelta(days=90)
    on_the_last_grace_day = world.crossings.overstays(OFFICER, until + timedelta(days=3))
    assert on_the_last_grace_day["grace_days"] == 3
    assert on_the_last_grace_day["policy_version"] == "grace-3"
    assert on_the_last_grace_day["in_country"] == []
    report = world.crossings.overstays(OFFICER, until + timedelta(days=4))
    (row,) = report["in_country"]
    assert row.traveler_ref == traveler_id
    assert (row.surname, row.nationality, row.document) == ("DOE", "XYZ", "XYZ N1")
    assert (row.admission_class, row.admitted_until, row.days_over) == ("WT", until, 4)
    assert report["out_of_country"] == []
    event = world.uow.tables.audit_events[-1]
    assert event.entry.action == "overstay report"
    assert event.entry.details == {"in_country": 1, "out_of_country": 0}


@pytest.mark.parametrize("as_of", [date.max, date.min, date(2200, 1, 1)])
def test_an_overstay_report_as_of_a_day_out_of_range_is_invalid_input(as_of: date) -> None:
    world = World()
    with pytest.raises(InvalidInputError, match="as_of must be within"):
        world.crossings.overstays(OFFICER, as_of)


def test_out_of_country_overstays_and_exit_confirmation() -> None:
    world = World()
    enter(world)
    world.crossings.update_admission(OFFICER, only_admission(world).id, "B2", date(2026, 11, 25))
    world.clock.now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    leave(world, "N1", 1)
    report = world.crossings.overstays(OFFICER, date(2026, 12, 1))
    assert report["in_country"] == []
    (row,) = report["out_of_country"]
    assert (row.exited_on, row.days_over) == (date(2026, 11, 30), 5)
    (flight,) = report["exit_confirmation"]["by_flight"]
    assert (flight["travelers"], flight["confirmed"], flight["rate"]) == (1, 1, 1.0)
    assert report["exit_confirmation"]["by_carrier"] == [
        {"carrier": "EE", "travelers": 1, "confirmed": 1, "rate": 1.0}
    ]


def test_the_overstay_report_needs_its_permission() -> None:
    world = World()
    with pytest.raises(PermissionDeniedError):
        world.crossings.overstays(GATE, ENTRY_DAY)
    assert "overstay report" not in world.actions()


def test_work_left_by_a_crash_is_applied_exactly_once_by_another_process() -> None:
    world = World()
    flight = world.boarding(Direction.ENTRY, [traveler("N1")], seeds={"N1": 1})
    world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    # The process that recorded the encounter dies before its worker ran: the message waits.
    assert len(world.uow.tables.outbox) == 1
    restarted = CrossingService(
        world.uow,
        world.reports,
        world.engine,
        world.clock,
        GalleryService(world.uow, world.clock, "fake-model", 8, world.policies, world.audit),
        world.policies,
        world.thresholds,
        world.audit,
    )
    # Its first attempt fails to commit: nothing of it stands, the message stays (counted as
    # one failed attempt, to be retried).
    world.uow.fail_commit_after(0)
    assert restarted.process_pending() == 0
    assert world.uow.tables.admissions == {}
    assert len(world.uow.tables.outbox) == 1
    assert world.uow.tables.outbox_parked == set()
    # A write conflict reruns the whole transaction: still one admission.
    world.uow.conflict_on_commit(1)
    assert restarted.process_pending() == 1
    assert len(world.uow.tables.admissions) == 1
    assert world.uow.tables.outbox == {}
    assert restarted.process_pending() == 0
    assert world.crossings.process_pending() == 0
    assert len(world.uow.tables.admissions) == 1


def test_wait_idle_drains_every_queued_encounter() -> None:
    world = World()
    manifest = [traveler(f"N{i}") for i in range(4)]
    flight = world.boarding(Direction.ENTRY, manifest, seeds={f"N{i}": i for i in range(4)})
    for i in range(4):
        world.captures.process(GATE, flight.id, f"face:{i}".encode(), "G1", "cam")
    assert len(world.uow.tables.outbox) == 4
    assert world.crossings.process_pending(limit=1) == 1
    world.crossings.wait_idle(timeout=5)
    assert world.uow.tables.outbox == {}
    assert len(world.uow.tables.admissions) == 4


def test_a_message_that_keeps_failing_is_parked_and_does_not_block_the_others() -> None:
    """Found in review: the oldest message was retried forever, and no stay was opened or
    closed after it. Now it is counted, parked after a few attempts, and the rest proceed."""
    world = World()
    flight = world.boarding(
        Direction.ENTRY, [traveler("N1"), traveler("N2")], seeds={"N1": 1, "N2": 2}
    )
    world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    world.captures.process(GATE, flight.id, b"face:2", "G1", "cam")
    first, _second = sorted(world.uow.tables.outbox.values(), key=lambda m: m.created_at)
    # The first message's template cannot be read any more (a model of another dimension).
    world.uow.tables.outbox[first.id] = replace(first, template=b"\x00" * 12)
    for _ in range(PARK_AFTER_ATTEMPTS):
        world.crossings.process_pending()
    assert world.uow.tables.outbox_parked == {first.id}
    world.crossings.wait_idle()  # parked work does not count as pending
    opened = {row.traveler_id for row in world.uow.tables.admissions.values()}
    assert opened == {world.traveler_id("N2")}
    with world.uow(read_only=True) as uow:
        assert uow.outbox.count_parked() == 1


def test_an_exit_that_cannot_be_linked_is_an_officers_alert_not_only_a_log_line() -> None:
    """Issue 14: an exit whose stay could not be closed was a log line, and the traveler
    later read as an overstay. Now, once the work is given up on, it is listed for officers
    (the console's alerts page) and recorded in the audit log; an officer can retry it."""
    world = World()
    traveler_id = enter(world)
    flight = world.boarding(
        Direction.EXIT,
        [traveler("N1")],
        number="99",
        departure=datetime(2026, 11, 30, 18, tzinfo=UTC),
    )
    world.captures.process(GATE, flight.id, b"face:1", "G7", "cam")
    (message,) = world.uow.tables.outbox.values()
    world.uow.tables.outbox[message.id] = replace(message, template=b"\x00" * 12)  # unreadable
    for _ in range(PARK_AFTER_ATTEMPTS):
        assert world.crossings.process_pending() == 0
    assert only_admission(world).exited_on is None  # the stay stays open: a false overstay
    (failed,) = world.crossings.failed_crossings(OFFICER)
    assert failed.exit_not_linked
    assert (failed.traveler_ref, failed.flight_id) == (traveler_id, flight.id)
    assert failed.attempts == PARK_AFTER_ATTEMPTS
    assert world.actions().count("admission work failed") == 1
    with pytest.raises(PermissionDeniedError):
        world.crossings.failed_crossings(GATE)
    with pytest.raises(PermissionDeniedError):
        world.crossings.retry_failed(GATE, failed.id)
    # The cause fixed, an officer retries: the exit closes the stay, the alert is gone.
    world.uow.tables.outbox[message.id] = message
    world.crossings.retry_failed(OFFICER, failed.id)
    world.crossings.wait_idle(timeout=5)
    assert only_admission(world).exited_on is not None
    assert world.crossings.failed_crossings(OFFICER) == []
    assert "admission work retry" in world.actions()
    with pytest.raises(NotFoundError):
        world.crossings.retry_failed(OFFICER, failed.id)
