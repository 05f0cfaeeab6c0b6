"""The biometric exit link holds a stay's entry template to the threshold of the photos it
fuses, as the gate holds a gallery entry to its reference count's (benchmarks/RESULTS.md,
"Issue 18"): a single-frame entry capture is one photo, and the strictest threshold (the
two-photo one) would send many of those travelers' exits to "exit without entry"."""

from __future__ import annotations

from datetime import UTC, datetime

from entryexit.domain.admission import ExitLink
from entryexit.domain.model import Decision, Direction, DocumentKey, PhotoSource
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureService
from entryexit.services.crossings import CrossingService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService, NewFlight
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.thresholds import OperatingThresholds
from tests.fake_storage import AdmissionRow, FakeReportQueries, FakeUnitOfWorkFactory
from tests.fakes import FakeAnalyser, FakeClock, StaticKeyProvider
from tests.unit.services.test_reference_thresholds import (
    ONE_REFERENCE,
    TWO_REFERENCES,
    calibration,
    nudged_score,
)
from tests.unit.services.test_services import OFFICER, traveler

# The exit capture near:0:5 scores this against the entry capture face:0: between the
# one-photo threshold and the two-photo (strictest) one.
LINK_SCORE = nudged_score(0, 5)


class World:
    def __init__(self, thresholds: OperatingThresholds) -> None:
        self.uow = FakeUnitOfWorkFactory()
        clock = FakeClock()
        engine = FakeAnalyser()
        audit = AuditTrail(self.uow, clock, StaticKeyProvider())
        policies = PolicyService(self.uow, clock, audit)
        policies.ensure_default()
        self.flights = FlightService(self.uow, clock, engine.model, audit)
        self.galleries = GalleryService(
            self.uow, clock, engine.model, engine.dimension, policies, audit
        )
        self.enrolment = EnrolmentService(self.uow, engine, clock, policies, audit)
        self.crossings = CrossingService(
            self.uow,
            FakeReportQueries(self.uow.database),
            engine,
            clock,
            self.galleries,
            policies,
            thresholds,
            audit,
        )
        self.captures = CaptureService(
            self.uow,
            engine,
            self.galleries,
            thresholds,
            clock,
            policies,
            audit,
            on_encounter=self.crossings.enqueue,
        )

    def crossing(self, direction: Direction, number: str, photo: bytes) -> None:
        """``number`` (enrolled with ``photo``) on a flight of ``direction``, captured with
        ``photo``: a match at the gate, then the admission work."""
        flight = self.flights.create(
            NewFlight(
                "EE",
                "12" if direction is Direction.ENTRY else "99",
                datetime(2026, 11, 23, 18, tzinfo=UTC),
                "AAA",
                "BBB",
                direction,
            )
        )
        self.flights.put_manifest(flight.id, [traveler(number)])
        self.enrolment.enrol(DocumentKey("XYZ", number), photo, PhotoSource.PASSPORT)
        self.galleries.stage(flight.id)
        outcome = self.captures.process(OFFICER, flight.id, photo, "G1", "cam")
        assert outcome.decision is Decision.MATCH
        assert self.crossings.process_pending() == 1

    def stay(self) -> AdmissionRow:
        (row,) = [r for r in self.uow.tables.admissions.values() if r.admitted_on is not None]
        return row


def test_an_exit_is_linked_at_the_threshold_of_the_photos_the_entry_template_fuses() -> None:
    assert ONE_REFERENCE < LINK_SCORE < TWO_REFERENCES
    world = World(OperatingThresholds(calibration(), 0.03))
    world.crossing(Direction.ENTRY, "N0", b"face:0")
    assert world.stay().template_photos == 1  # one capture, one frame
    # The same face on a new passport leaves: a one-photo entry template, so its threshold.
    world.crossing(Direction.EXIT, "NEW0", b"near:0:5")
    stay = world.stay()
    assert stay.link is ExitLink.BIOMETRIC
    assert stay.link_score is not None
    assert abs(stay.link_score - LINK_SCORE) < 1e-5


def test_a_stay_whose_template_count_is_unknown_is_held_to_the_strictest_threshold() -> None:
    world = World(OperatingThresholds(calibration(), 0.03))
    world.crossing(Direction.ENTRY, "N0", b"face:0")
    world.stay().template_photos = None  # a stay opened before the count was kept
    world.crossing(Direction.EXIT, "NEW0", b"near:0:5")
    stay = world.stay()
    assert stay.exited_on is None
    assert stay.link is None
    assert any(r.admitted_on is None for r in world.uow.tables.admissions.values())


def test_an_explicit_deployment_threshold_holds_every_stay_alike() -> None:
    world = World(OperatingThresholds(calibration(), 0.03, gallery_override=TWO_REFERENCES))
    world.crossing(Direction.ENTRY, "N0", b"face:0")
    world.crossing(Direction.EXIT, "NEW0", b"near:0:5")
    assert world.stay().exited_on is None
