"""The 1:N threshold follows the reference count of the candidate's gallery entry: an entry
fusing two photos draws higher impostor scores than one fusing a single photo, so each count
has its own calibrated threshold (benchmarks/RESULTS.md, "Issue 18")."""

from __future__ import annotations

from datetime import UTC, datetime

from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.recognizer import Calibration
from entryexit.domain.model import Decision, Direction, DocumentKey, PhotoSource
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureOutcome, CaptureService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService, NewFlight
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.thresholds import OperatingThresholds
from tests.fake_storage import FakeUnitOfWorkFactory
from tests.fakes import FakeAnalyser, FakeClock, StaticKeyProvider, unit_vector
from tests.unit.services.test_services import OFFICER, traveler


def nudged_score(seed: int, towards: int) -> float:
    """What ``near:<seed>:<towards>`` scores against face ``seed`` (the fake's probe)."""
    probe = l2_normalise(unit_vector(seed) + 0.5 * unit_vector(towards))[0]
    return float(probe @ unit_vector(seed))


# Face 0 enrols one photo, face 1 two (passport and visa). The probes near:0:5 and near:1:5
# score 0.866 and 0.876 against their own entry: both between the one-reference threshold
# and the two-reference one.
ONE_REFERENCE = 0.85
TWO_REFERENCES = 0.89


def calibration() -> Calibration:
    return Calibration(
        gallery={1e-3: TWO_REFERENCES},
        verification={1e-3: 0.8},
        gallery_size=300,
        source="unit test",
        gallery_by_references={1: {1e-3: ONE_REFERENCE}, 2: {1e-3: TWO_REFERENCES}},
    )


class World:
    def __init__(self, thresholds: OperatingThresholds) -> None:
        self.uow = FakeUnitOfWorkFactory()
        clock = FakeClock()
        engine = FakeAnalyser()
        audit = AuditTrail(self.uow, clock, StaticKeyProvider())
        policies = PolicyService(self.uow, clock, audit)
        policies.ensure_default()
        flights = FlightService(self.uow, clock, engine.model, audit)
        self.galleries = GalleryService(
            self.uow, clock, engine.model, engine.dimension, policies, audit
        )
        enrolment = EnrolmentService(self.uow, engine, clock, policies, audit)
        self.captures = CaptureService(
            self.uow, engine, self.galleries, thresholds, clock, policies, audit
        )
        flight = flights.create(
            NewFlight(
                "EE", "12", datetime(2026, 11, 23, 18, tzinfo=UTC), "AAA", "BBB", Direction.ENTRY
            )
        )
        self.flight_id = flight.id
        flights.put_manifest(flight.id, [traveler("N0"), traveler("N1")])
        enrolment.enrol(DocumentKey("XYZ", "N0"), b"face:0", PhotoSource.PASSPORT)
        for source in (PhotoSource.PASSPORT, PhotoSource.VISA):
            enrolment.enrol(DocumentKey("XYZ", "N1"), b"face:1", source)
        self.galleries.stage(flight.id)

    def capture(self, photo: bytes) -> CaptureOutcome:
        outcome = self.captures.process(OFFICER, self.flight_id, photo, "G1", "cam")
        assert isinstance(outcome, CaptureOutcome)
        return outcome


def test_the_staged_gallery_knows_how_many_references_each_entry_fuses() -> None:
    world = World(OperatingThresholds(calibration(), 0.03))
    with world.uow(read_only=True) as uow:
        flight = uow.flights.get(world.flight_id)
    assert flight is not None
    gallery = world.galleries.gallery_for(flight)
    counts = dict(zip(gallery.traveler_ids, gallery.reference_counts, strict=True))
    assert sorted(counts.values()) == [1, 2]
    with world.uow(read_only=True) as uow:
        two_photos = uow.travelers.traveler_for_document(DocumentKey("XYZ", "N1"))
    assert two_photos is not None
    assert counts[two_photos] == 2


def test_each_candidate_is_held_to_its_own_reference_count_threshold() -> None:
    assert ONE_REFERENCE < nudged_score(0, 5) < nudged_score(1, 5) < TWO_REFERENCES
    world = World(OperatingThresholds(calibration(), 0.03))
    single = world.capture(b"near:0:5")
    assert (single.decision, single.threshold) == (Decision.MATCH, ONE_REFERENCE)
    # The higher score against an entry fusing two photos is below that entry's threshold:
    # one threshold for every entry would have matched it (or refused the first capture).
    double = world.capture(b"near:1:5")
    assert (double.decision, double.reasons, double.threshold) == (
        Decision.NO_MATCH,
        ("below_threshold",),
        TWO_REFERENCES,
    )
    assert double.score is not None
    assert abs(double.score - nudged_score(1, 5)) < 1e-5


def test_an_explicit_deployment_threshold_holds_every_entry_alike() -> None:
    world = World(OperatingThresholds(calibration(), 0.03, gallery_override=ONE_REFERENCE))
    assert world.capture(b"near:0:5").threshold == ONE_REFERENCE
    double = world.capture(b"near:1:5")
    assert (double.decision, double.threshold) == (Decision.MATCH, ONE_REFERENCE)
