# mypy: disable-error-code="unreachable"
# (mypy keeps an attribute narrowed by an assert across the call that changes it.)
"""The audit trail: events commit with their use case's unit of work or not at all, a request
is marked recorded only once that happens, and verify() finds any tampering."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from entryexit.domain.audit import AuditEntry, chain
from entryexit.domain.model import Direction
from entryexit.errors import InvalidInputError
from entryexit.services.audit import (
    PAGE,
    RequestAudit,
    current_request,
    reset_current_request,
    set_current_request,
)
from entryexit.services.flights import NewFlight
from tests.fake_storage import AuditHeadRow, InjectedCommitError
from tests.unit.services.world import AUDITOR, DEPARTURE, OFFICER, World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def request_audit(world: World) -> Iterator[RequestAudit]:
    """An HTTP request in whose context the test's use cases run (after ``world`` is built,
    whose default policy load is an event of its own)."""
    request = RequestAudit("POST", lambda: "/v1/flights")
    token = set_current_request(request)
    yield request
    reset_current_request(token)
    assert current_request() is None


def test_an_event_commits_with_its_unit_of_work() -> None:
    world = World()
    before = len(world.uow.tables.audit_events)
    with world.uow() as uow:
        event = world.audit.record(uow, "thing", "ok", OFFICER, "flight", "f1", {"n": 2}, "p-9")
        assert len(world.uow.tables.audit_events) == before  # not visible before the commit
        uow.commit()
    (stored,) = world.uow.tables.audit_events[before:]
    assert stored == event
    assert stored.sequence == before + 1
    assert (stored.entry.actor_key_id, stored.entry.actor_role) == (OFFICER.key_id, "officer")
    assert (stored.entry.resource_type, stored.entry.resource_id) == ("flight", "f1")
    assert (stored.entry.details, stored.entry.policy_version) == ({"n": 2}, "p-9")


def test_an_event_disappears_with_a_rollback() -> None:
    world = World()
    head = world.audit.head()
    with world.uow() as uow:
        world.audit.record(uow, "thing", "ok")

    def failing_use_case() -> None:
        with world.uow() as uow:
            world.audit.record(uow, "thing", "ok")
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        failing_use_case()
    assert "thing" not in world.actions()
    assert world.audit.head() == head
    assert world.audit.verify().ok


def test_a_request_is_marked_recorded_only_after_the_commit(
    world: World, request_audit: RequestAudit
) -> None:
    with world.uow() as uow:
        event = world.audit.record(uow, "thing", "ok")
        assert not request_audit.recorded
        uow.commit()
    assert request_audit.recorded
    assert event.entry.details == {"request": "POST /v1/flights"}


def test_a_request_whose_use_case_fails_is_not_marked_recorded(
    world: World, request_audit: RequestAudit
) -> None:
    with world.uow() as uow:
        world.audit.record(uow, "thing", "ok")
    assert not request_audit.recorded
    with pytest.raises(InvalidInputError):  # refused before any event
        world.flights.create(NewFlight("E", "1", DEPARTURE, "AAA", "BBB", Direction.EXIT))
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):  # its event was rolled back with it
        world.flights.create(NewFlight("EE", "1", DEPARTURE, "AAA", "BBB", Direction.EXIT))
    assert not request_audit.recorded
    world.flights.create(NewFlight("EE", "1", DEPARTURE, "AAA", "BBB", Direction.EXIT), OFFICER)
    assert request_audit.recorded
    assert world.uow.tables.audit_events[-1].entry.details == {"request": "POST /v1/flights"}


def test_record_alone_is_a_transaction_of_its_own() -> None:
    world = World()
    commits = world.uow.commits
    event = world.audit.record_alone("access", "denied", AUDITOR, "flight", "f1")
    assert world.uow.commits == commits + 1
    assert world.uow.tables.audit_events[-1] == event


def test_events_are_paged_and_filtered() -> None:
    world = World()

    def many(uow) -> None:  # type: ignore[no-untyped-def]
        for i in range(PAGE + 5):
            world.audit.record(uow, "even" if i % 2 == 0 else "odd", "ok", OFFICER if i else None)

    world.uow.seed(many)
    total = len(world.uow.tables.audit_events)
    assert len(list(world.audit.all_events())) == total
    assert len(world.audit.events(0, 10**6)) == PAGE  # capped
    odd = list(world.audit.all_events("odd"))
    assert len(odd) == (PAGE + 5) // 2
    assert all(e.entry.action == "odd" for e in odd)
    page = world.audit.events(after_sequence=3, limit=2)
    assert [e.sequence for e in page] == [4, 5]
    by_officer = world.audit.events(0, 5, actor_key_id=OFFICER.key_id)
    assert {e.entry.actor_key_id for e in by_officer} == {OFFICER.key_id}
    assert world.audit.verify().ok
    assert world.audit.verify().events == total


def tampered_world() -> World:
    world = World()
    for i in range(4):
        world.audit.record_alone("thing", "ok", OFFICER, "flight", f"f{i}")
    assert world.audit.verify().ok
    return world


def test_verify_detects_a_modified_event() -> None:
    world = tampered_world()
    events = world.uow.tables.audit_events
    victim = events[2]
    events[2] = replace(victim, entry=replace(victim.entry, outcome="denied"))
    result = world.audit.verify()
    assert (result.ok, result.first_broken_sequence) == (False, victim.sequence)
    assert "modified" in (result.reason or "")


def test_verify_detects_a_deleted_event() -> None:
    world = tampered_world()
    del world.uow.tables.audit_events[1]
    result = world.audit.verify()
    assert (result.ok, result.first_broken_sequence) == (False, 2)


def test_verify_detects_a_truncated_log() -> None:
    world = tampered_world()
    world.uow.tables.audit_events.pop()
    result = world.audit.verify()
    assert not result.ok
    assert "signed head" in (result.reason or "")


def test_verify_detects_a_rechained_log_with_a_forged_head() -> None:
    world = tampered_world()
    events = world.uow.tables.audit_events
    last = events[-1]
    forged = chain(
        AuditEntry(last.entry.occurred_at, "thing", "forged"), last.sequence, last.previous_hash
    )
    events[-1] = forged
    world.uow.tables.audit_head = AuditHeadRow(forged.sequence, forged.hash, "0" * 64)
    result = world.audit.verify()
    assert (result.ok, result.first_broken_sequence) == (False, forged.sequence)
    # The forged event has no MAC of its own: named by it, before the head is even looked at.
    assert "MAC" in (result.reason or "")
