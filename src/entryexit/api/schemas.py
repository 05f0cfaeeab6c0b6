"""Request and response bodies (``XxxCreate`` in, ``XxxPublic`` out)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from entryexit.domain.model import Decision, Direction


class FlightCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    carrier: str = Field(min_length=2, max_length=3, examples=["XY"])
    number: str = Field(min_length=1, max_length=5, examples=["123"])
    scheduled_departure: datetime = Field(examples=["2026-11-23T18:30:00Z"])
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


class DocumentRef(BaseModel):
    issuing_state: str
    number: str


class ManifestTravelerPublic(BaseModel):
    traveler_ref: str
    document: DocumentRef
    surname: str
    given_names: str
    citizenship_class: str
    has_photo: bool
    processed: bool


class EnrolmentPublic(BaseModel):
    template_id: str
    traveler_ref: str
    model: str
    quality: dict[str, object]


class StagingPublic(BaseModel):
    flight_id: str
    gallery_version: int
    travelers: int
    with_photo: int
    added: int
    removed: int
    unchanged: int
    without_photo: list[DocumentRef]


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
        default=None, description="The 1:N threshold the policy's target FPIR set."
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
