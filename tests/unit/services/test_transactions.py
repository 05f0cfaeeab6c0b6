"""in_transaction at the service level: a write conflict reruns the *whole* use case, so
what it records stands exactly once; other failures are not rerun, and nothing of them
stands."""

from __future__ import annotations

import pytest

from entryexit.domain.access import Role
from entryexit.domain.model import Decision, Direction, DocumentKey, PhotoSource
from entryexit.errors import TransactionConflictError
from entryexit.services.console import Resolution
from entryexit.services.unit_of_work import ATTEMPTS, UnitOfWork, in_transaction
from entryexit.services.watchlist import Disposition
from tests.fake_storage import InjectedCommitError
from tests.unit.services.world import GATE, MANAGER, OFFICER, World, traveler


def boarding(world: World, direction: Direction = Direction.ENTRY):  # type: ignore[no-untyped-def]
    return world.boarding(direction, [traveler("N1"), traveler("N2")], seeds={"N1": 1, "N2": 2})


def test_in_transaction_reruns_the_whole_work_and_commits_once() -> None:
    world = World()
    calls: list[int] = []

    def work(uow: UnitOfWork) -> int:
        calls.append(len(calls))
        world.audit.record(uow, "work", "ok")
        return len(calls)

    world.uow.conflict_on_commit(2)
    assert in_transaction(world.uow, work) == 3
    assert len(calls) == 3
    assert world.actions().count("work") == 1


def test_a_capture_whose_commit_conflicts_once_is_recorded_exactly_once() -> None:
    world = World()
    flight = boarding(world)
    commits = world.uow.commits
    world.uow.conflict_on_commit(1)
    outcome = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert world.uow.conflicts == 1
    assert world.uow.commits == commits + 1
    # The rerun did not see its own first attempt: not "already processed".
    assert (outcome.decision, outcome.already_processed) == (Decision.MATCH, False)
    tables = world.uow.tables
    assert list(tables.captures) == [outcome.capture_id]
    assert len(tables.encounters) == 1
    assert len(tables.outbox) == 1
    assert world.actions().count("capture") == 1
    assert world.audit.verify().ok
    world.crossings.wait_idle(timeout=5)
    assert len(world.uow.tables.admissions) == 1


def test_a_capture_that_conflicts_on_every_attempt_records_nothing() -> None:
    world = World()
    flight = boarding(world)
    attempts = world.uow.write_commit_attempts
    world.uow.conflict_on_commit(ATTEMPTS)
    with pytest.raises(TransactionConflictError):
        world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert world.uow.write_commit_attempts == attempts + ATTEMPTS
    tables = world.uow.tables
    assert (tables.captures, tables.encounters, tables.outbox) == ({}, {}, {})
    assert "capture" not in world.actions()


def test_a_failure_other_than_a_conflict_is_not_rerun() -> None:
    world = World()
    flight = boarding(world)
    attempts = world.uow.write_commit_attempts
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):
        world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert world.uow.write_commit_attempts == attempts + 1
    assert world.uow.tables.captures == {}


def test_a_staging_that_conflicts_once_is_one_staging() -> None:
    world = World()
    world.watchlist.add(MANAGER, b"face:1", "wanted", "R-1")
    flight = world.flight(Direction.EXIT, [traveler("N1")])
    world.enrol("N1", 1)
    world.uow.conflict_on_commit(1)
    report = world.galleries.stage(flight.id, OFFICER)
    assert report.gallery_version == 1
    assert world.flights.get(flight.id).gallery_version == 1
    assert world.actions().count("gallery staged") == 1
    assert len(world.uow.tables.alerts) == 1
    assert world.actions().count("watchlist alert") == 1
    assert world.galleries.gallery_for(world.flights.get(flight.id)).version == 1


def test_a_case_resolution_that_conflicts_once_stands_once() -> None:
    world = World()
    flight = boarding(world)
    capture = world.captures.process(GATE, flight.id, b"face:10", "G1", "cam")
    assert capture.decision is Decision.NO_MATCH
    world.uow.conflict_on_commit(1)
    encounter_id = world.console.resolve(
        OFFICER, capture.capture_id, Resolution.CONFIRMED, world.traveler_id("N2")
    )
    tables = world.uow.tables
    assert list(tables.encounters) == [encounter_id]
    assert tables.captures[capture.capture_id].resolution == "confirmed"
    assert len(tables.outbox) == 1
    assert world.actions().count("console case resolve") == 1


def test_an_alert_disposition_that_conflicts_once_is_not_a_conflict_with_itself() -> None:
    world = World()
    world.watchlist.add(MANAGER, b"face:1", "wanted", "R-1")
    boarding(world)
    (alert,) = world.watchlist.alerts(OFFICER)
    world.uow.conflict_on_commit(1)
    decided = world.watchlist.disposition(OFFICER, alert.id, Disposition.CONFIRMED, "seen")
    assert decided.status == "confirmed"
    assert world.actions().count("alert disposition") == 1


def test_enrolment_and_sign_in_that_conflict_once_stand_once() -> None:
    world = World()
    world.uow.conflict_on_commit(1)
    enrolment = world.enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:1", PhotoSource.PASSPORT)
    assert list(world.uow.tables.templates) == [enrolment.template_id]
    assert list(world.uow.tables.travelers) == [enrolment.traveler_id]
    world.accounts.create_user("ana.officer", "correct horse battery", Role.OFFICER)
    world.uow.conflict_on_commit(1)
    token, signed_in = world.accounts.sign_in("ana.officer", "correct horse battery")
    assert list(world.uow.tables.sessions) == [signed_in.token_hash]
    assert world.accounts.session(token) is not None
    assert world.actions().count("console sign-in") == 1
