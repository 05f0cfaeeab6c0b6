"""The composition root: the only place that builds and wires EntryExit's parts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeAlias, overload

import cv2
from argon2 import PasswordHasher
from cryptography import x509
from typing_extensions import TypeVar

from entryexit.adapters.crypto.checkpoints import CheckpointFile, Ed25519CheckpointSigner
from entryexit.adapters.crypto.keys import (
    EnvironmentKeyProvider,
    EphemeralKeyProvider,
    FileKeyProvider,
)
from entryexit.adapters.crypto.trust import load_trusted_cscas
from entryexit.adapters.manifest_workers import KeySource, ManifestWorkers
from entryexit.adapters.search.faiss_index import build_index
from entryexit.adapters.storage.database import (
    create_database_engine,
    migrate,
    owner_only_directory,
)
from entryexit.adapters.storage.jobs import SqlJobLeases
from entryexit.adapters.storage.notify import PostgresChangeListener, conninfo
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.biometrics import EngineSettings, FaceEngine, QualityThresholds
from entryexit.biometrics.decode import DecodeLimits
from entryexit.biometrics.detect import DetectorSettings
from entryexit.biometrics.fingerprints import (
    FingerprintEngine,
    fingerprint_threshold,
    open_engine,
)
from entryexit.config import Settings
from entryexit.errors import ConfigurationError, StoredDataUntrustedError
from entryexit.services.audit import AuditCheckpoints, AuditTrail
from entryexit.services.backups import RestoredDatabase, check_keys_open
from entryexit.services.captures import CaptureService
from entryexit.services.console import ConsoleService
from entryexit.services.console_accounts import ConsoleAccounts, SessionPolicy
from entryexit.services.crossings import CrossingService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.fingerprints import FingerprintService, FingerprintSlots
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.jobs import ADMISSIONS_JOB, FleetJobs, LocalJobLeases
from entryexit.services.keys import KeyService
from entryexit.services.kiosks import FrameChecker, KioskService, KioskSettings
from entryexit.services.policies import PolicyService
from entryexit.services.ports import ChangeFeed, Clock, FaceAnalyser, JobLeases, KeyProvider
from entryexit.services.privacy import (
    ErasureService,
    FairnessReportService,
    OptOutService,
    PrivacyReportService,
    PurgeService,
)
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.unit_of_work import BoardQueries, ReportQueries, UnitOfWorkFactory
from entryexit.services.verification import VerificationService
from entryexit.services.watchlist import WatchlistService

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_face_engine(settings: Settings) -> FaceEngine:
    """Verify the installed models and load the engine (fails fast with the fix named)."""
    # OpenCV 5 warns on every network load that its new graph engine ignores targets.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(settings.opencv_threads)
    return FaceEngine.from_model_dir(settings.resolved_model_dir, engine_settings(settings))


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        detector=DetectorSettings(max_side=settings.detector_max_side),
        quality=QualityThresholds(**settings.quality.model_dump()),
        decode=DecodeLimits(
            max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        ),
        workers=settings.engine_workers,
        flip_augmentation=settings.flip_augmentation,
        recognizer=settings.recognizer,
        coarse_detection_side=settings.coarse_detection_side,
        mirror_detection_min_yaw=settings.mirror_detection_min_yaw,
        embed_batch_wait_ms=settings.embed_batch_wait_ms,
        embed_batch_max_faces=settings.embed_batch_max_faces,
    )


def operating_thresholds(settings: Settings, engine: FaceAnalyser) -> OperatingThresholds:
    """The recognizer's calibration for its recipe, with the deployment's explicit overrides."""
    return OperatingThresholds(
        calibration=engine.recognizer.calibrations.get(engine.recipe),
        ambiguity_margin=settings.ambiguity_margin,
        gallery_override=settings.gallery_threshold,
        verification_override=settings.match_threshold,
    )


def build_key_provider(settings: Settings) -> KeyProvider:
    """Keys from the environment (containers), else from the key directory; without either,
    only an explicit development mode runs, on throw-away keys."""
    if os.environ.get("ENTRYEXIT_KEK"):
        return EnvironmentKeyProvider(dict(os.environ))
    check_key_dir(settings)
    files = FileKeyProvider(settings.resolved_key_dir)
    if files.exists():
        return files
    if settings.dev_mode:
        return EphemeralKeyProvider()
    old_default = settings.data_dir / "keys"
    moved = (
        f" (keys found in {old_default}, the old default inside the data directory: move them"
        f" with `mv {old_default} {settings.resolved_key_dir}`)"
        if (old_default / "current-kek").is_file()
        else ""
    )
    raise ConfigurationError(
        f"no key-encryption key in {settings.resolved_key_dir}{moved}: create one with"
        " `entryexit keys init` (or set ENTRYEXIT_KEK; ENTRYEXIT_DEV_MODE=true for throw-away"
        " development keys)"
    )


def check_key_dir(settings: Settings) -> None:
    """Refuse a key directory inside the data directory (allowed, with a warning, in
    development mode)."""
    if os.environ.get("ENTRYEXIT_KEK"):
        return  # keys from the environment: no key directory is used
    problem = settings.key_dir_problem()
    if problem is None:
        return
    if not settings.dev_mode:
        raise ConfigurationError(problem)
    logger.warning("development mode: %s", problem.split(":")[0])


def build_database(settings: Settings, keys: KeyProvider | None = None) -> SqlUnitOfWorkFactory:
    """Open (creating and migrating if needed) the configured database."""
    resolved_keys = keys if keys is not None else build_key_provider(settings)
    if settings.database_url is None:
        owner_only_directory(settings.data_dir)
    engine = create_database_engine(settings.resolved_database_url)
    migrate(engine)
    database = SqlUnitOfWorkFactory(engine, resolved_keys)
    database.mac_legacy_audit_events()
    database.mac_legacy_rows()
    return database


def build_report_queries(
    settings: Settings, primary: SqlUnitOfWorkFactory, keys: KeyProvider
) -> ReportQueries:
    """The read-only reports: on ``ENTRYEXIT_READ_DATABASE_URL`` (a streaming replica) when
    set, else on the primary. The replica is never migrated or written: the reports open
    read-only transactions, and PostgreSQL refuses writes on a standby besides."""
    if not settings.read_database_url:
        return primary.reports
    replica = SqlUnitOfWorkFactory(create_database_engine(settings.read_database_url), keys)
    logger.info("reports read from the replica (ENTRYEXIT_READ_DATABASE_URL)")
    return replica.reports


def build_checkpoints(
    settings: Settings, audit: AuditTrail, uow: UnitOfWorkFactory, keys: KeyProvider, clock: Clock
) -> AuditCheckpoints:
    """The audit checkpoints: signed with the checkpoint key (loaded when first needed),
    kept in a file that must not be inside the data directory."""
    path = settings.resolved_audit_checkpoint_file
    if path.resolve().is_relative_to(settings.data_dir.resolve()):
        raise ConfigurationError(
            f"the audit checkpoint file {path} is inside the data directory"
            f" {settings.data_dir}: a copy of the data would carry the checkpoints that show"
            " it is old; set ENTRYEXIT_AUDIT_CHECKPOINT_FILE elsewhere"
        )
    return AuditCheckpoints(
        audit,
        uow,
        clock,
        Ed25519CheckpointSigner(keys.checkpoint_key),
        CheckpointFile(path),
        settings.audit_checkpoint_interval_seconds,
    )


@dataclass(frozen=True, slots=True)
class Records:
    """The services that need no face model: what CLI commands on the records use."""

    settings: Settings
    clock: Clock
    uow: UnitOfWorkFactory
    reports: ReportQueries
    boards: BoardQueries
    key_provider: KeyProvider
    audit: AuditTrail
    checkpoints: AuditCheckpoints
    policies: PolicyService
    keys: KeyService
    accounts: ConsoleAccounts
    privacy: PrivacyReportService
    fairness: FairnessReportService
    # Manifests as stored (without a model, "has a photo" is not asked).
    flights: FlightService
    # The processes that read and stage uploaded manifests (None: in the calling process).
    manifest_workers: ManifestWorkers | None = None


def build_records(
    settings: Settings,
    *,
    database: SqlUnitOfWorkFactory | None = None,
    uow: UnitOfWorkFactory | None = None,
    reports: ReportQueries | None = None,
    boards: BoardQueries | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
    model: str = "",
    session_policy: SessionPolicy | None = None,
    password_hasher: PasswordHasher | None = None,
) -> Records:
    """Wire the services that need no face model. Each port defaults to the real adapter;
    tests pass fakes (an in-memory unit of work) for any of them."""
    resolved_keys = keys if keys is not None else build_key_provider(settings)
    if uow is None or reports is None or boards is None:
        sql = database if database is not None else build_database(settings, resolved_keys)
        factory: UnitOfWorkFactory = uow or sql
        reports = reports or build_report_queries(settings, sql, resolved_keys)
        boards = boards or sql.boards
    else:
        factory = uow
    uow = factory
    manifest_workers = build_manifest_workers(settings, uow, resolved_keys)
    audit = AuditTrail(uow, clock, resolved_keys)
    policies = PolicyService(uow, clock, audit)
    policies.ensure_default()
    audit.name_policies_by(policies.version_in_force)
    return Records(
        settings=settings,
        clock=clock,
        uow=uow,
        reports=reports,
        boards=boards,
        key_provider=resolved_keys,
        audit=audit,
        checkpoints=build_checkpoints(settings, audit, uow, resolved_keys, clock),
        policies=policies,
        keys=KeyService(uow, clock, audit),
        accounts=ConsoleAccounts(
            uow,
            clock,
            audit,
            session_policy
            or SessionPolicy(
                idle_timeout=timedelta(minutes=settings.console_idle_minutes),
                failures_before_lock=settings.sign_in_failures_before_lock,
            ),
            hasher=password_hasher,
        ),
        privacy=PrivacyReportService(reports, clock, audit, policies),
        fairness=FairnessReportService(reports, clock),
        flights=FlightService(
            uow,
            clock,
            model,
            audit,
            home_state=settings.home_state,
            stager=manifest_workers,
            policies=policies,
        ),
        manifest_workers=manifest_workers,
    )


def build_manifest_workers(
    settings: Settings, uow: UnitOfWorkFactory, keys: KeyProvider
) -> ManifestWorkers | None:
    """The manifest worker pool (its processes start with the first upload), when the store
    is a database another process can open; else manifests are staged in the caller."""
    if settings.manifest_workers == 0 or not isinstance(uow, SqlUnitOfWorkFactory):
        return None
    url = uow.engine.url
    if url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or "mode=memory" in str(url)
    ):
        return None
    return ManifestWorkers(
        url.render_as_string(hide_password=False),
        KeySource.of(keys),
        settings.manifest_workers,
        timeout=settings.manifest_timeout_seconds,
        queue_wait=settings.manifest_queue_seconds,
    )


def check_restored_database(settings: Settings) -> RestoredDatabase:
    """Open a restored database with the configured keys and check they are its keys,
    before anything else (a default policy, an audit event) is written to it."""
    keys = build_key_provider(settings)
    database = build_database(settings, keys)
    try:
        return check_keys_open(database, keys, AuditTrail(database, utc_now, keys))
    finally:
        database.engine.dispose()


def build_purge(records: Records, clock: Clock = utc_now) -> PurgeService:
    """The purge as a command runs it: no face model, no galleries in this process."""
    return PurgeService(
        records.uow,
        clock,
        records.audit,
        None,
        records.policies,
        home_state=records.settings.home_state,
    )


def build_erasure(records: Records, clock: Clock = utc_now) -> ErasureService:
    """Erasure as a command runs it: no face model; staged galleries are rebuilt by the
    servers (their version is bumped)."""
    return ErasureService(records.uow, clock, records.audit, None)


# Which storage the services were wired over: the SQL one unless a caller passed another (the
# unit tests' in-memory fake). Only typing: callers that hold the SQL factory reach its engine
# without a cast. The default (PEP 696, from typing_extensions on Python 3.11) keeps a bare
# ``Services`` meaning "any storage".
StorageT = TypeVar("StorageT", bound=UnitOfWorkFactory, default=UnitOfWorkFactory, covariant=True)
PassedStorageT = TypeVar("PassedStorageT", bound=UnitOfWorkFactory)


@dataclass(frozen=True, slots=True)
class Services(Generic[StorageT]):
    settings: Settings
    # The one clock: edges (API, console) read "now" and "today" from it, as services do.
    clock: Clock
    uow: StorageT
    reports: ReportQueries
    boards: BoardQueries
    engine: FaceAnalyser
    keys: KeyService
    flights: FlightService
    enrolment: EnrolmentService
    galleries: GalleryService
    captures: CaptureService
    audit: AuditTrail
    checkpoints: AuditCheckpoints
    policies: PolicyService
    opt_outs: OptOutService
    purge: PurgeService
    erasure: ErasureService
    privacy: PrivacyReportService
    verifications: VerificationService
    fairness: FairnessReportService
    accounts: ConsoleAccounts
    console: ConsoleService
    crossings: CrossingService
    watchlist: WatchlistService
    fingerprints: FingerprintService
    kiosks: KioskService
    jobs: FleetJobs
    # News of shared state changed by other processes (PostgreSQL NOTIFY); None on SQLite.
    changes: ChangeFeed | None
    manifest_workers: ManifestWorkers | None = None


# What build_services returns when it opens the database itself.
SqlServices: TypeAlias = Services[SqlUnitOfWorkFactory]


def start_change_listener(uow: UnitOfWorkFactory) -> ChangeFeed | None:
    """On PostgreSQL, a listener thread for this process (see ``adapters/storage/notify.py``);
    caches read their generations themselves while it is not connected."""
    engine = getattr(uow, "engine", None)
    if not isinstance(uow, SqlUnitOfWorkFactory) or engine is None:
        return None
    if engine.dialect.name != "postgresql":
        return None
    listener = PostgresChangeListener(conninfo(engine))
    if not listener.start():
        logger.warning("change listener not connected yet; caches read their generations")
    return listener


def build_job_leases(settings: Settings, uow: UnitOfWorkFactory) -> JobLeases:
    """Leases in the database the fleet shares; within the process for an in-memory store."""
    engine = getattr(uow, "engine", None)
    if isinstance(uow, SqlUnitOfWorkFactory) and engine is not None:
        return SqlJobLeases(engine, settings.job_lease_seconds)
    return LocalJobLeases()


@overload
def build_services(
    settings: Settings,
    *,
    database: SqlUnitOfWorkFactory | None = None,
    uow: None = None,
    reports: ReportQueries | None = None,
    boards: BoardQueries | None = None,
    engine: FaceAnalyser | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
    session_policy: SessionPolicy | None = None,
    password_hasher: PasswordHasher | None = None,
    trusted_cscas: list[x509.Certificate] | None = None,
    fingerprint_engine: Callable[[], FingerprintEngine] | None = None,
) -> SqlServices: ...


@overload
def build_services(
    settings: Settings,
    *,
    database: SqlUnitOfWorkFactory | None = None,
    uow: PassedStorageT,
    reports: ReportQueries | None = None,
    boards: BoardQueries | None = None,
    engine: FaceAnalyser | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
    session_policy: SessionPolicy | None = None,
    password_hasher: PasswordHasher | None = None,
    trusted_cscas: list[x509.Certificate] | None = None,
    fingerprint_engine: Callable[[], FingerprintEngine] | None = None,
) -> Services[PassedStorageT]: ...


def build_services(
    settings: Settings,
    *,
    database: SqlUnitOfWorkFactory | None = None,
    uow: UnitOfWorkFactory | None = None,
    reports: ReportQueries | None = None,
    boards: BoardQueries | None = None,
    engine: FaceAnalyser | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
    session_policy: SessionPolicy | None = None,
    password_hasher: PasswordHasher | None = None,
    trusted_cscas: list[x509.Certificate] | None = None,
    fingerprint_engine: Callable[[], FingerprintEngine] | None = None,
) -> Services:
    """Wire every service. Each port defaults to the real adapter; tests pass fakes (an
    in-memory unit of work, a fake face engine) for any of them."""
    resolved_engine = engine if engine is not None else build_face_engine(settings)
    records = build_records(
        settings,
        database=database,
        uow=uow,
        reports=reports,
        boards=boards,
        keys=keys,
        clock=clock,
        model=resolved_engine.model,
        session_policy=session_policy,
        password_hasher=password_hasher,
    )
    uow_factory, audit, policies = records.uow, records.audit, records.policies
    changes = start_change_listener(uow_factory) if settings.listen_for_changes else None
    if changes is not None:
        policies.follow(changes)
    flights = records.flights
    galleries = GalleryService(
        uow_factory, clock, resolved_engine.model, resolved_engine.dimension, policies, audit
    )
    thresholds = operating_thresholds(settings, resolved_engine)
    try:
        in_force = policies.in_force()
    except StoredDataUntrustedError:
        if database is None and uow is None:  # opened here: close it before refusing
            dispose = getattr(uow_factory, "engine", None)
            if dispose is not None:
                dispose.dispose()
        raise
    thresholds.check(in_force.matching)
    watchlist = WatchlistService(
        uow_factory,
        resolved_engine,
        clock,
        policies,
        thresholds,
        audit,
        threshold_override=settings.watchlist_threshold,
        build_index=build_index,
        changes=changes,
    )
    galleries.on_staged(watchlist.screen_gallery)
    jobs = FleetJobs(build_job_leases(settings, uow_factory), clock)
    crossings = CrossingService(
        uow_factory,
        records.reports,
        resolved_engine,
        clock,
        galleries,
        policies,
        thresholds,
        audit,
        leadership=jobs.leadership(ADMISSIONS_JOB),
    )
    opt_outs = OptOutService(
        uow_factory, clock, galleries, policies, audit, on_encounter=crossings.enqueue
    )
    captures = CaptureService(
        uow_factory,
        resolved_engine,
        galleries,
        thresholds,
        clock,
        policies,
        audit,
        watchlist=watchlist,
        on_encounter=crossings.enqueue,
    )
    fingerprints = FingerprintService(
        uow_factory,
        fingerprint_engine or (lambda: open_engine(settings.resolved_model_dir)),
        clock,
        policies,
        audit,
        fingerprint_threshold,
        on_encounter=crossings.enqueue,
        max_watchlist_print_entries=settings.watchlist_print_entries_max,
        slots=FingerprintSlots(settings.fingerprint_slots, settings.fingerprint_slot_wait_seconds),
        face_calibration=lambda: (
            thresholds.calibration.verification if thresholds.calibration else None
        ),
        home_state=settings.home_state,
    )
    galleries.on_staged(fingerprints.prepare_when_staged)
    kiosks = KioskService(
        uow_factory,
        clock,
        audit,
        policies,
        flights,
        captures,
        resolved_engine if isinstance(resolved_engine, FrameChecker) else None,
        KioskSettings(
            session_idle=timedelta(hours=settings.kiosk_session_idle_hours),
            session_lifetime=timedelta(days=settings.kiosk_session_max_days),
        ),
    )
    return Services(
        settings=settings,
        clock=clock,
        uow=uow_factory,
        reports=records.reports,
        boards=records.boards,
        engine=resolved_engine,
        keys=records.keys,
        flights=flights,
        enrolment=EnrolmentService(uow_factory, resolved_engine, clock, policies, audit),
        galleries=galleries,
        captures=captures,
        audit=audit,
        checkpoints=records.checkpoints,
        policies=policies,
        opt_outs=opt_outs,
        purge=PurgeService(
            uow_factory, clock, audit, galleries, policies, home_state=settings.home_state
        ),
        erasure=ErasureService(uow_factory, clock, audit, galleries),
        privacy=records.privacy,
        verifications=VerificationService(
            uow_factory,
            resolved_engine,
            flights,
            policies,
            clock,
            thresholds,
            audit,
            trusted_cscas if trusted_cscas is not None else load_trusted_cscas(settings.csca_dir),
            on_encounter=crossings.enqueue,
        ),
        fairness=records.fairness,
        accounts=records.accounts,
        console=ConsoleService(
            uow_factory,
            records.boards,
            resolved_engine,
            clock,
            galleries,
            policies,
            opt_outs,
            audit,
            on_encounter=crossings.enqueue,
            home_state=settings.home_state,
        ),
        crossings=crossings,
        watchlist=watchlist,
        fingerprints=fingerprints,
        kiosks=kiosks,
        jobs=jobs,
        changes=changes,
        manifest_workers=records.manifest_workers,
    )
