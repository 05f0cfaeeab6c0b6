"""Ports: what the services need from the outside world, as small protocols.

``adapters.storage.store.SqlStore`` implements :class:`Store` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceAnalysis
from entryexit.biometrics.recognizer import RecognizerManifest
from entryexit.domain.access import Role, StoredApiKey
from entryexit.domain.admission import Admission, ExitLink
from entryexit.domain.audit import AuditEntry, AuditEvent
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    Encounter,
    Flight,
    ManifestChange,
    ManifestTraveler,
    PhotoSource,
)

Clock = Callable[[], datetime]


class KeyProvider(Protocol):
    """Key-encryption keys (by id; one is current), the audit log's signing key, and the key
    of the keyed digests by which documents are looked up."""

    def current_kek(self) -> tuple[str, bytes]: ...
    def kek(self, kek_id: str) -> bytes: ...
    def audit_key(self) -> bytes: ...
    def index_key(self) -> bytes: ...


class FaceAnalyser(Protocol):
    """What the services need of the face engine (``biometrics.FaceEngine`` is the real one)."""

    model: str
    dimension: int
    recipe: str
    recognizer: RecognizerManifest

    def analyse(self, data: bytes, formats: frozenset[str] = ...) -> FaceAnalysis: ...

    def analyse_reference(self, data: bytes, formats: frozenset[str] = ...) -> FaceAnalysis:
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


class ConsoleStore(Protocol):
    """What the console's services need beyond :class:`Store`."""

    def add_console_user(
        self, user_id: str, username: str, password_hash: str, role: Role, now: datetime
    ) -> None: ...
    def find_console_user(self, username: str) -> ConsoleUser | None: ...
    def get_console_user(self, user_id: str) -> ConsoleUser | None: ...
    def record_sign_in(
        self,
        user_id: str,
        succeeded: bool,
        locked_until: datetime | None,
        password_hash: str | None = None,
    ) -> None: ...
    def add_console_session(self, record: ConsoleSession) -> None: ...
    def get_console_session(self, token_hash: str) -> ConsoleSession | None: ...
    def touch_console_session(self, token_hash: str, now: datetime) -> None: ...
    def delete_console_session(self, token_hash: str) -> None: ...
    def delete_expired_console_sessions(self, now: datetime) -> int: ...
    def flight_board(
        self, since: datetime, until: datetime
    ) -> list[tuple[Flight, FlightCounts]]: ...
    def recent_captures(
        self, flight_id: str | None, limit: int, open_only: bool = False
    ) -> list[CaptureSummary]: ...
    def get_capture(self, capture_id: str) -> CaptureSummary | None: ...
    def resolve_capture(
        self, capture_id: str, resolution: str, officer_id: str, now: datetime
    ) -> bool: ...
    def reference_photo(self, traveler_id: str) -> bytes | None: ...
    def capture_image(self, capture_id: str) -> bytes | None: ...


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


# Called after an encounter is recorded, with the live template when there is one.
EncounterHook = Callable[[Encounter, Flight, NDArray[np.float32] | None], None]


class TemplateIndex(Protocol):
    """A searchable template list: every (probe row, entry row, score) at or above a
    threshold (exact scores; an approximate index may miss entries, never invent them)."""

    def __len__(self) -> int: ...
    def search(
        self, probes: NDArray[np.float32], threshold: float
    ) -> list[tuple[int, int, float]]: ...


IndexBuilder = Callable[[NDArray[np.float32]], TemplateIndex]


class CrossingStore(Protocol):
    """Admissions, the watchlist and alerts (implemented by the SQL store)."""

    def open_admission(self, new: NewAdmission) -> bool: ...
    def open_admission_of(self, traveler_id: str) -> Admission | None: ...
    def open_admission_templates(
        self, model: str, exclude_traveler: str, limit: int
    ) -> list[tuple[str, bytes]]: ...
    def close_admission(
        self,
        admission_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exit_traveler_id: str,
        exited_on: date,
        link: ExitLink,
        score: float | None,
    ) -> bool: ...
    def record_exit_without_entry(
        self,
        record_id: str,
        traveler_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exited_on: date,
        now: datetime,
    ) -> None: ...
    def update_admission(
        self, admission_id: str, admission_class: str, until: date | None
    ) -> Admission | None: ...
    def admissions_of(self, traveler_id: str) -> list[Admission]: ...
    def in_country_overstays(self, before: date, limit: int | None = None) -> list[Admission]: ...
    def out_of_country_overstays(
        self, since: date, until: date, limit: int | None = None
    ) -> list[Admission]: ...
    def exits_without_entry(self, since: date, until: date) -> list[tuple[str, date, str]]: ...
    def exit_confirmations(self, since: datetime, until: datetime) -> list[ExitConfirmation]: ...
    def add_watchlist_entry(self, entry: WatchlistEntry, template: bytes) -> None: ...
    def remove_watchlist_entry(self, entry_id: str, now: datetime) -> bool: ...
    def watchlist_entries(self) -> list[WatchlistEntry]: ...
    def watchlist_templates(self, model: str) -> list[tuple[str, bytes]]: ...
    def add_alert(self, alert: AlertRecord) -> bool: ...
    def alerts(self, status: str | None, limit: int) -> list[AlertRecord]: ...
    def get_alert(self, alert_id: str) -> AlertRecord | None: ...
    def has_open_alert(self, traveler_id: str) -> bool: ...
    def disposition_alert(
        self, alert_id: str, status: str, reason: str, officer_id: str, now: datetime
    ) -> bool: ...
    def traveler_identities(self, traveler_ids: list[str]) -> dict[str, TravelerIdentity]: ...
    def encounters_of(self, traveler_id: str) -> list[Encounter]: ...


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
class TravelerProfile:
    citizenship_class: CitizenshipClass | None
    date_of_birth: date | None


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version: str
    source: str
    sha256: str


class Store(Protocol):
    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def count_api_keys(self) -> int: ...
    def add_api_key(self, key: StoredApiKey) -> None: ...
    def find_api_key(self, prefix: str) -> StoredApiKey | None: ...

    def add_flight(self, flight: Flight) -> None: ...
    def get_flight(self, flight_id: str) -> Flight | None: ...
    def replace_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange: ...
    def manifest_status(self, flight_id: str, model: str) -> list[ManifestStatus]: ...
    def manifest_travelers(self, flight_id: str) -> list[ManifestTraveler]: ...

    def add_reference_template(
        self,
        document: DocumentKey,
        source: PhotoSource,
        vector: bytes,
        model: str,
        now: datetime,
        expires_at: datetime | None = None,
        image: bytes | None = None,
    ) -> tuple[str, str]: ...
    def traveler_for_document(self, document: DocumentKey) -> str | None: ...
    def traveler_profile(self, traveler_id: str) -> TravelerProfile: ...
    def gallery_templates(self, flight_id: str, model: str) -> list[StoredTemplate]: ...
    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int: ...

    def add_policy(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool: ...
    def policies(self) -> list[StoredPolicy]: ...
    def purge_expired(self, now: datetime) -> dict[str, int]: ...
    def retention_counts(self, now: datetime) -> dict[str, dict[str, int]]: ...
    def decision_counts(self, since: datetime, until: datetime) -> dict[str, int]: ...
    def outcomes_by_sex(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]: ...

    def shred_traveler(self, traveler_id: str) -> int: ...
    def rotate_data_keys(self) -> int: ...
    def data_keys_by_kek(self) -> dict[str, int]: ...

    def append_audit(self, entry: AuditEntry) -> AuditEvent: ...
    def audit_events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]: ...
    def audit_head(self) -> tuple[int, str] | None: ...

    def add_capture(self, capture: CaptureRecord) -> None: ...
    def add_encounter(self, encounter: Encounter) -> bool: ...
    def list_encounters(self, flight_id: str) -> list[Encounter]: ...
