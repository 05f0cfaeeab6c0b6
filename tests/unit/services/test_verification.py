"""1:1 verification with the fake analyser: a live capture against a document photo or the
chip's DG2 (chip files built by ``tests.chip_builder``), and the encounter it records."""

from __future__ import annotations

from datetime import date

import pytest

from entryexit.documents.mrz import parse_mrz
from entryexit.domain.model import (
    CitizenshipClass,
    Decision,
    Direction,
    DocumentKey,
    EncounterMethod,
)
from entryexit.errors import (
    ImageDecodeError,
    InvalidInputError,
    NoFaceError,
    PermissionDeniedError,
)
from entryexit.services.verification import ChipEvidence
from tests import chip_builder
from tests.unit.services.world import (
    AUDITOR,
    FOREIGN_STATE,
    GATE,
    MANAGER,
    OFFICER,
    OTHER_GATE,
    THRESHOLD,
    World,
    traveler,
)

TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
CHIP_DOCUMENT = DocumentKey("UTO", "L898902C3")


def chip(
    seed: int, pki: chip_builder.Pki | None = None, dg2_image: bytes | None = None
) -> ChipEvidence:
    groups = {
        1: chip_builder.dg1(TD3),
        2: chip_builder.dg2(f"face:{seed}".encode(), False, 200, 200),
    }
    sod = chip_builder.sod(groups, pki) if pki is not None else None
    dg2 = groups[2] if dg2_image is None else chip_builder.dg2(dg2_image, False, 200, 200)
    return ChipEvidence(dg2=dg2, dg1=groups[1], sod=sod)


def printed(lines: list[str] = TD3):  # type: ignore[no-untyped-def]
    return parse_mrz(lines, date(2026, 11, 23))


def test_the_same_face_matches_and_another_does_not() -> None:
    world = World()
    match = world.verifications.verify(OFFICER, b"face:1", b"face:1")
    assert match.decision is Decision.MATCH
    assert match.similarity == pytest.approx(1.0, abs=1e-5)
    assert (match.threshold, match.model, match.policy_version) == (
        THRESHOLD,
        "fake-model",
        "default-2",
    )
    assert match.encounter_id is None  # no flight, no document: nothing to record
    other = world.verifications.verify(OFFICER, b"face:1", b"face:4")
    assert (other.decision, other.reasons) == (Decision.NO_MATCH, ("below_threshold",))
    assert other.similarity is not None
    assert other.similarity < THRESHOLD
    events = [e.entry for e in world.uow.tables.audit_events]
    events = [e for e in events if e.action == "verification"]
    assert [e.details for e in events] == [
        {"decision": "match", "chip": "no"},
        {"decision": "no_match", "chip": "no"},
    ]
    assert world.uow.tables.encounters == {}


def test_a_poor_capture_asks_for_another() -> None:
    world = World()
    blurred = world.verifications.verify(OFFICER, b"blurred:1", b"face:1")
    assert (blurred.decision, blurred.reasons, blurred.similarity) == (
        Decision.RECAPTURE,
        ("blur",),
        None,
    )
    empty = world.verifications.verify(OFFICER, b"empty", b"face:1")
    assert (empty.decision, empty.reasons) == (Decision.RECAPTURE, ("no_face",))


def test_a_bad_document_photo_is_an_error_that_names_it() -> None:
    world = World()
    with pytest.raises(ImageDecodeError) as undecodable:
        world.verifications.verify(OFFICER, b"face:1", b"\x00garbage")
    assert undecodable.value.message.startswith("document photo:")
    with pytest.raises(NoFaceError) as faceless:
        world.verifications.verify(OFFICER, b"face:1", b"empty")
    assert faceless.value.message.startswith("document photo:")
    with pytest.raises(NoFaceError) as chip_faceless:
        world.verifications.verify(OFFICER, b"face:1", None, chip=chip(1, dg2_image=b"empty"))
    assert chip_faceless.value.message.startswith("chip photo (DG2):")
    assert "verification" not in world.actions()


def test_exactly_one_of_document_photo_and_chip_is_needed() -> None:
    world = World()
    with pytest.raises(InvalidInputError):
        world.verifications.verify(OFFICER, b"face:1", None)
    with pytest.raises(InvalidInputError):
        world.verifications.verify(OFFICER, b"face:1", b"face:1", chip=chip(1))
    assert "verification" not in world.actions()


def test_a_match_on_a_flight_records_an_encounter_handed_to_the_crossings() -> None:
    world = World()
    flight = world.flight(Direction.ENTRY, [traveler("N1"), traveler("N2")])
    # A partner's gate with a photo it supplied cannot vouch for the identity: no encounter.
    from_gate = world.verifications.verify(
        GATE, b"face:1", b"face:1", document=DocumentKey(FOREIGN_STATE, "N1"), flight_id=flight.id
    )
    assert (from_gate.decision, from_gate.encounter_id) == (Decision.MATCH, None)
    result = world.verifications.verify(
        OFFICER,
        b"face:1",
        b"face:1",
        document=DocumentKey(FOREIGN_STATE, "N1"),
        flight_id=flight.id,
        gate="LANE4",
        device="kiosk-2",
    )
    assert result.encounter_id is not None
    encounter = world.uow.tables.encounters[result.encounter_id]
    assert encounter.traveler_id == world.traveler_id("N1")
    assert (encounter.method, encounter.flight_id) == (EncounterMethod.BIOMETRIC, flight.id)
    assert (encounter.gate, encounter.device, encounter.model) == ("LANE4", "kiosk-2", "fake-model")
    assert encounter.score == pytest.approx(1.0, abs=1e-5)
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.resource_type, event.resource_id) == (
        "verification",
        "flight",
        flight.id,
    )
    (message,) = world.uow.tables.outbox.values()
    assert message.payload["encounter_id"] == result.encounter_id
    assert message.template is not None
    world.crossings.wait_idle(timeout=5)
    (admission,) = world.uow.tables.admissions.values()
    assert admission.traveler_id == encounter.traveler_id

    again = world.verifications.verify(
        GATE, b"face:1", b"face:1", document=DocumentKey(FOREIGN_STATE, "N1"), flight_id=flight.id
    )
    assert again.decision is Decision.MATCH
    assert again.encounter_id is None  # already processed on this flight
    assert len(world.uow.tables.encounters) == 1


def test_no_encounter_without_a_match_or_a_known_document() -> None:
    world = World()
    flight = world.flight(Direction.EXIT, [traveler("N1")])
    no_match = world.verifications.verify(
        OFFICER,
        b"face:4",
        b"face:1",
        document=DocumentKey(FOREIGN_STATE, "N1"),
        flight_id=flight.id,
    )
    unknown = world.verifications.verify(
        OFFICER, b"face:1", b"face:1", document=DocumentKey("UTO", "NOPE"), flight_id=flight.id
    )
    assert (no_match.decision, unknown.decision) == (Decision.NO_MATCH, Decision.MATCH)
    assert no_match.encounter_id is unknown.encounter_id is None
    assert world.uow.tables.encounters == {}
    assert world.uow.tables.outbox == {}


def test_a_gate_verifies_only_for_its_carrier_and_readers_not_at_all() -> None:
    world = World()
    flight = world.flight(Direction.EXIT, [traveler("N1")])
    events = len(world.uow.tables.audit_events)
    with pytest.raises(PermissionDeniedError):
        world.verifications.verify(
            OTHER_GATE,
            b"face:1",
            b"face:1",
            document=DocumentKey(FOREIGN_STATE, "N1"),
            flight_id=flight.id,
        )
    for actor in (AUDITOR, MANAGER):
        with pytest.raises(PermissionDeniedError):
            world.verifications.verify(actor, b"face:1", b"face:1")
    assert len(world.uow.tables.audit_events) == events
    assert world.verifications.verify(OTHER_GATE, b"face:1", b"face:1").decision is Decision.MATCH


def test_the_chip_photo_is_compared_and_its_document_identifies_the_traveler() -> None:
    pki = chip_builder.make_pki()
    world = World(trusted_cscas=[pki.csca])
    flight = world.flight(Direction.EXIT, [traveler("L898902C3", CitizenshipClass.CITIZEN)])
    result = world.verifications.verify(
        OFFICER, b"face:1", None, flight_id=flight.id, chip=chip(1, pki), printed_mrz=printed()
    )
    assert result.decision is Decision.MATCH
    assert result.chip_checks["dg1_matches_printed_mrz"] == "passed"
    assert {"dg1_hash", "dg2_hash", "csca_chain"} <= set(result.chip_checks)
    assert set(result.chip_checks.values()) == {"passed"}
    assert result.encounter_id is not None
    assert world.uow.tables.encounters[result.encounter_id].traveler_id == world.traveler_id(
        CHIP_DOCUMENT.number
    )
    assert world.uow.tables.audit_events[-1].entry.details["chip"] == "yes"


def test_a_gate_cannot_record_another_travelers_crossing_with_a_valid_chip() -> None:
    """The attack (found in review): a partner's gate sends a real, CSCA-vouched chip (an
    accomplice's passport) with that person's face, and names the victim's document on an
    exit flight, to close the victim's stay. The document named must be the chip's own, and
    the traveler must be on the flight."""
    pki = chip_builder.make_pki()
    world = World(trusted_cscas=[pki.csca])
    flight = world.flight(
        Direction.EXIT, [traveler("L898902C3", CitizenshipClass.CITIZEN), traveler("VICTIM1")]
    )
    victim = DocumentKey(FOREIGN_STATE, "VICTIM1")
    named = world.verifications.verify(
        GATE, b"face:1", None, document=victim, flight_id=flight.id, chip=chip(1, pki)
    )
    assert named.decision is Decision.MANUAL
    assert named.chip_checks["document_matches_chip"] == "failed"
    assert named.encounter_id is None
    # The chip's own holder, on the flight: the gate's chip match is recorded.
    own = world.verifications.verify(GATE, b"face:1", None, flight_id=flight.id, chip=chip(1, pki))
    assert own.encounter_id is not None
    # Not on this flight's manifest: nothing is recorded, whoever asks.
    other = world.flight(Direction.EXIT, [traveler("N9")], number="77")
    elsewhere = world.verifications.verify(
        OFFICER, b"face:1", None, flight_id=other.id, chip=chip(1, pki)
    )
    assert (elsewhere.decision, elsewhere.encounter_id) == (Decision.MATCH, None)
    assert all(
        e.traveler_id != world.traveler_id("VICTIM1") for e in world.uow.tables.encounters.values()
    )


def test_a_chip_without_a_security_object_is_compared_but_reported_unchecked() -> None:
    world = World()
    result = world.verifications.verify(OFFICER, b"face:1", None, chip=chip(1))
    assert result.decision is Decision.MATCH
    assert result.chip_checks == {"security_object": "not_checked"}


def test_a_chip_whose_checks_fail_is_not_compared_but_sent_to_an_officer() -> None:
    pki = chip_builder.make_pki()
    world = World(trusted_cscas=[pki.csca])
    other_name = [TD3[0].replace("ERIKSSON", "ERIKSSEN"), TD3[1]]
    mismatch = world.verifications.verify(
        OFFICER, b"face:1", None, chip=chip(1, pki), printed_mrz=printed(other_name)
    )
    assert (mismatch.decision, mismatch.similarity) == (Decision.MANUAL, None)
    assert mismatch.reasons == ("chip_check_failed:dg1_matches_printed_mrz",)
    altered = world.verifications.verify(
        OFFICER, b"face:1", None, chip=chip(1, pki, dg2_image=b"face:9")
    )
    assert altered.decision is Decision.MANUAL
    assert altered.reasons == ("chip_check_failed:dg2_hash",)
    assert altered.chip_checks["dg2_hash"] == "failed"


def test_chip_checks_are_reported_whatever_the_decision() -> None:
    pki = chip_builder.make_pki()
    world = World(trusted_cscas=[pki.csca])
    match = world.verifications.verify(OFFICER, b"face:1", None, chip=chip(1, pki))
    no_match = world.verifications.verify(OFFICER, b"face:4", None, chip=chip(1, pki))
    assert no_match.decision is Decision.NO_MATCH
    assert match.chip_checks
    assert no_match.chip_checks == match.chip_checks
