"""Multi-frame capture: a burst is one capture, fused from the frames that pass, compared at
the threshold calibrated for the number of frames fused."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from entryexit.biometrics.fusion import fuse_templates
from entryexit.biometrics.recognizer import Calibration
from entryexit.domain.access import Principal
from entryexit.domain.model import Decision, Direction, DocumentKey, PhotoSource
from entryexit.errors import ImageDecodeError, InvalidInputError
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureOutcome, CaptureService, GateOutcome
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService, NewFlight
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService, shipped_policy_text
from entryexit.services.thresholds import OperatingThresholds
from tests.fake_storage import FakeUnitOfWorkFactory
from tests.fakes import FakeAnalyser, FakeClock, StaticKeyProvider, unit_vector
from tests.unit.services.test_services import GATE, OFFICER, traveler

SINGLE, PAIR, TRIPLE = 0.9, 0.93, 0.95


def calibration(by_frames: dict[int, float] | None = None) -> Calibration:
    frames = {2: PAIR, 3: TRIPLE} if by_frames is None else by_frames
    return Calibration(
        gallery={1e-3: SINGLE},
        verification={1e-3: 0.8},
        gallery_size=300,
        source="unit test",
        gallery_by_frames={count: {1e-3: threshold} for count, threshold in frames.items()},
    )


class World:
    """Three travelers (faces 0, 1, 2) on a staged flight; thresholds from a calibration with
    its own threshold per frame count."""

    def __init__(self, thresholds: OperatingThresholds | None = None) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.clock = FakeClock()
        self.engine = FakeAnalyser()
        self.audit = AuditTrail(self.uow, self.clock, StaticKeyProvider())
        self.policies = PolicyService(self.uow, self.clock, self.audit)
        self.policies.ensure_default()
        self.flights = FlightService(self.uow, self.clock, self.engine.model, self.audit)
        self.galleries = GalleryService(
            self.uow,
            self.clock,
            self.engine.model,
            self.engine.dimension,
            self.policies,
            self.audit,
        )
        enrolment = EnrolmentService(self.uow, self.engine, self.clock, self.policies, self.audit)
        self.captures = CaptureService(
            self.uow,
            self.engine,
            self.galleries,
            thresholds or OperatingThresholds(calibration(), ambiguity_margin=0.03),
            self.clock,
            self.policies,
            self.audit,
        )
        departure = datetime(2026, 11, 23, 18, tzinfo=UTC)
        flight = self.flights.create(
            NewFlight("EE", "12", departure, "AAA", "BBB", Direction.ENTRY)
        )
        self.flight_id = flight.id
        self.flights.put_manifest(flight.id, [traveler(f"N{i}") for i in range(3)])
        for i in range(3):
            enrolment.enrol(DocumentKey("XYZ", f"N{i}"), f"face:{i}".encode(), PhotoSource.PASSPORT)
        self.galleries.stage(flight.id)

    def burst(self, *frames: bytes, who: Principal = OFFICER) -> CaptureOutcome:
        return self.captures.process_burst(who, self.flight_id, list(frames), "G1", "cam")

    def capture_events(self) -> list[dict[str, object]]:
        return [
            dict(e.entry.details)
            for e in self.uow.tables.audit_events
            if e.entry.action == "capture"
        ]


def test_a_burst_of_three_good_frames_is_one_capture_fused_from_three() -> None:
    world = World()
    outcome = world.burst(b"face:1", b"face:1", b"face:1")
    assert outcome.decision is Decision.MATCH
    assert (outcome.frames_fused, outcome.threshold) == (3, TRIPLE)
    assert outcome.reasons == ()
    assert world.engine.bursts == [(3, 3)]
    (record,) = world.uow.tables.captures.values()
    assert record.record.id == outcome.capture_id
    assert len(world.uow.tables.encounters) == 1
    (event,) = world.capture_events()
    assert event["frames_fused"] == 3


def test_one_frame_is_the_single_capture_it_always_was() -> None:
    world = World()
    outcome = world.burst(b"face:2")
    assert (outcome.decision, outcome.frames_fused, outcome.threshold) == (
        Decision.MATCH,
        1,
        SINGLE,
    )
    assert world.engine.bursts == []  # the single-frame path, unchanged


def test_the_threshold_is_the_one_for_the_frames_fused_never_the_single_frame_one() -> None:
    # Two frames of traveler 1, the second a little off: the fused probe scores between the
    # single-frame threshold and the two-frame one.
    frames = (b"face:1", b"near:1:5")
    fused = fuse_templates([unit_vector(1), unit_vector(1) + 0.5 * unit_vector(5)], [1.0, 1.0])
    score = float(fused @ unit_vector(1))
    pair = (score + 1.0) / 2  # above this probe's score, and above the single threshold
    world = World(OperatingThresholds(calibration({2: pair}), 0.03))
    assert SINGLE < score < pair
    outcome = world.burst(*frames)
    assert (outcome.decision, outcome.frames_fused, outcome.threshold) == (
        Decision.NO_MATCH,
        2,
        pair,
    )
    assert outcome.score == pytest.approx(score, abs=1e-5)
    assert world.uow.tables.encounters == {}


def test_a_bad_frame_among_good_ones_is_named_and_left_out() -> None:
    world = World()
    outcome = world.burst(b"face:0", b"blurred:0", b"\x00not an image")
    assert outcome.decision is Decision.MATCH
    assert (outcome.frames_fused, outcome.threshold) == (1, SINGLE)
    assert outcome.reasons == ("frame_2_blur", "frame_3_unreadable")
    gate_view = outcome.seen_by(GATE)
    assert isinstance(gate_view, GateOutcome)
    assert gate_view.reasons == ("frame_2_blur", "frame_3_unreadable")
    assert len(world.uow.tables.captures) == 1

    two = world.burst(b"face:2", b"empty", b"face:2")
    assert (two.decision, two.frames_fused, two.threshold) == (Decision.MATCH, 2, PAIR)
    assert two.reasons == ("frame_2_no_face",)


def test_a_burst_none_of_whose_frames_passes_asks_for_a_recapture_once() -> None:
    world = World()
    outcome = world.burst(b"blurred:1", b"empty", b"blurred:2")
    assert (outcome.decision, outcome.reasons) == (Decision.RECAPTURE, ("blur", "no_face"))
    (record,) = world.uow.tables.captures.values()
    assert record.image is None
    assert len(world.capture_events()) == 1


def test_a_burst_of_unreadable_frames_is_refused_and_nothing_is_stored() -> None:
    world = World()
    before = len(world.uow.tables.audit_events)
    with pytest.raises(ImageDecodeError):
        world.burst(b"\x00", b"\x01\x02", b"garbage")
    assert world.uow.tables.captures == {}
    assert len(world.uow.tables.audit_events) == before


def test_more_frames_than_the_policy_allows_are_refused_before_any_model_work() -> None:
    world = World()
    before = len(world.uow.tables.audit_events)
    with pytest.raises(InvalidInputError, match="at most 3 frames"):
        world.burst(*[b"face:1"] * 4)
    assert world.engine.bursts == []
    assert world.uow.tables.captures == {}
    assert len(world.uow.tables.audit_events) == before
    with pytest.raises(InvalidInputError, match="at least one frame"):
        world.burst()


def test_the_policy_can_turn_bursts_off() -> None:
    world = World()
    text = (
        shipped_policy_text("default.toml")
        .replace('version = "default-2"', 'version = "single-frame"')
        .replace("max_frames = 3", "max_frames = 1")
        .replace("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    )
    world.policies.load(text, OFFICER)
    with pytest.raises(InvalidInputError, match="at most 1 frames"):
        world.burst(b"face:1", b"face:1")
    assert world.burst(b"face:1").decision is Decision.MATCH


def test_without_a_threshold_for_more_frames_a_burst_fuses_only_what_is_calibrated() -> None:
    only_pairs = World(OperatingThresholds(calibration({2: PAIR}), 0.03))
    outcome = only_pairs.burst(b"face:1", b"face:1", b"face:1")
    assert (outcome.frames_fused, outcome.threshold) == (2, PAIR)
    assert only_pairs.engine.bursts == [(3, 2)]
    # An explicit (single-frame) deployment threshold: the best frame alone decides.
    explicit = World(OperatingThresholds(None, 0.03, gallery_override=SINGLE))
    single = explicit.burst(b"face:1", b"face:1", b"face:1")
    assert (single.decision, single.frames_fused, single.threshold) == (
        Decision.MATCH,
        1,
        SINGLE,
    )


def test_only_the_best_frame_fused_is_kept_and_only_when_an_image_is_kept_at_all() -> None:
    world = World()
    # A stranger (no match): the photo is kept for the officer, and it is the best frame:
    # the confident one, not the first one sent.
    stranger = world.burst(b"dim:77", b"face:77", b"dim:77")
    assert stranger.decision is Decision.NO_MATCH
    row = world.uow.tables.captures[stranger.capture_id]
    assert row.image == b"face:77"
    # A match keeps no image at all, whichever frames came.
    matched = world.burst(b"dim:1", b"face:1")
    assert world.uow.tables.captures[matched.capture_id].image is None
    assert np.isclose(matched.score or 0.0, 1.0, atol=1e-5)


def test_a_long_list_of_frame_notes_never_overflows_the_records_reason_column() -> None:
    world = World()
    frames = [b"junk", b"empty", b"blurred:1", b"face:1"]
    text = (
        shipped_policy_text("default.toml")
        .replace('version = "default-2"', 'version = "ten-frames"')
        .replace("max_frames = 3", "max_frames = 10")
        .replace("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    )
    world.policies.load(text, OFFICER)
    outcome = world.burst(*frames, b"blurred:2", b"empty", b"junk", b"blurred:3")
    assert len(outcome.reasons) == 7
    stored = world.uow.tables.captures[outcome.capture_id].record.reason
    assert stored is not None
    assert len(stored) <= 64
    assert stored.startswith("frame_1_unreadable,frame_2_no_face")


def test_a_captures_model_work_takes_decode_slots_for_its_callers_key() -> None:
    """The engine shares its decode slots fairly between keys (probe P5): each capture's
    model work, single frame or burst, runs as its checked caller's key."""
    world = World()
    world.engine.slot_owners.clear()
    world.burst(b"face:1")
    world.burst(b"face:1", b"face:2")
    assert world.engine.slot_owners == [OFFICER.key_id] * 3
