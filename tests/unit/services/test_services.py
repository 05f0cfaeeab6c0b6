"""The use cases with in-memory fakes: keys, flights, staging and every capture decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, TypedDict

import numpy as np
import pytest

from entryexit.domain.access import Principal, Role
from entryexit.domain.identification import IdentificationRule
from entryexit.domain.model import (
    CitizenshipClass,
    Decision,
    Direction,
    DocumentKey,
    DocumentType,
    EncounterMethod,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.errors import (
    AuthenticationError,
    ConflictError,
    ImageDecodeError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService, NewFlight
from entryexit.services.gallery import GalleryService
from entryexit.services.keys import KeyService
from entryexit.services.policies import PolicyService
from entryexit.services.thresholds import OperatingThresholds
from tests.fake_storage import FakeUnitOfWorkFactory
from tests.fakes import FakeAnalyser, FakeClock, StaticKeyProvider, unit_vector

OFFICER = Principal("k1", "officer", Role.OFFICER)
GATE = Principal("k2", "gate", Role.GATE, carrier="EE")
OTHER_GATE = Principal("k3", "gate", Role.GATE, carrier="ZZ")
AUDITOR = Principal("k4", "auditor", Role.AUDITOR)


STRICT = IdentificationRule(threshold=0.9, ambiguity_margin=0.03)


class World:
    def __init__(self, rule: IdentificationRule = STRICT) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.clock = FakeClock()
        analyser = FakeAnalyser()
        self.audit = AuditTrail(self.uow, self.clock, StaticKeyProvider())
        self.policies = PolicyService(self.uow, self.clock, self.audit)
        self.policies.ensure_default()
        self.flights = FlightService(self.uow, self.clock, analyser.model, self.audit)
        self.galleries = GalleryService(
            self.uow,
            self.clock,
            analyser.model,
            analyser.dimension,
            self.policies,
            self.audit,
        )
        self.enrolment = EnrolmentService(self.uow, analyser, self.clock, self.policies, self.audit)
        thresholds = OperatingThresholds(
            calibration=None,
            ambiguity_margin=rule.ambiguity_margin,
            gallery_override=rule.threshold,
        )
        self.captures = CaptureService(
            self.uow,
            analyser,
            self.galleries,
            thresholds,
            self.clock,
            self.policies,
            self.audit,
        )

    def flight(self, travelers: int = 3, photos: int = 3) -> str:
        flight = self.flights.create(
            NewFlight(
                "EE", "12", datetime(2026, 11, 23, 18, tzinfo=UTC), "AAA", "BBB", Direction.ENTRY
            )
        )
        self.flights.put_manifest(flight.id, [traveler(f"N{i}") for i in range(travelers)])
        for i in range(photos):
            self.enrolment.enrol(
                DocumentKey("XYZ", f"N{i}"), f"face:{i}".encode(), PhotoSource.PASSPORT
            )
        return flight.id


def traveler(number: str) -> ManifestTraveler:
    return ManifestTraveler(
        "DOE",
        "J",
        date(1990, 1, 1),
        Sex.MALE,
        "XYZ",
        CitizenshipClass.FOREIGN_NATIONAL,
        DocumentType.PASSPORT,
        DocumentKey("XYZ", number),
        date(2030, 1, 1),
    )


def test_keys_authenticate_only_the_exact_token() -> None:
    keys = KeyService(FakeUnitOfWorkFactory(), FakeClock())
    principal, token = keys.create(Role.OFFICER, "desk 4")
    assert keys.authenticate(token) == principal
    prefix, key_id, secret = token.split("_", 2)
    for bad in (
        None,
        "",
        "garbage",
        f"{prefix}_{key_id}_{secret}x",
        f"{prefix}_ffffffffffff_{secret}",
    ):
        with pytest.raises(AuthenticationError):
            keys.authenticate(bad)


def test_a_remembered_key_vouches_only_for_its_exact_secret_and_only_once_read() -> None:
    """What lets a capture's model start before its read (``remembered``) never vouches for
    a key not yet read by this instance, nor for a known prefix with another secret: an
    attacker who knows a gate's prefix cannot make the model run."""
    keys = KeyService(FakeUnitOfWorkFactory(), FakeClock())
    principal, token = keys.create(Role.GATE, "gate 1", carrier="EE")
    assert keys.remembered(token) is None  # never read here
    assert keys.authenticate(token) == principal
    assert keys.remembered(token) == principal
    # The secret is URL-safe base64 and may itself hold "_": split as the service does.
    prefix, key_id, secret = token.split("_", 2)
    changed_first = ("A" if secret[0] != "A" else "B") + secret[1:]
    for bad in (
        None,
        "",
        "garbage",
        f"{prefix}_{key_id}_{secret}x",
        f"{prefix}_{key_id}_{changed_first}",
    ):
        assert keys.remembered(bad) is None
    # Revoked by another instance (the same store): a hint only, the read decides...
    KeyService(keys._uow, FakeClock()).revoke(principal.key_id)
    assert keys.remembered(token) == principal
    with pytest.raises(AuthenticationError):
        keys.authenticate(token)
    assert keys.remembered(token) is None  # ...and forgets it
    # Revoked by this one: forgotten at once.
    other, other_token = keys.create(Role.GATE, "gate 2", carrier="EE")
    assert keys.authenticate(other_token) == other
    keys.revoke(other.key_id)
    assert keys.remembered(other_token) is None


def test_the_first_admin_key_is_created_once() -> None:
    keys = KeyService(FakeUnitOfWorkFactory(), FakeClock())
    first = keys.create_first_admin()
    assert first is not None
    assert keys.authenticate(first).role is Role.ADMIN
    assert keys.create_first_admin() is None


@pytest.mark.parametrize(
    ("role", "name", "carrier"),
    [(Role.GATE, "gate", None), (Role.OFFICER, " ", None), (Role.GATE, "gate", "TOOLONG")],
)
def test_invalid_keys_are_refused(role: Role, name: str, carrier: str | None) -> None:
    with pytest.raises(InvalidInputError):
        KeyService(FakeUnitOfWorkFactory(), FakeClock()).create(role, name, carrier)


@pytest.mark.parametrize(
    "change",
    [
        {"carrier": "E"},
        {"number": "ABCDE"},
        {"origin": "A1"},
        {"destination": "AAA"},
        {"scheduled_departure": datetime(2026, 11, 23, 18)},
    ],
)
def test_flight_validation(change: dict[str, object]) -> None:
    world = World()
    fields = {
        "carrier": "EE",
        "number": "12",
        "scheduled_departure": datetime(2026, 11, 23, 18, tzinfo=UTC),
        "origin": "AAA",
        "destination": "BBB",
        "direction": Direction.EXIT,
    }
    with pytest.raises(InvalidInputError):
        world.flights.create(NewFlight(**{**fields, **change}))  # type: ignore[arg-type]


def test_staging_reports_who_has_no_photo_and_what_changed() -> None:
    world = World()
    flight_id = world.flight(travelers=4, photos=2)
    report = world.galleries.stage(flight_id)
    assert (report.travelers, report.with_photo, report.added) == (4, 2, 2)
    assert {d.number for d in report.without_photo} == {"N2", "N3"}
    world.enrolment.enrol(DocumentKey("XYZ", "N2"), b"face:2", PhotoSource.VISA)
    again = world.galleries.stage(flight_id)
    assert (again.added, again.removed, again.unchanged, again.gallery_version) == (1, 0, 2, 2)
    with pytest.raises(NotFoundError):
        world.galleries.stage("missing")


def test_several_photos_of_one_traveler_are_fused_into_one_gallery_row() -> None:
    world = World()
    flight_id = world.flight(travelers=1, photos=1)
    world.enrolment.enrol(DocumentKey("XYZ", "N0"), b"face:7", PhotoSource.ENCOUNTER)
    world.galleries.stage(flight_id)
    gallery = world.galleries.gallery_for(world.flights.get(flight_id))
    assert len(gallery) == 1
    assert gallery.matrix.shape == (1, 8)


def test_capture_decisions() -> None:
    world = World()
    flight_id = world.flight()
    with pytest.raises(ConflictError):
        world.captures.process(GATE, flight_id, b"face:1", "G1", "cam")
    world.galleries.stage(flight_id)

    matched = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam")
    assert matched.decision is Decision.MATCH
    assert matched.already_processed is False
    again = world.captures.process(OFFICER, flight_id, b"face:1", "G2", "cam")
    assert again.decision is Decision.MATCH
    assert again.already_processed is True
    assert again.traveler_id == matched.traveler_id
    (encounter,) = world.flights.encounters(flight_id)
    assert encounter.method is EncounterMethod.BIOMETRIC
    assert encounter.direction is Direction.ENTRY
    assert encounter.capture_id == matched.capture_id

    stranger = world.captures.process(GATE, flight_id, b"face:99", "G1", "cam")
    assert stranger.decision is Decision.NO_MATCH
    assert stranger.reasons == ("below_threshold",)
    blurred = world.captures.process(GATE, flight_id, b"blurred:2", "G1", "cam")
    assert (blurred.decision, blurred.reasons) == (Decision.RECAPTURE, ("blur",))
    nobody = world.captures.process(GATE, flight_id, b"empty", "G1", "cam")
    assert (nobody.decision, nobody.reasons) == (Decision.RECAPTURE, ("no_face",))
    with pytest.raises(ImageDecodeError):
        world.captures.process(GATE, flight_id, b"\x00\x01", "G1", "cam")
    # Every decided capture is recorded; the undecodable one is not.
    assert len(world.uow.tables.captures) == 5


def test_two_travelers_with_near_identical_templates_are_ambiguous() -> None:
    world = World(IdentificationRule(0.5, 0.03))
    flight_id = world.flight(travelers=2, photos=1)
    world.enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:0", PhotoSource.PASSPORT)
    world.galleries.stage(flight_id)
    outcome = world.captures.process(OFFICER, flight_id, b"face:0", "G1", "cam")
    assert (outcome.decision, outcome.reasons) == (Decision.NO_MATCH, ("ambiguous",))
    assert world.flights.encounters(flight_id) == []


class _SecondTraveler(TypedDict, total=False):
    booking_reference: str | None
    date_of_birth: date


@pytest.mark.parametrize(
    ("second", "related"),
    [
        ({"booking_reference": "XY1234"}, True),  # one booking
        ({"booking_reference": None}, True),  # twins: surname and full birth date
        ({"booking_reference": "ZZ9999", "date_of_birth": date(1992, 5, 6)}, False),
    ],
)
def test_a_related_traveler_who_would_match_too_sends_the_capture_to_an_officer(
    second: _SecondTraveler, related: bool
) -> None:
    # The second traveler's gallery row fuses the first one's photo with another: on the first
    # one's photo it scores below the top by more than the margin, yet above the threshold.
    runner_up = float(np.sqrt((1 + unit_vector(0) @ unit_vector(1)) / 2))
    rule = IdentificationRule(threshold=runner_up - 0.05, ambiguity_margin=0.03)
    assert 1.0 - runner_up > rule.ambiguity_margin
    world = World(rule)
    flight = world.flights.create(
        NewFlight("EE", "12", datetime(2026, 11, 23, 18, tzinfo=UTC), "AAA", "BBB", Direction.ENTRY)
    )
    first = replace(traveler("N0"), booking_reference="XY1234")
    world.flights.put_manifest(flight.id, [first, replace(traveler("N1"), **second)])
    world.enrolment.enrol(DocumentKey("XYZ", "N0"), b"face:0", PhotoSource.PASSPORT)
    world.enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:0", PhotoSource.PASSPORT)
    world.enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:1", PhotoSource.VISA)
    world.galleries.stage(flight.id)
    outcome = world.captures.process(OFFICER, flight.id, b"face:0", "G1", "cam")
    if related:
        assert (outcome.decision, outcome.reasons) == (Decision.NO_MATCH, ("ambiguous",))
        assert world.flights.encounters(flight.id) == []
    else:
        assert outcome.decision is Decision.MATCH
        (encounter,) = world.flights.encounters(flight.id)
        assert encounter.traveler_id == outcome.traveler_id


def test_an_empty_gallery_means_manual_processing() -> None:
    world = World()
    flight_id = world.flight(photos=0)
    world.galleries.stage(flight_id)
    outcome = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam")
    assert (outcome.decision, outcome.reasons) == (Decision.MANUAL, ("no_reference_photos",))


def test_who_may_capture_where() -> None:
    world = World()
    flight_id = world.flight()
    world.galleries.stage(flight_id)
    for caller in (OTHER_GATE, AUDITOR):
        with pytest.raises(PermissionDeniedError):
            world.captures.process(caller, flight_id, b"face:1", "G1", "cam")
    for gate, device in (("", "cam"), ("G1", "x" * 65), ("G\n1", "cam")):
        with pytest.raises(InvalidInputError):
            world.captures.process(GATE, flight_id, b"face:1", gate, device)
    with pytest.raises(NotFoundError):
        world.captures.process(GATE, "no-such-flight", b"face:1", "G1", "cam")


def test_a_restaged_gallery_is_picked_up_by_other_processes() -> None:
    world = World()
    flight_id = world.flight(travelers=2, photos=1)
    world.galleries.stage(flight_id)
    # Another worker process, sharing the store, with its own (empty) cache:
    other_galleries = GalleryService(
        world.uow, world.clock, "fake-model", 8, world.policies, world.audit
    )
    flight = world.flights.get(flight_id)
    assert len(other_galleries.gallery_for(flight)) == 1
    world.enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:1", PhotoSource.PASSPORT)
    world.galleries.stage(flight_id)
    assert len(other_galleries.gallery_for(world.flights.get(flight_id))) == 2


def test_carrier_bound_keys_serve_only_their_carrier() -> None:
    assert GATE.serves("EE")
    assert not GATE.serves("ZZ")
    assert not Principal("k5", "gate without carrier", Role.GATE).serves("EE")
    assert OFFICER.serves("ZZ")
    assert not Principal("k6", "airline desk", Role.OFFICER, carrier="EE").serves("ZZ")


def test_the_read_of_every_key_answers_whether_a_key_was_issued_for_a_while() -> None:
    """After ``remember_live`` (the API's one read of every key while an address is blocked),
    ``is_issued`` answers from it for ``ISSUED_SECONDS``: revoked real keys still count as
    issued (their failed use stays audited), made-up ones cost no read."""
    keys = KeyService(FakeUnitOfWorkFactory(), FakeClock())
    principal, token = keys.create(Role.GATE, "gate 1", carrier="EE")
    keys.revoke(principal.key_id)
    keys.remember_live()
    assert keys.remembered(token) is None  # revoked: not vouched for
    reads: list[bool] = []
    unit_of_work = keys._uow

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(True)
        return unit_of_work(*args, **kwargs)

    keys._uow = counted  # type: ignore[assignment]
    assert keys.is_issued(token)
    assert not keys.is_issued("eex_000000000000_made-up")
    assert reads == []
