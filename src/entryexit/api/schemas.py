"""Request and response bodies (``XxxCreate`` in, ``XxxPublic`` out)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from entryexit.domain.model import Decision, Direction
from entryexit.services.watchlist import Disposition


def _representable_in_utc(value: datetime) -> datetime:
    """A time that exists in UTC (``9999-12-31T23:59:59-23:59`` does not: year 10000)."""
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("the time is out of range once converted to UTC") from None
    return value


# Every date-time the API accepts, in bodies and query strings.
Instant = Annotated[datetime, AfterValidator(_representable_in_utc)]


class FlightCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    carrier: str = Field(min_length=2, max_length=3, examples=["XY"])
    number: str = Field(min_length=1, max_length=5, examples=["123"])
    scheduled_departure: Instant = Field(examples=["2026-11-23T18:30:00Z"])
    origin: str = Field(min_length=3, max_length=5, examples=["JFK"])
    destination: str = Field(min_length=3, max_length=5, examples=["LHR"])
    direction: Direction


class FlightPublic(BaseModel):
    id: str
    carrier: str
    number: str
    scheduled_departure: datetime
    origin: str
    destination: str
    direction: Direction
    gallery_staged: bool
    gallery_version: int
    gallery_staged_at: datetime | None


class FlaggedTravelerPublic(BaseModel):
    """A traveler in a PAXLST message who could not be put on the manifest, and why."""

    segment: int
    role: str
    reason: str


class ManifestChangePublic(BaseModel):
    added: int
    removed: int
    updated: int
    total: int
    flagged: list[FlaggedTravelerPublic] = []
    # Travelers whose document's details another carrier (or the agency) set first: this
    # carrier's key may list them, but the details in force stay; the new ones wait for the
    # agency as manifest conflicts (GET /v1/manifest-conflicts). Told to the agency's keys
    # only (null for a carrier's key: the counts would tell it which documents are known).
    details_kept: int | None = 0
    conflicts: int | None = 0


class DocumentRef(BaseModel):
    issuing_state: str
    number: str


class ManifestTravelerPublic(BaseModel):
    traveler_ref: str
    document: DocumentRef
    surname: str
    given_names: str
    citizenship_class: str
    # Whether the agency holds a reference photo: null for a carrier's key.
    has_photo: bool | None
    processed: bool
    booking_reference: str | None = None


class EnrolmentPublic(BaseModel):
    template_id: str
    traveler_ref: str
    model: str
    quality: dict[str, object]


class EnrolledFingerPublic(BaseModel):
    finger: int
    quality: int | None


class FingerprintEnrolmentPublic(BaseModel):
    traveler_ref: str
    engine: str
    fingers: list[EnrolledFingerPublic]


class FingerScorePublic(BaseModel):
    finger: int
    score: float


class FingerprintVerificationPublic(BaseModel):
    decision: str
    traveler_ref: str
    engine: str
    fingers: list[FingerScorePublic]
    fused_score: float
    threshold: float
    fusion: str
    encounter_id: str | None = None
    # Watchlist alerts the live prints raised (with a flight_id only), for an officer.
    alerts: int = 0


class FingerprintCandidatePublic(BaseModel):
    traveler_ref: str
    fused_score: float
    fingers: list[FingerScorePublic]
    meets_threshold: bool


class FingerprintSearchPublic(BaseModel):
    candidates: list[FingerprintCandidatePublic]
    searched: int
    engine: str
    threshold: float
    alerts: int = 0


class StagingPublic(BaseModel):
    """A staging's answer. The gallery's counts and who has no photo are the agency's keys'
    only (None for a carrier's key: they tell whom the agency holds a photo of)."""

    flight_id: str
    gallery_version: int
    travelers: int
    with_photo: int | None = None
    added: int | None = None
    removed: int | None = None
    unchanged: int | None = None
    without_photo: list[DocumentRef] | None = None


class CaptureDecisionPublic(BaseModel):
    """What every caller allowed to capture sees: the decision and nothing personal."""

    capture_id: str
    decision: Decision
    reasons: list[str]
    already_processed: bool


class CaptureDetailPublic(CaptureDecisionPublic):
    """Officers and administrators also see the traveler reference and the scores."""

    traveler_ref: str | None
    score: float | None
    runner_up_score: float | None
    threshold: float | None = Field(
        default=None,
        description="The 1:N threshold the policy's target FPIR set, for the number of frames"
        " fused and the reference photos fused in the top candidate's gallery entry.",
    )
    frames_fused: int = Field(
        default=1, description="How many frames of the burst made the probe (1: a single frame)."
    )
    model: str
    gallery_size: int
    policy_version: str


class EncounterPublic(BaseModel):
    id: str
    traveler_ref: str
    direction: Direction
    method: str
    gate: str
    device: str
    occurred_at: datetime
    score: float | None
    model: str | None
    policy_version: str
    capture_id: str | None


class AuditEventPublic(BaseModel):
    sequence: int
    occurred_at: datetime
    action: str
    outcome: str
    actor_key_id: str | None
    actor_role: str | None
    resource_type: str | None
    resource_id: str | None
    policy_version: str | None
    details: dict[str, int | str]
    previous_hash: str
    hash: str


class AuditProblemPublic(BaseModel):
    sequence: int
    reason: str


class AuditRepairPublic(BaseModel):
    """An ``audit repair`` the walk passed: where an administrator let work go on."""

    sequence: int
    occurred_at: datetime
    actor_key_id: str | None
    details: dict[str, int | str]


class AuditCheckpointsPublic(BaseModel):
    checked: int
    superseded: int
    problems: list[str]
    restores: list[str]


class AuditVerificationPublic(BaseModel):
    """``ok`` only if the chain verifies and agrees with the checkpoints held against it.

    The interactive check walks from the last signed checkpoint forward
    (``checked_from_sequence`` is that checkpoint's event; 1 when the whole log was walked):
    the full walk of a large log is `entryexit audit verify --checkpoints FILE`."""

    ok: bool
    events: int
    checked_from_sequence: int = 1
    first_broken_sequence: int | None
    reason: str | None
    problems: list[AuditProblemPublic] = []
    problem_count: int = 0
    repairs: list[AuditRepairPublic] = []
    checkpoints: AuditCheckpointsPublic | None = None


class OptOutCreate(BaseModel):
    """The traveler's document: ``issuing_state`` and ``number``, or its ``mrz`` lines."""

    issuing_state: str | None = Field(default=None, min_length=1, max_length=3, examples=["UTO"])
    number: str | None = Field(default=None, min_length=1, max_length=20, examples=["L898902C3"])
    mrz: list[str] | None = Field(default=None, max_length=3)
    gate: str = Field(min_length=1, max_length=64, examples=["B12"])


class ErasureCreate(BaseModel):
    """The traveler to erase, by a document of theirs (``issuing_state`` and ``number``, or
    its ``mrz`` lines), and why: a reason code, never free text."""

    issuing_state: str | None = Field(default=None, min_length=1, max_length=3, examples=["UTO"])
    number: str | None = Field(default=None, min_length=1, max_length=20, examples=["L898902C3"])
    mrz: list[str] | None = Field(default=None, max_length=3)
    reason: Literal["court_order", "mistaken_enrolment"]


class ErasurePublic(BaseModel):
    """What was erased: counts per kind (the traveler's data key among them)."""

    traveler_id: str
    reason: str
    erased: dict[str, int]
    galleries_rebuilt: int


class OptOutPublic(BaseModel):
    decision: str = "manual"
    encounter_id: str
    policy_version: str


class VerificationDecisionPublic(BaseModel):
    decision: Decision
    reasons: list[str]


class VerificationDetailPublic(VerificationDecisionPublic):
    similarity: float | None
    threshold: float
    model: str
    policy_version: str
    encounter_id: str | None
    chip_checks: dict[str, str]


class AdmissionUpdate(BaseModel):
    admission_class: str = Field(min_length=1, max_length=16, examples=["B2"])
    admitted_until: date | None = Field(default=None, examples=["2027-05-21"])


class DispositionCreate(BaseModel):
    disposition: Disposition
    reason: str = Field(min_length=1, max_length=500)


# --- entry and exit ---------------------------------------------------------------------
class CrossingEncounterPublic(BaseModel):
    encounter_id: str
    flight_id: str
    occurred_at: datetime
    method: str
    score: float | None


class AdmissionPublic(BaseModel):
    admission_id: str
    admission_class: str | None = Field(alias="class")
    admitted_on: date | None
    admitted_until: date | None
    exited_on: date | None
    exit_link: str | None
    exit_link_score: float | None
    exit_without_entry: bool
    days_over: int

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class TravelerCrossingsPublic(BaseModel):
    traveler_ref: str
    entries: list[CrossingEncounterPublic]
    exits: list[CrossingEncounterPublic]
    admissions: list[AdmissionPublic]


class OverstayRowPublic(BaseModel):
    traveler_ref: str
    surname: str
    given_names: str
    nationality: str
    document: str
    admission_class: str
    admitted_on: date | None
    admitted_until: date | None
    exited_on: date | None
    days_over: int


class ExitWithoutEntryPublic(BaseModel):
    traveler_ref: str
    exited_on: date
    exit_flight: str


class OverstayReportPublic(BaseModel):
    as_of: date
    grace_days: int
    policy_version: str
    in_country: list[OverstayRowPublic]
    out_of_country: list[OverstayRowPublic]
    exit_confirmation: dict[str, list[dict[str, Any]]] = Field(
        description="by_flight, by_port, by_carrier, by_day: travelers, confirmed exits, rate"
    )
    exits_without_entry: list[ExitWithoutEntryPublic]


class WatchlistEntryPublic(BaseModel):
    entry_id: str
    category: str
    reason_code: str
    model: str
    added_at: datetime


class WatchlistEntryCreated(BaseModel):
    entry_id: str


class AlertPublic(BaseModel):
    id: str
    source: str
    flight_id: str
    traveler_id: str | None
    capture_id: str | None
    watchlist_entry_id: str
    score: float
    model: str
    policy_version: str
    created_at: datetime
    status: str
    disposition_reason: str | None = None
    dispositioned_by: str | None = None
    dispositioned_at: datetime | None = None


# --- policies and reports --------------------------------------------------------------
class PolicyPublic(BaseModel):
    version: str
    effective_from: datetime
    description: str
    participation: dict[str, str]
    exemptions: dict[str, int | None]
    retention_hours: dict[str, dict[str, int | float]]
    gallery_hours_after_departure: int | float
    admission: dict[str, Any]
    matching: dict[str, float]
    # The privacy notice shown before a camera: {"version": ..., "text": {language: text}}.
    notice: dict[str, Any]
    capture: dict[str, int]


class PrivacyReportPublic(BaseModel):
    generated_at: datetime
    as_of: datetime
    period: dict[str, datetime]
    policy_in_force: str
    held: dict[str, int]
    overdue: dict[str, int]
    overdue_total: int
    oldest: dict[str, datetime | None]
    purges: dict[str, Any]
    erasures: int
    opt_outs: int
    exemptions: int
    manual_processing: int
    decisions: dict[str, int]


class FairnessReportPublic(BaseModel):
    period: dict[str, datetime]
    attribute: str
    groups: dict[str, dict[str, float | int | None]]
    notes: list[str]


class ManifestDetailsPublic(BaseModel):
    """A document's details as a manifest states them."""

    surname: str
    given_names: str
    date_of_birth: date
    sex: str
    nationality: str
    citizenship_class: str
    document_type: str
    document_expiry: date


class ManifestConflictPublic(BaseModel):
    """Details a carrier's manifest brought for a document whose details another carrier
    (``held_by``; ``(agency)`` for the agency, null if not recorded) set first. ``kept`` and
    ``proposed`` are null once they cannot be read (the traveler's key shredded)."""

    id: str
    document: DocumentRef | None
    flight_id: str
    proposed_by: str
    held_by: str | None
    kept: ManifestDetailsPublic | None
    proposed: ManifestDetailsPublic | None
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None


class ConflictResolutionCreate(BaseModel):
    """``kept``: the details in force stay; ``proposed``: the carrier's details replace them
    (and that carrier's later manifests may correct them)."""

    apply: Literal["kept", "proposed"]
