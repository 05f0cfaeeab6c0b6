"""Typed settings, read once from the environment (prefix ``ENTRYEXIT_``).

Nothing here has a default secret: API keys are created by ``entryexit keys create`` or on the
first start of the service, and stored hashed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_config_dir, user_data_dir
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from entryexit.domain.throttle import Network, parse_networks
from entryexit.errors import InvalidInputError

# Settings import no model code (reading them must stay cheap: ``entryexit --help``), so the
# engine's defaults are repeated here; a unit test holds them equal to the engine's own.
DEFAULT_MAX_IMAGE_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_DETECTOR_MAX_SIDE = 640


class QualitySettings(BaseModel):
    min_inter_eye_pixels: float = 16.0
    max_yaw_degrees: float = 45.0
    max_roll_degrees: float = 30.0
    min_sharpness: float = 15.0
    min_brightness: float = 35.0
    max_brightness: float = 225.0
    min_detector_score: float = 0.6


def _default_data_dir() -> Path:
    return Path(user_data_dir("entryexit", appauthor=False))


def default_key_dir() -> Path:
    """Outside the data directory by default: a copy of the data directory (a backup, a
    stolen disk image) must not carry the keys that decrypt it."""
    return Path(user_config_dir("entryexit", appauthor=False)) / "keys"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENTRYEXIT_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    model_dir: Path | None = None
    key_dir: Path | None = None
    # Runs without a key-encryption key, on random per-process keys. Never in production.
    dev_mode: bool = False
    database_url: str | None = None
    # Read-only reports (overstays, the privacy and fairness reports) read here when set: a
    # streaming replica of ``database_url``. Its answers lag the primary by the replica's
    # replay lag (docs/fleet.md); nothing is ever written through it.
    read_database_url: str | None = None
    # PostgreSQL: follow other instances' changes by LISTEN/NOTIFY (no read per use). Turn off
    # behind a transaction-pooling PgBouncer, which does not carry LISTEN: caches then read.
    listen_for_changes: bool = True

    # The recognizer: "sface-2021dec" (built in) or an installed plug-in's key.
    recognizer: str = "sface-2021dec"
    # Thresholds come from the policy's target error rates and the recognizer's calibration;
    # setting these overrides both (for a model without a calibration, or a site study).
    match_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    gallery_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    ambiguity_margin: float = Field(default=0.03, ge=0.0, le=1.0)
    # Watchlist alerts: set, one threshold for any list size; unset, the recognizer's
    # list-size bands (services/thresholds.py), or the policy's 1:N threshold without bands.
    watchlist_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    # Every officer check with a flight compares the live prints with every listed print
    # entry (about 1 ms of CPU a finger each): the list's size is its cost.
    watchlist_print_entries_max: int = Field(default=500, ge=0, le=100_000)
    # Prints decoded, extracted or compared at once, over all requests (a 255-minutia print
    # costs seconds of CPU and hundreds of MiB: probe F2); a request waits at most
    # fingerprint_slot_wait_seconds for a free slot, then gets 503 with Retry-After.
    fingerprint_slots: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    fingerprint_slot_wait_seconds: float = Field(default=10.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # The whole request body must arrive within this long after the headers (slow clients
    # hold a worker otherwise); uvicorn itself has no header or body read timeout.
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)
    # ...and a request's headers within this long of its first byte (or of the connection's
    # opening); one address (an IPv6 /64) holds at most this many connections, the process at
    # most that many (fewer if it cannot open that many files). Trusted proxies are not
    # counted per address. cli/connections.py says why.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    connections_per_address: int = Field(default=256, ge=1)
    max_connections: int = Field(default=8192, ge=16)
    # One network (an IPv4 /24, an IPv6 /48) holds at most this many connections; with the
    # table full, a request waiting this long for its client (body bytes, or the reading of
    # its answer) is evictable like an idle connection; a connection whose answer is not
    # read for write_timeout_seconds is closed. cli/connections.py says why (probe G1).
    connections_per_network: int = Field(default=2048, ge=1)
    connection_stall_seconds: float = Field(default=5.0, gt=0)
    write_timeout_seconds: float = Field(default=30.0, gt=0)
    # Request bodies being read, all requests together, at most this many bytes: a request
    # past it is answered 503 with Retry-After (anonymous or not). api/limits.py says why.
    max_buffered_body_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    purge_interval_seconds: float = Field(default=300.0, gt=0)
    # SQLite's leader lease for the background jobs (purge, admissions): a holder that dies
    # is replaced this long after its last renewal. PostgreSQL needs none (advisory locks end
    # with the holder's session).
    job_lease_seconds: float = Field(default=30.0, ge=1)
    # Signed checkpoints of the audit log's head leave the database: appended to this file
    # (never inside the data directory; default beside the key directory) and to the log.
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_interval_seconds: float = Field(default=300.0, gt=0)
    # The state this deployment serves: PAXLST travelers of its nationality are citizens.
    home_state: str = Field(default="UTO", pattern=r"^[A-Z]{3}$")
    # Trusted country signing CA certificates for e-passport chips (PEM or DER files).
    csca_dir: Path | None = None
    gate_requests_per_second: float = Field(default=20.0, gt=0)
    gate_burst: float = Field(default=40.0, ge=1)
    # Every other role's key (people, back-office tools): generous, but not unlimited; an
    # expensive endpoint (a print search, the audit check) spends several tokens. Above what
    # one service does (~40 photo enrolments a second), so an agency's bulk enrolment is
    # never throttled; the audit check (10 tokens) is held to 10 a second.
    key_requests_per_second: float = Field(default=100.0, gt=0)
    key_burst: float = Field(default=200.0, ge=1)
    sign_in_failures_before_block: int = Field(default=20, ge=1)
    sign_in_block_seconds: float = Field(default=60.0, gt=0)
    # Proxies (CIDRs, comma-separated) whose X-Forwarded-For is believed. Empty: the header is
    # ignored and the TCP peer is the client (a client could otherwise claim any address).
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    # The lanes' networks (CIDRs, comma-separated): kiosks ask for pairing codes, and use a
    # ticket or device session, only from these (403 elsewhere). Empty: from anywhere
    # (waiting codes are still capped per /24 or /64).
    kiosk_networks: Annotated[tuple[Network, ...], NoDecode] = ()
    # A kiosk's device session ends when unused this many hours, and this many days after it
    # was issued (the kiosk then shows a pairing code again): a copied cookie does not last.
    kiosk_session_idle_hours: float = Field(default=12.0, gt=0)
    kiosk_session_max_days: float = Field(default=7.0, gt=0)
    # Logs: "text" for a terminal, "json" (one event per line) for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    quality: QualitySettings = Field(default_factory=QualitySettings)
    # The console: sessions end after this long without a request; accounts lock for 15
    # minutes after this many wrong passwords in a row.
    console_idle_minutes: float = Field(default=15.0, gt=0)
    sign_in_failures_before_lock: int = Field(default=5, ge=1)
    # Session cookies carry the Secure flag; turn off only for plain-HTTP development.
    console_secure_cookies: bool = True

    max_image_bytes: int = Field(default=DEFAULT_MAX_IMAGE_BYTES, gt=0)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, gt=0)
    detector_max_side: int = Field(default=DEFAULT_DETECTOR_MAX_SIDE, ge=64)
    engine_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Manifests are read, validated and sealed in this many worker processes (0: in the
    # serving process, sharing its interpreter lock with the gates); an upload waits at most
    # manifest_queue_seconds for a free one (then 503) and is stopped after
    # manifest_timeout_seconds (503, nothing changed).
    manifest_workers: int = Field(default=1, ge=0, le=4)
    manifest_timeout_seconds: float = Field(default=300.0, gt=0)
    manifest_queue_seconds: float = Field(default=5.0, ge=0)
    # OpenCV runs one parallel loop at a time per process (a second caller's loop runs in its
    # own thread, serially): so a lone capture gets every core, and concurrent captures one
    # each, without a switch (benchmarks/RESULTS.md, issue 17).
    opencv_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0)
    flip_augmentation: bool = True
    # The capture recipe's cheaper detection (biometrics.engine.EngineSettings; measured in
    # benchmarks/RESULTS.md, "Issue 17, session 6"): a coarse copy first (0: off; 320 saves
    # ~18% of a 640x480 capture's CPU, FNIR on gate frames within noise; photos of at most
    # 320 pixels, such as LFW's, are never upscaled, so nothing changes for them), and the
    # mirror detection only for asymmetric or uncertain faces (0: always; kept off: it cost
    # mated scores).
    coarse_detection_side: int = Field(default=320, ge=0)
    mirror_detection_min_yaw: float = Field(default=0.0, ge=0.0)
    # Micro-batching of concurrent captures' embeddings (biometrics.batching; measured in
    # benchmarks/RESULTS.md, "Issue 17, session 8"): a capture reaching its embedding step
    # while another is still locating waits at most this many ms to share one forward pass
    # (0: off; a lone capture never waits), batches of at most this many crops.
    embed_batch_wait_ms: float = Field(default=0.0, ge=0.0, le=50.0)
    embed_batch_max_faces: int = Field(default=8, ge=2, le=64)

    @field_validator("trusted_proxies", "kiosk_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_networks(value)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _budget_holds_a_request(self) -> Settings:
        # Else every body past the budget would be told to retry shortly, for ever (review L1).
        if self.max_buffered_body_bytes < self.max_request_bytes:
            raise ValueError(
                "ENTRYEXIT_MAX_BUFFERED_BODY_BYTES must be at least ENTRYEXIT_MAX_REQUEST_BYTES"
                f" ({self.max_request_bytes}): a request that size could never be read"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{self.data_dir / 'entryexit.db'}"

    @property
    def resolved_key_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else default_key_dir()

    def key_dir_problem(self) -> str | None:
        """Why the key directory must not be used where it is, or None: keys inside the data
        directory travel with every copy of it (a backup, a stolen disk image), and the
        encryption of the data then protects nothing."""
        keys = self.resolved_key_dir.expanduser().resolve()
        data = self.data_dir.expanduser().resolve()
        if keys == data or data in keys.parents:
            return (
                f"the key directory {keys} is inside the data directory {data}: a copy of the"
                " data directory would carry the keys that decrypt it. Set ENTRYEXIT_KEY_DIR to"
                f" a directory outside it (default {default_key_dir()}); ENTRYEXIT_DEV_MODE=true"
                " allows it for development only"
            )
        return None

    @property
    def resolved_audit_checkpoint_file(self) -> Path:
        """A copy of the data directory (a backup, a thief's) must not carry the checkpoints
        that show it is old: beside the key directory when that is outside the data
        directory, else beside the data directory itself."""
        if self.audit_checkpoint_file is not None:
            return self.audit_checkpoint_file
        key_dir = self.resolved_key_dir
        if not key_dir.resolve().is_relative_to(self.data_dir.resolve()):
            return key_dir.parent / "audit-checkpoints.jsonl"
        return self.data_dir.parent / f"{self.data_dir.name}-audit-checkpoints.jsonl"

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"
