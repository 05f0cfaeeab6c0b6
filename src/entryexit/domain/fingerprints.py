"""Who gives fingerprints, which fingers, for how long, and how two prints are decided.

Fingerprints are the second modality for non-citizens (taken at enrolment, used by an officer
to confirm identity where the face did not); a gate never sees a fingerprint step. The rules
are policy data: the optional ``[fingerprints]`` table of a policy, whose defaults are the
shipped programme (non-citizens aged 14-79, both index fingers, kept five years; citizens
never). Pure: no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from entryexit.domain.model import CitizenshipClass
from entryexit.errors import InvalidInputError

# ISO/IEC 19794-2 / ANSI/NIST finger positions: 1-5 right thumb to little, 6-10 left.
FINGER_POSITIONS = range(1, 11)
RIGHT_INDEX, LEFT_INDEX = 2, 7


class FingerprintDecision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True)
class FingerprintRules:
    """``classes``: the traveler classes who give prints (within the ages); ``fingers``: the
    positions taken at enrolment; ``retention_hours``: how long enrolled prints are kept, per
    class; ``target_far``: the 1:1 false accept rate the officer's check is held to;
    ``keep_case_prints``: whether the live prints an officer submits on a console case are
    kept (sealed, for the case's evidence period: the policy's capture-image retention) so
    the case page can show them; enrolled print images are never kept, only templates."""

    classes: frozenset[CitizenshipClass] = frozenset(
        {CitizenshipClass.PERMANENT_RESIDENT, CitizenshipClass.FOREIGN_NATIONAL}
    )
    min_age: int = 14
    max_age: int = 79
    fingers: tuple[int, ...] = (RIGHT_INDEX, LEFT_INDEX)
    retention_hours: Mapping[CitizenshipClass, int] = field(
        default_factory=lambda: {
            CitizenshipClass.PERMANENT_RESIDENT: 43800,
            CitizenshipClass.FOREIGN_NATIONAL: 43800,
        }
    )
    target_far: float = 1e-3
    keep_case_prints: bool = True

    def takes_prints(self, citizenship: CitizenshipClass | None, age: int | None) -> bool:
        """Whether this traveler gives prints. Unknown class: no (a document not yet on any
        manifest cannot be shown to be a non-citizen's); unknown age: the class decides."""
        if citizenship is None or citizenship not in self.classes:
            return False
        return age is None or self.min_age <= age <= self.max_age

    def retention(self, citizenship: CitizenshipClass) -> timedelta:
        return timedelta(hours=self.retention_hours.get(citizenship, 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "classes": sorted(c.value for c in self.classes),
            "min_age": self.min_age,
            "max_age": self.max_age,
            "fingers": list(self.fingers),
            "retention_hours": {c.value: h for c, h in sorted(self.retention_hours.items())},
            "target_far": self.target_far,
            "keep_case_prints": self.keep_case_prints,
        }


DEFAULT_FINGERPRINT_RULES = FingerprintRules()


def decide(fused_score: float, threshold: float) -> FingerprintDecision:
    return FingerprintDecision.MATCH if fused_score >= threshold else FingerprintDecision.NO_MATCH


def check_finger(value: object) -> int:
    """A finger position code, 1 to 10."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in FINGER_POSITIONS:
        raise InvalidInputError(
            "a finger position is a code from 1 (right thumb) to 10 (left little finger)"
        )
    return value


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(
            f"policy: 'fingerprints.{name}' must be a whole number {low}-{high}"
        )
    return value


def parse_fingerprint_rules(document: Mapping[str, Any]) -> FingerprintRules:
    """The optional ``[fingerprints]`` table; every field absent takes the default."""
    table = document.get("fingerprints", {})
    if not isinstance(table, dict):
        raise InvalidInputError("policy: 'fingerprints' must be a table")
    unknown = set(table) - {
        "classes",
        "min_age",
        "max_age",
        "fingers",
        "retention_hours",
        "target_far",
        "keep_case_prints",
    }
    if unknown:
        raise InvalidInputError(f"policy: unknown fields in 'fingerprints': {sorted(unknown)}")
    default = DEFAULT_FINGERPRINT_RULES
    classes = table.get("classes", sorted(c.value for c in default.classes))
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InvalidInputError("policy: 'fingerprints.classes' must be a list of classes")
    try:
        parsed_classes = frozenset(CitizenshipClass(c) for c in classes)
    except ValueError:
        raise InvalidInputError(
            f"policy: 'fingerprints.classes' may name only {[c.value for c in CitizenshipClass]}"
        ) from None
    fingers: Sequence[object] = table.get("fingers", list(default.fingers))
    if not isinstance(fingers, list) or not fingers:
        raise InvalidInputError("policy: 'fingerprints.fingers' must list finger positions")
    try:
        parsed_fingers = tuple(check_finger(f) for f in fingers)
    except InvalidInputError as exc:
        raise InvalidInputError(f"policy: 'fingerprints.fingers': {exc.message}") from None
    if len(set(parsed_fingers)) != len(parsed_fingers):
        raise InvalidInputError("policy: 'fingerprints.fingers' names a finger twice")
    hours = table.get("retention_hours", {c.value: h for c, h in default.retention_hours.items()})
    if not isinstance(hours, dict):
        raise InvalidInputError("policy: 'fingerprints.retention_hours' must be a table")
    retention: dict[CitizenshipClass, int] = {}
    for name, value in hours.items():
        try:
            klass = CitizenshipClass(name)
        except ValueError:
            raise InvalidInputError(
                f"policy: unknown class in 'fingerprints.retention_hours': {name!r}"
            ) from None
        retention[klass] = _whole(value, f"retention_hours.{name}", 1, 1_000_000)
    missing = parsed_classes - retention.keys()
    if missing:
        raise InvalidInputError(
            "policy: 'fingerprints.retention_hours' needs every class that gives prints: "
            f"{sorted(c.value for c in missing)}"
        )
    target = table.get("target_far", default.target_far)
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise InvalidInputError("policy: 'fingerprints.target_far' must be between 0 and 1")
    keep_case_prints = table.get("keep_case_prints", default.keep_case_prints)
    if not isinstance(keep_case_prints, bool):
        raise InvalidInputError("policy: 'fingerprints.keep_case_prints' must be true or false")
    min_age = _whole(table.get("min_age", default.min_age), "min_age", 0, 150)
    max_age = _whole(table.get("max_age", default.max_age), "max_age", 0, 150)
    if min_age > max_age:
        raise InvalidInputError("policy: 'fingerprints.min_age' is above 'max_age'")
    return FingerprintRules(
        classes=parsed_classes,
        min_age=min_age,
        max_age=max_age,
        fingers=parsed_fingers,
        retention_hours=retention,
        target_far=float(target),
        keep_case_prints=keep_case_prints,
    )


# --- face and finger evidence together, for the officer ----------------------------------
def impostor_evidence(score: float, calibration: Mapping[float, float]) -> float:
    """How rare ``score`` is among impostors, as ``-log10`` of the false match rate at which
    it would be the threshold: 2 at the FMR 1e-2 threshold, 3 at 1e-3, and so on.

    ``calibration`` maps target false match rates to the engine's thresholds (the tables the
    thresholds come from). Between calibrated points the evidence is interpolated linearly in
    the score (log-linear in the rate); below the lowest threshold the first segment's slope
    is extended down to 0 (no evidence); above the highest it is capped at that point's
    evidence: no claim is made beyond what was measured.
    """
    points = sorted((threshold, -math.log10(rate)) for rate, threshold in calibration.items())
    if len(points) < 2 or any(b[0] <= a[0] or b[1] <= a[1] for a, b in itertools.pairwise(points)):
        raise ValueError("a calibration needs two or more rates with rising thresholds")
    if score >= points[-1][0]:
        return points[-1][1]
    for (low, low_evidence), (high, high_evidence) in itertools.pairwise(points):
        if score < high:
            slope = (high_evidence - low_evidence) / (high - low)
            return max(0.0, low_evidence + slope * (score - low))
    raise AssertionError("unreachable")  # pragma: no cover


def combined_target(target_far: float) -> float:
    """The summed evidence of two independent modalities that impostors reach at the rate
    ``target_far``. Not ``-log10(target_far)``: for an impostor the two rates are independent
    and uniform, and their product falls below ``t`` with probability ``t * (1 - ln t)``
    (Fisher's combination of two p-values), several times ``t``; solved here for ``t``."""
    if not 0.0 < target_far < 1.0:
        raise ValueError("a target false match rate is between 0 and 1")
    low, high = 1e-300, target_far  # t * (1 - ln t) rises with t on (0, 1)
    for _ in range(200):
        middle = math.sqrt(low * high)
        if middle * (1.0 - math.log(middle)) > target_far:
            high = middle
        else:
            low = middle
    return -math.log10(low)


@dataclass(frozen=True, slots=True)
class CombinedEvidence:
    """Face and finger scores of one person, each as impostor evidence, and their sum (the
    modalities are independent, so the rates multiply): shown to the officer beside the
    fingerprint decision, which alone decides (the fingerprint threshold)."""

    face: float
    finger: float
    target: float  # the summed evidence impostors reach at the policy's target FAR

    @property
    def total(self) -> float:
        return self.face + self.finger

    @property
    def reaches_target(self) -> bool:
        return self.total >= self.target


def combine_face_and_finger(
    face_score: float,
    face_calibration: Mapping[float, float],
    finger_score: float,
    finger_calibration: Mapping[float, float],
    target_far: float,
) -> CombinedEvidence:
    """The rule (measured in benchmarks/RESULTS.md, "Face and finger fusion"): each score
    normalised to its own impostor distribution by :func:`impostor_evidence`, then summed and
    held to :func:`combined_target` of the policy's target FAR."""
    return CombinedEvidence(
        impostor_evidence(face_score, face_calibration),
        impostor_evidence(finger_score, finger_calibration),
        combined_target(target_far),
    )
