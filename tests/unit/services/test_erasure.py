"""Retention of biographic data (documents, manifest entries, stays, data keys), the erasure of
one traveler, and what an opt-out deletes at once: services over the in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from entryexit.domain.access import Principal, Role
from entryexit.domain.model import CitizenshipClass, Decision, Direction, DocumentKey
from entryexit.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from tests.unit.services.test_crossings import leave
from tests.unit.services.world import (
    ADMIN,
    AUDITOR,
    FOREIGN_STATE,
    GATE,
    OFFICER,
    SUPERVISOR,
    World,
    traveler,
)

CITIZEN = DocumentKey("UTO", "C1")
FOREIGN = DocumentKey(FOREIGN_STATE, "F1")


def arrivals() -> tuple[World, str, str]:
    """A citizen and a foreign national arrive (matched at the gate); the foreign national's
    stay is opened. Returns the world and the two traveler ids."""
    world = World()
    flight = world.boarding(
        Direction.ENTRY,
        [traveler("C1", CitizenshipClass.CITIZEN, surname="CITIZEN"), traveler("F1")],
        seeds={"C1": 1, "F1": 2},
    )
    for seed in (1, 2):
        outcome = world.captures.process(GATE, flight.id, f"face:{seed}".encode(), "G1", "cam")
        assert outcome.decision is Decision.MATCH
    world.crossings.wait_idle(timeout=5)
    return world, world.traveler_id("C1"), world.traveler_id("F1")


def names(world: World, *traveler_ids: str) -> set[str]:
    return {i.surname for i in world.reports.traveler_identities(list(traveler_ids)).values()}


def test_a_citizen_is_forgotten_entirely_once_retention_ends() -> None:
    """Before: six simulated years later every citizen's name still decrypted and the report
    said overdue 0. Now the citizen's manifest entry, document and data key go 336 hours
    after the departure, and the report counts them overdue until the purge runs."""
    world, citizen, foreign = arrivals()
    assert names(world, citizen, foreign) == {"CITIZEN", "DOE"}
    world.advance(hours=12 + 336)
    report = world.privacy.report(world.clock.now - timedelta(days=30))
    overdue = report["overdue"]
    assert overdue["manifest_entries"] == 1  # type: ignore[index]
    assert overdue["encounter_records"] == 1  # type: ignore[index]

    counts = world.purge.run()
    assert counts["manifest_entries"] == 1
    assert counts["traveler_documents"] == 1
    assert counts["data_keys"] == 1  # crypto-shredded: every sealed copy is unreadable
    assert counts["travelers"] == 1
    assert citizen not in world.uow.tables.data_keys
    assert CITIZEN not in world.uow.tables.documents
    assert names(world, citizen, foreign) == {"DOE"}  # the foreign national's 5 years run
    after = world.privacy.report(world.clock.now - timedelta(days=30))
    assert after["overdue_total"] == 0
    assert world.uow.scrubs == 1  # the store was asked to drop the deleted bytes
    world.purge.run()
    assert world.uow.scrubs == 1  # nothing deleted, no checkpoint to wait for


def test_an_open_stay_keeps_its_traveler_until_it_closes_then_both_go() -> None:
    world, _, foreign = arrivals()
    world.advance(days=6 * 365)  # encounter records (5 years) and the manifest entry expire
    world.purge.run()
    assert FOREIGN in world.uow.tables.documents  # the open stay still names them
    (stay,) = world.uow.tables.admissions.values()
    assert stay.exited_on is None
    overstays = world.crossings.overstays(OFFICER, world.clock.now.date())
    assert [row.surname for row in overstays["in_country"]] == ["DOE"]  # still named

    world.enrol("F1", 2)  # a new photo for the exit (the entry's expired long ago)
    assert leave(world, "F1", 2, departure=world.clock.now + timedelta(hours=5)) == foreign
    assert stay.id in world.uow.tables.admissions
    world.advance(hours=10)
    world.purge.run()
    assert world.uow.tables.admissions[stay.id].exited_on is not None  # closed: 5 years more
    world.advance(days=5 * 365 + 2)
    counts = world.purge.run()
    assert counts["admissions"] == 1
    assert counts["traveler_documents"] == 1
    assert foreign not in world.uow.tables.data_keys
    assert world.uow.tables.admissions == {}
    assert world.privacy.report(world.clock.now)["overdue_total"] == 0


def test_a_purge_preview_shows_what_a_date_would_purge_and_deletes_nothing() -> None:
    world, citizen, _ = arrivals()
    before = len(world.uow.tables.audit_events)
    later = world.clock.now + timedelta(hours=12 + 336)
    preview = world.purge.preview(later)
    assert preview["traveler_documents"] == 1
    assert preview["data_keys"] == 1
    assert citizen in world.uow.tables.data_keys  # nothing deleted
    assert len(world.uow.tables.audit_events) == before  # nothing recorded
    report = world.privacy.report(world.clock.now, as_of=later)
    assert report["as_of"] == later.isoformat()
    assert report["overdue"]["manifest_entries"] == 1  # type: ignore[index]
    assert world.purge.run()["traveler_documents"] == 0  # today nothing is due
    before_any_policy = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="no policy"):
        world.purge.preview(before_any_policy)
    with pytest.raises(InvalidInputError, match="no policy"):
        world.privacy.report(before_any_policy, as_of=before_any_policy)


def test_a_supervisor_erases_a_traveler_and_gets_a_report_of_what_went() -> None:
    world, citizen, foreign = arrivals()
    flight_id = next(iter(world.uow.tables.flights))
    version = world.flights.get(flight_id).gallery_version
    report = world.services.erasure.erase(SUPERVISOR, FOREIGN, "court_order")
    assert report.traveler_id == foreign
    erased = report.erased
    assert erased["traveler_documents"] == 1
    assert erased["reference_templates"] == 1
    assert erased["encounter_records"] == 1
    assert erased["manifest_entries"] == 1
    assert erased["admissions"] == 1
    assert erased["capture_records"] == 1
    assert erased["data_keys"] == 1
    assert erased["travelers"] == 1
    tables = world.uow.tables
    assert foreign not in tables.data_keys
    assert FOREIGN not in tables.documents
    assert all(
        foreign not in (a.traveler_id, a.exit_traveler_id) for a in tables.admissions.values()
    )
    assert names(world, citizen, foreign) == {"CITIZEN"}
    # The staged gallery no longer holds them: a capture of them matches no one.
    flight = world.flights.get(flight_id)
    assert flight.gallery_version == version + 1
    assert world.galleries.gallery_for(flight).traveler_ids == (citizen,)
    assert world.uow.scrubs == 1

    event = tables.audit_events[-1].entry
    assert (event.action, event.actor_key_id) == ("traveler erase", SUPERVISOR.key_id)
    assert (event.resource_type, event.resource_id) == ("traveler", foreign)
    assert event.details == {"reason": "court_order", **erased}
    for value in event.details.values():  # counts and a reason code: no personal data
        assert "F1" not in str(value)
        assert "DOE" not in str(value)
    with pytest.raises(NotFoundError):
        world.services.erasure.erase(ADMIN, FOREIGN, "court_order")  # once only


@pytest.mark.parametrize(
    "actor",
    [
        OFFICER,
        AUDITOR,
        GATE,
        Principal("k-super-zz", "airline supervisor", Role.SUPERVISOR, carrier="ZZ"),
    ],
)
def test_only_an_unbound_supervisor_or_admin_may_erase(actor: Principal) -> None:
    world, _, foreign = arrivals()
    events = len(world.uow.tables.audit_events)
    with pytest.raises(PermissionDeniedError):
        world.services.erasure.erase(actor, FOREIGN, "court_order")
    assert foreign in world.uow.tables.data_keys
    assert len(world.uow.tables.audit_events) == events


def test_an_erasure_needs_a_known_document_and_a_reason_code() -> None:
    world, _, foreign = arrivals()
    with pytest.raises(InvalidInputError, match="reason"):
        world.services.erasure.erase(SUPERVISOR, FOREIGN, "because Jane Doe asked")
    with pytest.raises(NotFoundError):
        world.services.erasure.erase(SUPERVISOR, DocumentKey("UTO", "NOPE"), "court_order")
    assert foreign in world.uow.tables.data_keys


def test_an_opt_out_keeps_the_template_a_later_flight_still_needs() -> None:
    world = World()
    first = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    later = world.flight(
        Direction.EXIT,
        [traveler("N1")],
        number="13",
        departure=datetime(2026, 11, 25, 9, tzinfo=UTC),
    )
    kept = world.opt_outs.record(GATE, first.id, DocumentKey(FOREIGN_STATE, "N1"), "G1")
    assert kept.deleted == {"reference_templates": 0, "capture_images": 0, "idempotency_keys": 0}
    assert len(world.uow.tables.templates) == 1
    world.galleries.stage(later.id, OFFICER)
    assert world.captures.process(GATE, later.id, b"face:1", "G1", "cam").decision is (
        Decision.MATCH
    )
