"""SQLAlchemy table mappings (the only place that knows the schema's shape)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(3), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # See repositories/access.py: NULL only for a row written before MACs and not yet
    # attested by the audit log (refused).
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class FlightRow(Base):
    __tablename__ = "flights"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(3), index=True)
    number: Mapped[str] = mapped_column(String(8))
    scheduled_departure: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    origin: Mapped[str] = mapped_column(String(5))
    destination: Mapped[str] = mapped_column(String(5))
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    gallery_version: Mapped[int] = mapped_column(Integer, default=0)
    gallery_staged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    gallery_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The manifest version in force (ManifestEntryRow.upload_id); None: no manifest yet.
    manifest_version: Mapped[str | None] = mapped_column(String(36), nullable=True)


class TravelerRow(Base):
    __tablename__ = "travelers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DocumentRow(Base):
    """A travel document. The number is stored only as a keyed digest (for look-up) and, with
    the names and birth date, sealed under the traveler's data key: a copy of the database
    without the keys names no one."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("issuing_state", "number_digest", name="uq_document_digest"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"), index=True)
    issuing_state: Mapped[str] = mapped_column(String(3))
    number_digest: Mapped[str] = mapped_column(String(64))
    personal: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    citizenship_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Who set the details: a carrier's code, or AGENCY (migration 0023; None: set before it).
    # A carrier-bound key's manifest never rewrites another's: it records a conflict.
    details_by: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ManifestConflictRow(Base):
    """Details a carrier's manifest brought for a document whose details another carrier (or
    the agency) set: not applied, kept here (sealed under the traveler's data key, as on the
    manifest entry) for the agency to apply or dismiss. No foreign key to the document: the
    purge and erasure delete documents without knowing of this table, and a conflict whose
    document is gone can only be dismissed (its details unreadable once the key is shredded).
    """

    __tablename__ = "manifest_conflicts"
    __table_args__ = (
        Index("ix_manifest_conflicts_document_open", "document_id", "resolved_at"),
        # The list's keyset order (migration 0027).
        Index("ix_manifest_conflicts_created", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(36))
    traveler_id: Mapped[str] = mapped_column(String(36))
    flight_id: Mapped[str] = mapped_column(String(36))
    proposed_by: Mapped[str] = mapped_column(String(16))
    held_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    personal: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    citizenship_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The data key ``personal`` was sealed under, by its creation time (migration 0025): a
    # traveler's key shredded and made anew is another, and the proposal is then unreadable.
    sealed_under: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ManifestEntryRow(Base):
    """One traveler of one version of a flight's manifest. An upload writes a new version
    (``upload_id``) in short batches; the flight's ``manifest_version`` names the version in
    force, so readers see one whole version (:func:`in_force`) and a replacement of any size is
    one row changed. ``personal`` and the other details are set only where a known document's
    details changed: the document takes them when its version comes into force."""

    __tablename__ = "manifest_entries"
    __table_args__ = (
        UniqueConstraint("upload_id", "document_id", name="uq_manifest_version_document"),
        Index("ix_manifest_entries_version", "flight_id", "upload_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flight_id: Mapped[str] = mapped_column(ForeignKey("flights.id"), index=True)
    upload_id: Mapped[str] = mapped_column(String(36))
    # Both indexed for the purge (migration 0022): "does a manifest still name them", and
    # SQLite's foreign-key check of every entry for each document deleted.
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())
    personal: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    citizenship_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # What the uploading carrier itself sent for this traveler (a carrier-bound key's upload;
    # None for the agency's), sealed under the traveler's data key with its class, document
    # type and expiry (migration 0026): what the carrier's key is shown, and what its flight
    # decides by when another carrier holds the document's details.
    sent: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


def in_force() -> ColumnElement[bool]:
    """The condition that keeps only the manifest entries of their flight's version in force
    (entries of an upload in progress, or of a superseded version, are never seen). A flight
    with no manifest yet has a NULL version: compared as '' so that the negation holds for
    its staged entries too (NOT (x = NULL) is NULL, and a failed first upload's entries were
    never dropped)."""
    return ManifestEntryRow.upload_id == func.coalesce(
        select(FlightRow.manifest_version)
        .where(FlightRow.id == ManifestEntryRow.flight_id)
        .scalar_subquery(),
        "",
    )


class ReferenceTemplateRow(Base):
    __tablename__ = "reference_templates"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    # The enrolled photo, sealed with the traveler's data key, for the officer who compares a
    # no-match capture with the candidates; deleted with the template.
    image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class FingerprintTemplateRow(Base):
    """One enrolled finger of a traveler (minutiae template, sealed with the traveler's data
    key); the print image itself is never kept. One per traveler, finger and engine."""

    __tablename__ = "fingerprint_templates"
    __table_args__ = (
        UniqueConstraint("traveler_id", "finger", "engine", name="uq_fingerprint_finger"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"), index=True)
    finger: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(64))
    template: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class CaseFingerprintRow(Base):
    """A live finger an officer submitted on a console case: its template and (for an image)
    the 500 ppi PNG, sealed under the data key of the traveler whose document was checked,
    the seal bound to the case, finger and officer; kept until the case's evidence period
    ends (the policy's capture-image retention), then purged. No foreign keys: the purge
    and an erasure delete these rows by time and by traveler, in any order."""

    __tablename__ = "case_fingerprints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    capture_id: Mapped[str] = mapped_column(String(36), index=True)
    traveler_id: Mapped[str] = mapped_column(String(36), index=True)
    finger: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(64))
    officer_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    template: Mapped[bytes] = mapped_column(LargeBinary)
    image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class CaptureRow(Base):
    __tablename__ = "captures"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flight_id: Mapped[str] = mapped_column(ForeignKey("flights.id"), index=True)
    gate: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    traveler_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    # Kept only for captures an officer must review (no match): sealed with a key of its own.
    image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    image_expires_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), nullable=True, index=True
    )
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # An officer's resolution of a no-match or manual case (console exceptions queue).
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


class CaptureIdempotencyRow(Base):
    """A gate's ``Idempotency-Key`` for one capture: claimed first in the capture's own
    transaction (the primary key decides between concurrent retries on any instance), with
    the outcome the first attempt got. Kept as long as the capture record."""

    __tablename__ = "capture_idempotency_keys"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    flight_id: Mapped[str] = mapped_column(String(36))
    request_digest: Mapped[str] = mapped_column(String(64))
    capture_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)


class CacheGenerationRow(Base):
    """A counter per kind of shared state that processes cache (the watchlist): a writer
    bumps it in its own transaction, a reader compares it with its copy's before use."""

    __tablename__ = "cache_generations"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class JobRunRow(Base):
    """A background job's last run; on SQLite also its leader lease (PostgreSQL holds an
    advisory lock instead)."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_counts: Mapped[str | None] = mapped_column(Text, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)


class EncounterRow(Base):
    __tablename__ = "encounters"
    __table_args__ = (
        UniqueConstraint("flight_id", "traveler_id", name="uq_encounter_flight_traveler"),
        Index("ix_encounters_traveler", "traveler_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flight_id: Mapped[str] = mapped_column(ForeignKey("flights.id"), index=True)
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"))
    direction: Mapped[str] = mapped_column(String(8))
    method: Mapped[str] = mapped_column(String(32))
    gate: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    capture_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)


class DataKeyRow(Base):
    """A traveler's data key, wrapped by a KEK. Deleting it crypto-shreds their biometrics."""

    __tablename__ = "data_keys"
    traveler_id: Mapped[str] = mapped_column(ForeignKey("travelers.id"), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    actor_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    actor_role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    resource_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[str] = mapped_column(String(2000))
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # HMAC of (sequence, hash) with the audit key; NULL only for events written before 0008
    # until the first start that can verify and MAC them.
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditHeadRow(Base):
    """The signed head of the chain (a single row, id 1)."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))


class PolicyRow(Base):
    """A loaded policy file, verbatim, with its version and effective date."""

    __tablename__ = "policies"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(20000))
    sha256: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ConsoleUserRow(Base):
    """A person who signs in to the console (API keys are for machines)."""

    __tablename__ = "console_users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ConsoleSignInFailureRow(Base):
    """Failed sign-ins to one account from one client address (its SHA-256, not the address):
    the lock-out is per address, so a stranger's guesses cannot lock an officer out."""

    __tablename__ = "console_sign_in_failures"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), primary_key=True
    )
    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_attempts: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ConsoleSessionRow(Base):
    """A signed-in browser: only the SHA-256 of its cookie is stored."""

    __tablename__ = "console_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AdmissionRow(Base):
    """A non-citizen's stay: opened by an entry encounter, closed by an exit encounter (linked
    by document, or biometrically when the traveler left on another document)."""

    __tablename__ = "admissions"
    __table_args__ = (
        Index("ix_admissions_open_until", "exited_on", "admitted_until"),
        Index("ix_admissions_exited_on", "exited_on"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    traveler_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    admission_class: Mapped[str] = mapped_column(String(16))
    admitted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    admitted_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    entry_encounter_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    entry_flight_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    exit_encounter_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    exit_flight_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    exit_traveler_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    exited_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # How the exit was tied to this stay: document (same traveler) or biometric (with score).
    link: Mapped[str | None] = mapped_column(String(16), nullable=True)
    link_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The entry template, sealed with a key of its own, kept while the stay is open so that an
    # exit on a new passport can still be linked; cleared when the stay closes.
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    template_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Photos the entry template fuses (the exit link's threshold depends on it); NULL: unknown.
    template_photos: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WatchlistEntryRow(Base):
    """A watchlist template, sealed with its own key; never joined to travelers."""

    __tablename__ = "watchlist_entries"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64), index=True)
    template: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(36))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AlertRow(Base):
    """A watchlist hit waiting for (or with) an officer's disposition."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_traveler", "status", "traveler_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    flight_id: Mapped[str] = mapped_column(String(36), index=True)
    traveler_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    capture_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    watchlist_entry_id: Mapped[str] = mapped_column(String(36))
    score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(32))
    disposition_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    dispositioned_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    dispositioned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OutboxRow(Base):
    """Work a use case hands to a background worker in its own transaction (admissions)."""

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    payload: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # A live template travels sealed under a key of its own, like a capture's image.
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A message that keeps failing is parked after a few attempts, so it cannot block the rest.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ReadinessProbeRow(Base):
    """One row that readiness checks write, so that a read-only or full store is noticed."""

    __tablename__ = "readiness_probe"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KioskDeviceRow(Base):
    """A kiosk: a pairing code's hash until an admin or supervisor pairs it, then a device
    bound to a carrier, port and lane. Only hashes of its codes and session tokens."""

    __tablename__ = "kiosk_devices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(3), nullable=True)
    port: Mapped[str | None] = mapped_column(String(5), nullable=True)
    lane: Mapped[str | None] = mapped_column(String(16), nullable=True)
    paired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    paired_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    session_issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The /24 or /64 a waiting kiosk asked from (waiting codes are capped per network); not
    # under the MAC: it grants nothing.
    pairing_network: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LaneAssignmentRow(Base):
    """The flight a lane is boarding now."""

    __tablename__ = "lane_assignments"
    port: Mapped[str] = mapped_column(String(5), primary_key=True)
    lane: Mapped[str] = mapped_column(String(16), primary_key=True)
    flight_id: Mapped[str] = mapped_column(ForeignKey("flights.id"))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    assigned_by: Mapped[str] = mapped_column(String(36))


class KioskOptOutRequestRow(Base):
    """A traveler asked a kiosk not to be photographed: lane, time and notice; no identity."""

    __tablename__ = "kiosk_opt_out_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("kiosk_devices.id"))
    port: Mapped[str] = mapped_column(String(5))
    lane: Mapped[str] = mapped_column(String(16))
    flight_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    notice_version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    handled_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


class KioskCaptureNoticeRow(Base):
    """Which notice (version, language) the kiosk showed before a capture."""

    __tablename__ = "kiosk_capture_notices"
    capture_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("kiosk_devices.id"))
    notice_version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
