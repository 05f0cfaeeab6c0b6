"""Ports: what the services need from the outside world (keys, the face engine, a search
index), and the records that cross the storage port (``services.unit_of_work``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from entryexit.domain.access import Role
from entryexit.domain.audit_checkpoints import Checkpoint, CheckpointLine

if TYPE_CHECKING:
    # Types only: reading the ports (every service does) must not load the face engine.
    from entryexit.biometrics import FaceAnalysis
    from entryexit.biometrics.decode import ImageKind
    from entryexit.biometrics.fusion import BurstAnalysis
    from entryexit.biometrics.recognizer import RecognizerManifest
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
)

Clock = Callable[[], datetime]


class KeyProvider(Protocol):
    """Key-encryption keys (by id; one is current), the audit log's signing key, and the key
    of the keyed digests by which documents are looked up."""

    def current_kek(self) -> tuple[str, bytes]: ...
    def kek(self, kek_id: str) -> bytes: ...
    def audit_key(self) -> bytes: ...
    def index_key(self) -> bytes: ...
    def checkpoint_key(self) -> bytes:
        """The Ed25519 seed that signs audit checkpoints (32 bytes)."""
        ...


class CheckpointVerifier(Protocol):
    def verify(self, message: bytes, signature: str) -> bool:
        """Whether the audit checkpoint key signed ``message`` (``signature`` base64)."""
        ...


class CheckpointSigner(CheckpointVerifier, Protocol):
    """Signs audit checkpoints and restore statements (an asymmetric key: verifying needs only
    the public key)."""

    def sign(self, message: bytes) -> str: ...
    def public_key_pem(self) -> str: ...


class CheckpointStore(Protocol):
    """Where checkpoints leave the database: an append-only file outside the data
    directory."""

    def append(self, checkpoint: Checkpoint) -> str:
        """Add the signed checkpoint; returns the line written (it goes to the log too)."""
        ...

    def read(self) -> list[CheckpointLine]: ...


class FaceAnalyser(Protocol):
    """What the services need of the face engine (``biometrics.FaceEngine`` is the real one)."""

    model: str
    dimension: int
    recipe: str
    recognizer: RecognizerManifest

    def analyse(
        self, data: bytes, formats: frozenset[str] = ..., kind: ImageKind = ...
    ) -> FaceAnalysis:
        """A live capture (``kind`` decides the decoding limits: a gate frame by default)."""
        ...

    def analyse_burst(
        self,
        frames: Sequence[bytes],
        limit: int,
        formats: frozenset[str] = ...,
        kind: ImageKind = ...,
    ) -> BurstAnalysis:
        """Gate each frame of a burst, fuse the best ``limit`` that pass into one probe."""
        ...

    def analyse_reference(
        self, data: bytes, formats: frozenset[str] = ..., kind: ImageKind = ...
    ) -> FaceAnalysis:
        """The richer template for an enrolled reference photo (same model, same space)."""
        ...


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: str
    username: str
    password_hash: str
    role: Role
    failed_attempts: int
    locked_until: datetime | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class SignInFailures:
    """Failed sign-ins to one account from one client address since its last success."""

    failed_attempts: int
    last_failure_at: datetime
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    token_hash: str
    user_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class FlightCounts:
    travelers: int
    matched: int
    manual: int
    opted_out: int
    recaptures: int
    no_matches: int
    outstanding: int
    open_cases: int


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """A gate capture as the console lists it: no image, no personal data."""

    id: str
    flight_id: str
    gate: str
    received_at: datetime
    decision: str
    reason: str | None
    score: float | None
    traveler_id: str | None
    has_image: bool
    resolution: str | None
    resolved_by: str | None


@dataclass(frozen=True, slots=True)
class TravelerIdentity:
    traveler_id: str
    surname: str
    given_names: str
    nationality: str
    document: DocumentKey


@dataclass(frozen=True, slots=True)
class NewAdmission:
    id: str
    traveler_id: str
    admission_class: str
    admitted_on: date
    admitted_until: date | None
    entry_encounter_id: str
    entry_flight_id: str
    template: bytes | None
    template_model: str | None
    created_at: datetime
    # How many photos the entry template fuses (1: one capture or one reference photo; None:
    # not known, such as a fused burst): its 1:N threshold for an exit link depends on it.
    template_photos: int | None = None


@dataclass(frozen=True, slots=True)
class ExitConfirmation:
    flight_id: str
    carrier: str
    number: str
    port: str
    departure: datetime
    travelers: int
    confirmed: int


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    id: str
    category: str
    reason_code: str
    model: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
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


class TemplateIndex(Protocol):
    """A searchable template list: every (probe row, entry row, score) at or above a
    threshold (exact scores; an approximate index may miss entries, never invent them)."""

    def __len__(self) -> int: ...
    def search(
        self, probes: NDArray[np.float32], threshold: float
    ) -> list[tuple[int, int, float]]: ...


IndexBuilder = Callable[[NDArray[np.float32]], TemplateIndex]


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    traveler_id: str
    vector: bytes
    model: str


@dataclass(frozen=True, slots=True)
class ManifestStatus:
    """A manifest traveler's state for officers: no names beyond what they need to act."""

    traveler_id: str
    document: DocumentKey
    surname: str
    given_names: str
    citizenship_class: str
    has_photo: bool
    processed: bool
    date_of_birth: date | None = None
    opted_out: bool = False
    booking_reference: str | None = None
    # With the document's issuing state, what shows a home-state citizen (see TravelerProfile).
    nationality: str = ""
    document_type: str = ""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    id: str
    flight_id: str
    gate: str
    device: str
    received_at: datetime
    decision: str
    reason: str | None
    score: float | None
    traveler_id: str | None
    model: str | None
    policy_version: str | None = None
    expires_at: datetime | None = None
    # The image is kept only for captures an officer must review; the store seals it.
    image: bytes | None = None
    image_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredFingerprint:
    """One enrolled finger, opened: the engine's template bytes."""

    id: str
    traveler_id: str
    finger: int
    engine: str
    template: bytes
    quality: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CasePrint:
    """A live finger an officer submitted on a console case, kept (sealed under the data key
    of the traveler whose document was checked, bound to that officer) for the case's
    evidence period so the case page can draw it. ``template`` is the engine's template of
    the live print; ``image`` the 500 ppi PNG, opened only when asked for (``has_image``
    says whether one is kept: an ISO minutiae record has none)."""

    id: str
    capture_id: str
    traveler_id: str
    finger: int
    engine: str
    officer_id: str
    score: float
    template: bytes
    has_image: bool
    created_at: datetime
    expires_at: datetime
    image: bytes | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A gate's ``Idempotency-Key`` (scoped to the caller's key) claimed for one capture."""

    scope: str
    key: str
    flight_id: str
    request_digest: str
    capture_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredIdempotency:
    """What an earlier attempt under the same key stored: the request's digest and the
    outcome it got (JSON, written in the same transaction as the capture)."""

    flight_id: str
    request_digest: str
    capture_id: str
    outcome: str | None


@dataclass(frozen=True, slots=True)
class TravelerProfile:
    citizenship_class: CitizenshipClass | None
    date_of_birth: date | None
    # What the citizen rule adds to the clear columns (``TravelerRepository.citizens``): the
    # nationality, sealed; and the states whose passports (or national identity cards) they
    # hold (a carrier's word deletes no prints of a traveler without such a home-state one).
    nationality: str | None = None
    passport_states: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StatedDetails:
    """Details that decide whether the policy takes a traveler's prints: those in force on one
    of their described documents (``conflict_id`` None), or those an open manifest conflict
    proposes for it. ``by`` is who stated them (a carrier's code, ``AGENCY``, or None: set
    before this was recorded, taken as the agency's). ``date_of_birth`` is None when unknown
    or not opened (clear columns only)."""

    traveler_id: str
    citizenship_class: CitizenshipClass | None
    date_of_birth: date | None
    by: str | None
    conflict_id: str | None = None


@dataclass(frozen=True, slots=True)
class TravelerErasure:
    """What erasing one traveler deleted: how many of each kind (never what), and the flights
    whose staged gallery had them (rebuilt without them)."""

    counts: dict[str, int]
    staged_flights: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version: str
    source: str
    sha256: str


@dataclass(frozen=True, slots=True)
class JobRun:
    """A background job's last run, shared by the fleet (no personal data: counts only)."""

    job: str
    started_at: datetime | None
    finished_at: datetime | None
    success_at: datetime | None
    duration_seconds: float | None
    outcome: str | None
    counts: dict[str, int]
    runs: int


class JobLease(Protocol):
    """Held by one process of the fleet at a time; lost when the holder dies."""

    def renew(self) -> bool:
        """Still held? (``False``: another process may hold it now; stop the job's work.)"""
        ...

    def release(self) -> None: ...


class JobLeases(Protocol):
    """Who runs a background job now, and how its runs went."""

    def acquire(self, job: str) -> JobLease | None:
        """The lease if nobody else holds it, without waiting."""
        ...

    def last_run(self, job: str) -> JobRun | None: ...
    def last_runs(self) -> list[JobRun]: ...
    def record(
        self,
        job: str,
        started_at: datetime,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
    ) -> None: ...


class ChangeFeed(Protocol):
    """Pushed news of shared state changed by other processes (PostgreSQL ``NOTIFY``).

    ``token(name)`` changes whenever a change of ``name`` is announced (and on every
    reconnect, when news may have been missed); ``None`` while nothing is listening, and the
    caller must then read the state's generation itself."""

    def token(self, name: str) -> object | None: ...
    def stop(self) -> None: ...
