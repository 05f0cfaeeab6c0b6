"""The watchlist: kept by its manager, screened at staging and at the gate, every alert
dispositioned by an officer with a reason."""

from __future__ import annotations

import pytest

from entryexit.domain.model import Decision, Direction
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.watchlist import Disposition
from tests.fake_storage import InjectedCommitError
from tests.unit.services.world import (
    GATE,
    MANAGER,
    OFFICER,
    SUPERVISOR,
    World,
    traveler,
)


def listed(world: World, seed: int) -> str:
    return world.watchlist.add(MANAGER, f"face:{seed}".encode(), "wanted", "R-1")


def test_the_manager_adds_and_removes_entries_and_each_change_is_audited() -> None:
    world = World()
    entry_id = listed(world, 7)
    (entry,) = world.watchlist.entries(MANAGER)
    assert (entry.id, entry.category, entry.reason_code) == (entry_id, "wanted", "R-1")
    assert (entry.model, entry.added_by) == (world.engine.model, MANAGER.key_id)
    added = world.uow.tables.audit_events[-1].entry
    assert (added.action, added.actor_key_id, added.resource_id) == (
        "watchlist add",
        MANAGER.key_id,
        entry_id,
    )
    assert added.details == {"category": "wanted", "reason_code": "R-1"}

    world.watchlist.remove(MANAGER, entry_id)
    assert world.watchlist.entries(MANAGER) == []
    removed = world.uow.tables.audit_events[-1].entry
    assert (removed.action, removed.resource_id) == ("watchlist remove", entry_id)
    with pytest.raises(NotFoundError):
        world.watchlist.remove(MANAGER, entry_id)
    assert world.actions().count("watchlist remove") == 1


@pytest.mark.parametrize("actor", [OFFICER, SUPERVISOR, GATE])
def test_only_the_watchlist_manager_keeps_the_list(actor: object) -> None:
    world = World()
    entry_id = listed(world, 7)
    with pytest.raises(PermissionDeniedError):
        world.watchlist.add(actor, b"face:8", "wanted", "R-1")  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError):
        world.watchlist.remove(actor, entry_id)  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError):
        world.watchlist.entries(actor)  # type: ignore[arg-type]
    assert len(world.uow.tables.watchlist) == 1


@pytest.mark.parametrize(("category", "reason"), [("", "R"), ("a b", "R"), ("c", "x" * 33)])
def test_entry_labels_are_checked_before_anything_is_stored(category: str, reason: str) -> None:
    world = World()
    with pytest.raises(InvalidInputError):
        world.watchlist.add(MANAGER, b"face:7", category, reason)
    assert world.uow.tables.watchlist == {}


def test_staging_raises_alerts_in_the_staging_transaction_once() -> None:
    world = World()
    entry_id = listed(world, 1)
    flight = world.flight(Direction.EXIT, [traveler("N1"), traveler("N2")])
    world.enrol("N1", 1)
    world.enrol("N2", 2)

    world.uow.fail_commit_after(0)  # the staging transaction fails: no alert stands
    with pytest.raises(InjectedCommitError):
        world.galleries.stage(flight.id, OFFICER)
    assert world.uow.tables.alerts == {}
    assert not world.flights.get(flight.id).staged

    world.galleries.stage(flight.id, OFFICER)
    (alert,) = world.uow.tables.alerts.values()
    assert (alert.source, alert.status) == ("staging", "open")
    assert (alert.flight_id, alert.traveler_id) == (flight.id, world.traveler_id("N1"))
    assert (alert.watchlist_entry_id, alert.capture_id) == (entry_id, None)
    assert alert.score == pytest.approx(1.0, abs=1e-5)
    assert world.actions().count("watchlist alert") == 1
    # Restaging does not raise the same open alert again.
    world.galleries.stage(flight.id, OFFICER)
    assert len(world.uow.tables.alerts) == 1
    assert world.actions().count("watchlist alert") == 1
    with world.uow(read_only=True) as uow:
        assert world.watchlist.has_open_alert(uow, world.traveler_id("N1"))
        assert not world.watchlist.has_open_alert(uow, world.traveler_id("N2"))


def test_a_removed_entry_no_longer_screens() -> None:
    world = World()
    entry_id = listed(world, 1)
    flight = world.flight(Direction.EXIT, [traveler("N1")])
    world.enrol("N1", 1)
    world.watchlist.remove(MANAGER, entry_id)  # after the cache was possibly loaded
    world.galleries.stage(flight.id, OFFICER)
    assert world.uow.tables.alerts == {}


def test_a_capture_of_a_listed_traveler_goes_to_an_officer_with_a_gate_alert() -> None:
    world = World()
    entry_id = listed(world, 1)
    flight = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    outcome = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert (outcome.decision, outcome.reasons) == (Decision.MANUAL, ("officer_review",))
    assert outcome.seen_by(GATE).reasons == ("officer_review",)  # nothing that names the list
    assert world.uow.tables.encounters == {}
    assert world.uow.tables.outbox == {}
    gate_alerts = [a for a in world.uow.tables.alerts.values() if a.source == "gate"]
    (alert,) = gate_alerts
    assert (alert.capture_id, alert.traveler_id) == (outcome.capture_id, outcome.traveler_id)
    assert alert.watchlist_entry_id == entry_id
    assert world.uow.tables.captures[outcome.capture_id].image == b"face:1"  # for the officer


def test_capture_hits_reach_only_entries_at_or_above_the_threshold() -> None:
    world = World(watchlist_threshold=0.75)  # the deployment's override, not the 1:N 0.9
    near = listed(world, 2)  # unit_vector(1) . unit_vector(2) = 0.77
    same = listed(world, 3)

    def hits(seed: int) -> list[tuple[str, float]]:
        live = world.engine.analyse(f"face:{seed}".encode()).template.vector
        return world.watchlist.capture_hits(live)

    ((entry, score),) = hits(1)
    assert entry == near
    assert score == pytest.approx(0.77, abs=0.01)
    assert [entry for entry, _ in hits(3)] == [same]
    assert hits(4) == []


def test_a_stranger_on_the_list_raises_an_alert_at_every_capture() -> None:
    world = World()
    listed(world, 9)
    flight = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    first = world.captures.process(GATE, flight.id, b"face:9", "G1", "cam")
    second = world.captures.process(GATE, flight.id, b"face:9", "G1", "cam")
    assert first.decision is second.decision is Decision.NO_MATCH
    alerts = sorted(world.uow.tables.alerts.values(), key=lambda a: a.created_at)
    assert [a.capture_id for a in alerts] == [first.capture_id, second.capture_id]
    assert all(a.traveler_id is None for a in alerts)


def test_an_open_alert_from_staging_sends_a_matching_traveler_to_an_officer() -> None:
    world = World()
    listed(world, 1)
    flight = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    world.watchlist.remove(MANAGER, world.watchlist.entries(MANAGER)[0].id)
    outcome = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    # No gate hit any more, but the staging alert is still open.
    assert (outcome.decision, outcome.reasons) == (Decision.MANUAL, ("officer_review",))
    (alert,) = world.watchlist.alerts(OFFICER)
    world.watchlist.disposition(OFFICER, alert.id, Disposition.DISMISSED_DIFFERENT_PERSON, "ok")
    again = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert again.decision is Decision.MATCH


def test_a_disposition_needs_a_reason_and_is_made_once() -> None:
    world = World()
    listed(world, 1)
    world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    (alert,) = world.watchlist.alerts(OFFICER)
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInputError):
            world.watchlist.disposition(OFFICER, alert.id, Disposition.CONFIRMED, reason)
    with pytest.raises(PermissionDeniedError):
        world.watchlist.disposition(MANAGER, alert.id, Disposition.CONFIRMED, "seen")
    with pytest.raises(PermissionDeniedError):
        world.watchlist.alerts(MANAGER)  # separation of duties
    with pytest.raises(NotFoundError):
        world.watchlist.disposition(OFFICER, "no-such-alert", Disposition.CONFIRMED, "seen")
    assert world.watchlist.alerts(OFFICER, "open") == [alert]

    decided = world.watchlist.disposition(
        OFFICER, alert.id, Disposition.CONFIRMED, "  checked at the desk  "
    )
    assert (decided.status, decided.disposition_reason) == ("confirmed", "checked at the desk")
    assert decided.dispositioned_by == OFFICER.key_id
    assert decided.dispositioned_at is not None
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.outcome, event.resource_id) == (
        "alert disposition",
        "confirmed",
        alert.id,
    )
    with pytest.raises(ConflictError):
        world.watchlist.disposition(OFFICER, alert.id, Disposition.DISMISSED_OTHER, "again")
    assert world.uow.tables.alerts[alert.id].status == "confirmed"
    assert world.actions().count("alert disposition") == 1
    assert world.watchlist.alerts(OFFICER, "open") == []
    assert world.watchlist.alerts(OFFICER, None) == [decided]
    with world.uow(read_only=True) as uow:
        assert not world.watchlist.has_open_alert(uow, world.traveler_id("N1"))
