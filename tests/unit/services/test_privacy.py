"""Opt-outs, the purge that enforces retention, and the privacy and fairness reports."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from entryexit.domain.model import (
    CitizenshipClass,
    Decision,
    Direction,
    DocumentKey,
    EncounterMethod,
    Sex,
)
from entryexit.errors import ConflictError, NotFoundError, PermissionDeniedError
from entryexit.services.console import Resolution
from entryexit.services.privacy import OptOutNotRecordedError, OptOutRefusedError
from tests.fake_storage import InjectedCommitError
from tests.unit.services.world import (
    FOREIGN_STATE,
    GATE,
    OFFICER,
    OTHER_GATE,
    START,
    World,
    traveler,
)

N1 = DocumentKey(FOREIGN_STATE, "N1")


def test_an_opt_out_is_recorded_and_takes_the_traveler_out_of_the_gallery() -> None:
    world = World()
    flight = world.boarding(
        Direction.EXIT, [traveler("N1"), traveler("N2")], seeds={"N1": 1, "N2": 2}
    )
    opt_out = world.opt_outs.record(GATE, flight.id, N1, "G1")
    assert (opt_out.traveler_id, opt_out.policy_version) == (world.traveler_id("N1"), "default-2")
    encounter = world.uow.tables.encounters[opt_out.encounter_id]
    assert encounter.method is EncounterMethod.OPT_OUT
    assert (encounter.gate, encounter.device, encounter.score) == ("G1", "key:k-gate", None)
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.resource_id) == ("opt-out", flight.id)
    assert event.details == {
        "encounter": opt_out.encounter_id,
        "deleted_reference_templates": 1,
        "deleted_capture_images": 0,
        "deleted_idempotency_keys": 0,
    }
    assert opt_out.traveler_id not in {r.traveler_id for r in world.uow.tables.templates.values()}
    (message,) = world.uow.tables.outbox.values()
    assert message.payload["method"] == "opt_out"
    assert message.template is None

    restaged = world.flights.get(flight.id)
    assert restaged.gallery_version == flight.gallery_version + 1
    gallery = world.galleries.gallery_for(restaged)
    assert gallery.traveler_ids == (world.traveler_id("N2"),)
    outcome = world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    assert outcome.decision is Decision.NO_MATCH  # no capture of them can match


def test_an_opt_out_is_refused_where_policy_requires_capture() -> None:
    world = World()
    world.load_shipped("noncitizens-mandatory.toml")
    manifest = [traveler("N1"), traveler("C1", CitizenshipClass.CITIZEN)]
    flight = world.boarding(Direction.EXIT, manifest, seeds={"N1": 1, "C1": 2})
    events = len(world.uow.tables.audit_events)
    with pytest.raises(OptOutRefusedError):
        world.opt_outs.record(OFFICER, flight.id, N1, "desk")
    # A gate is told only that it was not recorded (the refusal would name the class).
    with pytest.raises(OptOutNotRecordedError):
        world.opt_outs.record(GATE, flight.id, N1, "G1")
    assert world.uow.tables.encounters == {}
    assert len(world.uow.tables.audit_events) == events
    assert world.flights.get(flight.id).gallery_version == flight.gallery_version
    # Citizens stay voluntary under that policy.
    opt_out = world.opt_outs.record(GATE, flight.id, DocumentKey("UTO", "C1"), "G1")
    assert opt_out.policy_version == "noncitizens-mandatory-1"


def test_opt_outs_that_are_refused() -> None:
    world = World()
    flight = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    world.enrol("OFF", 5)  # a known document, not on this manifest
    # Officers learn why; a gate gets one answer whatever the reason (no oracle).
    with pytest.raises(NotFoundError):
        world.opt_outs.record(OFFICER, flight.id, DocumentKey("UTO", "OFF"), "desk")
    for unknown in ("OFF", "NEVER"):
        with pytest.raises(OptOutNotRecordedError):
            world.opt_outs.record(GATE, flight.id, DocumentKey("UTO", unknown), "G1")
    with pytest.raises(NotFoundError):
        world.opt_outs.record(GATE, "no-such-flight", N1, "G1")
    with pytest.raises(PermissionDeniedError):
        world.opt_outs.record(OTHER_GATE, flight.id, N1, "G1")
    assert world.uow.tables.encounters == {}
    world.opt_outs.record(GATE, flight.id, N1, "G1")
    with pytest.raises(ConflictError):
        world.opt_outs.record(OFFICER, flight.id, N1, "desk")
    assert len(world.uow.tables.encounters) == 1


def purge_world() -> tuple[World, str]:
    """A no-match capture (image and record kept 12 h: its traveler is unknown), a match of a
    foreign national (336 h), a photo enrolled before any manifest named it (12 h), and a
    gallery deleted 2 h after the 18:00 departure."""
    world = World()
    flight = world.boarding(Direction.EXIT, [traveler("N1")], seeds={"N1": 1})
    world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")
    world.captures.process(GATE, flight.id, b"face:4", "G1", "cam")
    world.enrol("EARLY", 6)
    return world, flight.id


PURGED = {
    "capture_images": 1,
    "idempotency_keys": 0,
    "capture_records": 1,
    "reference_templates": 1,
    "encounter_records": 0,
    "manifest_entries": 0,
    "admissions": 0,
    "traveler_documents": 0,
    "manifest_conflicts": 0,
    "data_keys": 0,
    "travelers": 0,
    "staged_galleries": 1,
    "fingerprint_templates": 0,
    "case_fingerprints": 0,
}


def test_the_purge_deletes_what_expired_and_records_how_much_in_the_same_transaction() -> None:
    world, flight_id = purge_world()
    world.advance(hours=13)
    held_before = world.reports.retention_counts(world.clock.now, world.policies.in_force())
    assert sum(kind["overdue"] for kind in held_before.values()) == 4

    world.uow.fail_commit_after(1)  # the statistics' refresh commits, the first batch fails
    with pytest.raises(InjectedCommitError):
        world.purge.run()
    assert world.reports.retention_counts(world.clock.now, world.policies.in_force()) == held_before
    assert "purge" not in world.actions()
    assert world.flights.get(flight_id).staged

    assert world.purge.run() == PURGED
    event = world.uow.tables.audit_events[-1].entry
    run = event.details["run"]  # the run's batches name it (here one batch did everything)
    assert (event.action, event.actor_key_id, event.details) == (
        "purge",
        None,
        {**PURGED, "run": run},
    )
    held = world.reports.retention_counts(world.clock.now, world.policies.in_force())
    assert all(kind["overdue"] == 0 for kind in held.values())
    assert held["capture_records"]["held"] == 1  # the foreign national's match
    assert not world.flights.get(flight_id).staged
    # Idempotent: a second run deletes nothing more, and says so.
    assert set(world.purge.run().values()) == {0}
    assert world.actions().count("purge") == 2


def test_the_privacy_report() -> None:
    world, _ = purge_world()
    child = traveler("K1", born=date(2020, 5, 5))  # exempt: under 14
    flight = world.boarding(
        Direction.EXIT, [traveler("N2"), child], seeds={"N2": 2, "K1": 3}, number="13"
    )
    world.opt_outs.record(GATE, flight.id, DocumentKey(FOREIGN_STATE, "N2"), "G1")
    world.advance(hours=13)
    overdue = world.privacy.report(START)
    assert overdue["overdue_total"] == 5  # PURGED's four kinds, and the second gallery
    world.purge.run()

    report = world.privacy.report(START)
    assert report["policy_in_force"] == "default-2"
    assert report["overdue_total"] == 0
    assert report["held"]["capture_records"] == 1  # type: ignore[index]
    assert report["held"]["fingerprint_templates"] == 0  # type: ignore[index]
    assert report["held"]["case_fingerprints"] == 0  # type: ignore[index]
    oldest = report["oldest"]
    assert isinstance(oldest, dict)
    assert START <= datetime.fromisoformat(oldest["reference_templates"]) <= world.clock.now
    assert (oldest["fingerprint_templates"], oldest["case_fingerprints"]) == (None, None)
    assert report["purges"] == {
        "runs": 1,
        "deleted": {**PURGED, "staged_galleries": 2},
    }
    assert report["opt_outs"] == 1
    assert report["exemptions"] == 1
    assert report["manual_processing"] == 0
    assert report["decisions"] == {"match": 1}  # the no-match record was purged
    before = world.privacy.report(START, START + timedelta(seconds=1))
    assert before["purges"] == {"runs": 0, "deleted": {}}


def test_a_restaged_flights_exemptions_are_counted_once() -> None:
    world = World()
    child = traveler("K1", born=date(2020, 5, 5))
    flight = world.boarding(Direction.EXIT, [traveler("N1"), child], seeds={"N1": 1, "K1": 3})
    world.galleries.stage(flight.id, OFFICER)  # e.g. after a manifest update
    assert world.privacy.report(START)["exemptions"] == 1


def test_purges_after_the_first_thousand_are_reported() -> None:
    world = World()

    def old_purges(uow) -> None:  # type: ignore[no-untyped-def]
        for _ in range(1000):
            world.audit.record(uow, "purge", "ok", details={"capture_images": 1})

    world.uow.seed(old_purges)
    world.advance(days=30)
    since = world.clock.now
    world.enrol("EARLY", 6)
    world.advance(hours=13)
    assert world.purge.run()["reference_templates"] == 1
    report = world.privacy.report(since)
    assert report["purges"] == {
        "runs": 1,
        "deleted": {**dict.fromkeys(PURGED, 0), "reference_templates": 1},
    }


def test_the_fairness_report_counts_outcomes_by_sex() -> None:
    world = World()
    manifest = [
        traveler("F1", sex=Sex.FEMALE),
        traveler("F2", sex=Sex.FEMALE),
        traveler("M1", sex=Sex.MALE),
        traveler("M2", sex=Sex.MALE),
    ]
    seeds = {"F1": 1, "F2": 3, "M1": 4, "M2": 5}
    flight = world.boarding(Direction.EXIT, manifest, seeds=seeds)
    world.captures.process(GATE, flight.id, b"face:1", "G1", "cam")  # F1 matched
    world.opt_outs.record(GATE, flight.id, DocumentKey(FOREIGN_STATE, "M1"), "G1")
    missed = world.captures.process(GATE, flight.id, b"face:10", "G1", "cam")
    assert missed.decision is Decision.NO_MATCH
    world.console.resolve(OFFICER, missed.capture_id, Resolution.CONFIRMED, world.traveler_id("M2"))

    report = world.fairness.report(START)
    groups = report["groups"]
    assert groups["F"] == {  # type: ignore[index]
        "travelers_with_photo": 2,
        "biometric": 1,
        "not_processed": 1,
        "biometric_match_rate": 0.5,
        "confirmed_false_non_match_rate": 0.0,
    }
    assert groups["M"] == {  # type: ignore[index]
        "travelers_with_photo": 2,
        "opt_out": 1,
        "confirmed_false_non_match": 1,
        "biometric_match_rate": 0.0,
        "confirmed_false_non_match_rate": 1.0,
    }
    assert world.fairness.report(START - timedelta(days=2), START)["groups"] == {}
