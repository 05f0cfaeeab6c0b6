"""Capture and retention policy as versioned data.

A policy says, per traveler class and age, whether biometric capture is required, optional
(the traveler may opt out) or exempt, and how long each kind of data is kept. The one in force
at a moment is the latest whose ``effective_from`` is not after that moment.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from entryexit.domain.admission import AdmissionRules
from entryexit.domain.fingerprints import (
    DEFAULT_FINGERPRINT_RULES,
    FingerprintRules,
    parse_fingerprint_rules,
)
from entryexit.domain.model import CitizenshipClass
from entryexit.errors import InvalidInputError, NotFoundError


class Participation(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    EXEMPT = "exempt"


class DataKind(StrEnum):
    CAPTURE_IMAGES = "capture_images"
    CAPTURE_RECORDS = "capture_records"
    REFERENCE_TEMPLATES = "reference_templates"
    ENCOUNTER_RECORDS = "encounter_records"
    # Biographic data. Manifest entries: hours after the flight's scheduled departure.
    MANIFEST_ENTRIES = "manifest_entries"
    # A traveler's documents (sealed names, birth date, number) and, with the last of them,
    # the data key: hours after the traveler was first recorded, and never while any other
    # record of theirs (manifest entry, template, encounter, stay) remains, since those
    # records would then name no one an officer can act on.
    TRAVELER_DOCUMENTS = "traveler_documents"
    # Closed stays (and exits without an entry): hours after the exit. Open stays are kept
    # until they close, whatever this says: an overstay must still be found.
    ADMISSIONS = "admissions"


# Policies written before biographic data had a retention of its own keep it as long as the
# encounter records it names: the parser's default for each of these kinds.
BIOGRAPHIC_KINDS = (DataKind.MANIFEST_ENTRIES, DataKind.TRAVELER_DOCUMENTS, DataKind.ADMISSIONS)


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The error rates the agency accepts; the recognizer's calibration turns them into
    thresholds. FPIR: non-manifest people matched to someone on a flight-sized gallery;
    FAR: impostor pairs accepted in a 1:1 comparison."""

    gallery_target_fpir: float = 1e-3
    verification_target_far: float = 1e-3


DEFAULT_OPERATING_POINT = OperatingPoint()
MAX_FRAMES_LIMIT = 10


@dataclass(frozen=True, slots=True)
class CaptureRules:
    """How a gate may capture: ``max_frames`` frames at most in one capture (a burst, fused
    into one probe; 1 turns multi-frame capture off)."""

    max_frames: int = 3


DEFAULT_CAPTURE_RULES = CaptureRules()
DEFAULT_ADMISSION_RULES = AdmissionRules()


@dataclass(frozen=True, slots=True)
class PrivacyNotice:
    """What a traveler is told at the camera, per language (the first is the default); its
    version is recorded with every capture and opt-out request made after showing it."""

    version: str
    texts: tuple[tuple[str, str], ...]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(language for language, _ in self.texts)

    def text(self, language: str) -> str:
        return dict(self.texts).get(language, self.texts[0][1])


# For policies without a notice of their own. It promises nothing a policy may not keep: who
# may decline and how long data is kept differ between policies, so it sends the traveler to
# the officer for both.
DEFAULT_NOTICE = PrivacyNotice(
    version="generic-1",
    texts=(
        (
            "en",
            "This camera takes your photo to compare it with the photos of the travelers"
            " expected on this flight. If you do not want your photo taken, say so: an"
            " officer will tell you whether you may decline, check your travel document"
            " instead where you may, and tell you how long your data is kept.",
        ),
        (
            "fr",
            "Cette caméra prend votre photo pour la comparer à celles des voyageurs attendus"
            " sur ce vol. Si vous ne voulez pas être photographié, dites-le\u00a0: un agent vous"
            " dira si vous pouvez refuser, vérifiera alors votre document de voyage, et vous"
            " dira combien de temps vos données sont gardées.",
        ),
    ),
)
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_MAX_NOTICE_CHARACTERS = 4000


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    effective_from: datetime
    description: str
    participation_by_class: Mapping[CitizenshipClass, Participation]
    exempt_under_age: int
    exempt_over_age: int
    retention_hours: Mapping[DataKind, Mapping[CitizenshipClass, int]]
    gallery_hours_after_departure: int
    matching: OperatingPoint = DEFAULT_OPERATING_POINT
    admission: AdmissionRules = DEFAULT_ADMISSION_RULES
    capture: CaptureRules = DEFAULT_CAPTURE_RULES
    fingerprints: FingerprintRules = DEFAULT_FINGERPRINT_RULES
    notice: PrivacyNotice = DEFAULT_NOTICE

    def participation(self, citizenship: CitizenshipClass, age: int | None) -> Participation:
        if age is not None and (age < self.exempt_under_age or age > self.exempt_over_age):
            return Participation.EXEMPT
        return self.participation_by_class[citizenship]

    def retention(self, kind: DataKind, citizenship: CitizenshipClass | None) -> timedelta:
        """How long ``kind`` is kept; for data whose traveler is unknown (a capture that
        matched no one), the shortest period of any class, so no class's limit is exceeded."""
        per_class = self.retention_hours[kind]
        hours = min(per_class.values()) if citizenship is None else per_class[citizenship]
        return timedelta(hours=hours)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "effective_from": self.effective_from.isoformat(),
            "description": self.description,
            "participation": {c.value: p.value for c, p in self.participation_by_class.items()},
            "exemptions": {"under_age": self.exempt_under_age, "over_age": self.exempt_over_age},
            "retention_hours": {
                k.value: {c.value: h for c, h in v.items()} for k, v in self.retention_hours.items()
            },
            "gallery_hours_after_departure": self.gallery_hours_after_departure,
            "admission": {
                "default_class": self.admission.default_class,
                "days_by_class": dict(self.admission.days_by_class),
                "grace_days": self.admission.grace_days,
            },
            "matching": {
                "gallery_target_fpir": self.matching.gallery_target_fpir,
                "verification_target_far": self.matching.verification_target_far,
            },
            "capture": {"max_frames": self.capture.max_frames},
            "fingerprints": self.fingerprints.as_dict(),
            "notice": {"version": self.notice.version, "text": dict(self.notice.texts)},
        }


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _require(mapping: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in mapping:
        raise InvalidInputError(f"policy: '{where}{key}' is missing")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInputError(f"policy: '{where}{key}' must be a {kind.__name__}")
    return value


def _per_class(table: Mapping[str, Any], where: str, parse: Any) -> dict[CitizenshipClass, Any]:
    unknown = set(table) - {c.value for c in CitizenshipClass}
    if unknown:
        raise InvalidInputError(f"policy: unknown traveler class in '{where}': {sorted(unknown)}")
    return {
        c: parse(_require(table, c.value, object, f"{where}."), where) for c in CitizenshipClass
    }


def _participation(value: object, where: str) -> Participation:
    try:
        return Participation(str(value))
    except ValueError:
        raise InvalidInputError(
            f"policy: '{where}' values are required, optional or exempt"
        ) from None


def _hours(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError(f"policy: '{where}' values are whole hours, 0 or more")
    return value


def _rate(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidInputError(f"policy: 'matching.{key}' must be a rate between 0 and 1")
    return float(value)


def _operating_point(document: Mapping[str, Any]) -> OperatingPoint:
    """The optional ``[matching]`` table; policies without one keep the defaults."""
    table = document.get("matching", {})
    if not isinstance(table, dict):
        raise InvalidInputError("policy: 'matching' must be a table")
    unknown = set(table) - {"gallery_target_fpir", "verification_target_far"}
    if unknown:
        raise InvalidInputError(f"policy: unknown matching settings {sorted(unknown)}")
    return OperatingPoint(
        gallery_target_fpir=_rate(
            table, "gallery_target_fpir", DEFAULT_OPERATING_POINT.gallery_target_fpir
        ),
        verification_target_far=_rate(
            table, "verification_target_far", DEFAULT_OPERATING_POINT.verification_target_far
        ),
    )


def _capture_rules(document: Mapping[str, Any]) -> CaptureRules:
    """The optional ``[capture]`` table; policies without one keep the defaults."""
    table = document.get("capture", {})
    if not isinstance(table, dict):
        raise InvalidInputError("policy: 'capture' must be a table")
    unknown = set(table) - {"max_frames"}
    if unknown:
        raise InvalidInputError(f"policy: unknown capture settings {sorted(unknown)}")
    frames = table.get("max_frames", DEFAULT_CAPTURE_RULES.max_frames)
    if (
        isinstance(frames, bool)
        or not isinstance(frames, int)
        or not 1 <= frames <= MAX_FRAMES_LIMIT
    ):
        raise InvalidInputError(
            f"policy: 'capture.max_frames' must be a whole number from 1 to {MAX_FRAMES_LIMIT}"
        )
    return CaptureRules(max_frames=frames)


def _admission_rules(document: Mapping[str, Any]) -> AdmissionRules:
    """The optional ``[admission]`` table (class defaults for stays of non-citizens)."""
    table = document.get("admission", {})
    if not isinstance(table, dict):
        raise InvalidInputError("policy: 'admission' must be a table")
    default = DEFAULT_ADMISSION_RULES
    default_class = table.get("default_class", default.default_class)
    if not isinstance(default_class, str) or not 1 <= len(default_class) <= 16:
        raise InvalidInputError("policy: 'admission.default_class' must be 1-16 characters")
    days = table.get("days", dict(default.days_by_class))
    if not isinstance(days, dict):
        raise InvalidInputError("policy: 'admission.days' must be a table of class = days")
    for name, value in days.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"policy: 'admission.days.{name}' must be whole days, 1+")
    return AdmissionRules(
        default_class=default_class,
        days_by_class=tuple(sorted(days.items())),
        grace_days=_hours(table.get("grace_days", default.grace_days), "admission.grace_days"),
    )


def _retention(table: Mapping[str, Any]) -> dict[DataKind, dict[CitizenshipClass, int]]:
    """Every kind's hours per class; a biographic kind a policy does not name keeps its data
    as long as the policy keeps encounter records."""
    hours: dict[DataKind, dict[CitizenshipClass, int]] = {}
    for kind in DataKind:
        if kind in BIOGRAPHIC_KINDS and kind.value not in table:
            continue
        hours[kind] = _per_class(
            _require(table, kind.value, dict, "retention."), f"retention.{kind.value}", _hours
        )
    for kind in BIOGRAPHIC_KINDS:
        hours.setdefault(kind, dict(hours[DataKind.ENCOUNTER_RECORDS]))
    return hours


def _notice(document: Mapping[str, Any]) -> PrivacyNotice:
    """The optional ``[notice]`` table: ``version`` and ``[notice.text]`` with one text per
    language code; policies without one show the generic notice."""
    table = document.get("notice")
    if table is None:
        return DEFAULT_NOTICE
    if not isinstance(table, dict):
        raise InvalidInputError("policy: 'notice' must be a table")
    unknown = set(table) - {"version", "text"}
    if unknown:
        raise InvalidInputError(f"policy: unknown notice settings {sorted(unknown)}")
    version = _require(table, "version", str, "notice.")
    if not version.strip() or len(version) > 64:
        raise InvalidInputError("policy: 'notice.version' must be 1 to 64 characters")
    texts = _require(table, "text", dict, "notice.")
    if not texts:
        raise InvalidInputError("policy: 'notice.text' needs the text in at least one language")
    for language, text in texts.items():
        if not _LANGUAGE_CODE.match(language):
            raise InvalidInputError(f"policy: 'notice.text.{language}' is not a language code")
        if not isinstance(text, str) or not text.strip() or len(text) > _MAX_NOTICE_CHARACTERS:
            raise InvalidInputError(
                f"policy: 'notice.text.{language}' must be 1 to {_MAX_NOTICE_CHARACTERS} characters"
            )
    return PrivacyNotice(version, tuple((k, v.strip()) for k, v in texts.items()))


def parse_policy(text: str) -> Policy:
    """Parse a policy file (TOML); every field is required and checked."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"policy: not valid TOML ({exc})") from None
    version = _require(document, "version", str, "")
    if not version.strip() or len(version) > 64:
        raise InvalidInputError("policy: 'version' must be 1 to 64 characters")
    effective = _require(document, "effective_from", datetime, "")
    if effective.tzinfo is None:
        raise InvalidInputError("policy: 'effective_from' needs a time zone (for example Z)")
    exemptions = _require(document, "exemptions", dict, "")
    retention = _require(document, "retention", dict, "")
    unknown_kinds = set(retention) - {k.value for k in DataKind}
    if unknown_kinds:
        raise InvalidInputError(f"policy: unknown retention kinds {sorted(unknown_kinds)}")
    gallery = _require(document, "gallery", dict, "")
    return Policy(
        version=version,
        effective_from=effective,
        description=str(document.get("description", "")),
        participation_by_class=_per_class(
            _require(document, "participation", dict, ""), "participation", _participation
        ),
        exempt_under_age=_hours(
            _require(exemptions, "under_age", int, "exemptions."), "exemptions"
        ),
        exempt_over_age=_hours(_require(exemptions, "over_age", int, "exemptions."), "exemptions"),
        retention_hours=_retention(retention),
        gallery_hours_after_departure=_hours(
            _require(gallery, "delete_hours_after_departure", int, "gallery."), "gallery"
        ),
        matching=_operating_point(document),
        admission=_admission_rules(document),
        capture=_capture_rules(document),
        fingerprints=parse_fingerprint_rules(document),
        notice=_notice(document),
    )


def policy_in_force(policies: Iterable[Policy], at: datetime) -> Policy:
    candidates = [p for p in policies if p.effective_from <= at]
    if not candidates:
        raise NotFoundError(f"no policy is in force at {at.isoformat()}; load one")
    return max(candidates, key=lambda p: (p.effective_from, p.version))
