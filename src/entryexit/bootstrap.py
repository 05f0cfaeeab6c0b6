"""The composition root: the only place that builds and wires EntryExit's parts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2

from entryexit.adapters.crypto.keys import (
    EnvironmentKeyProvider,
    EphemeralKeyProvider,
    FileKeyProvider,
)
from entryexit.adapters.crypto.trust import load_trusted_cscas
from entryexit.adapters.search.faiss_index import build_index
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.store import SqlStore
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.errors import ConfigurationError
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureService
from entryexit.services.console import ConsoleService
from entryexit.services.console_accounts import ConsoleAccounts, SessionPolicy
from entryexit.services.crossings import CrossingService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.keys import KeyService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, FaceAnalyser, KeyProvider
from entryexit.services.privacy import (
    FairnessReportService,
    OptOutService,
    PrivacyReportService,
    PurgeService,
)
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.verification import VerificationService
from entryexit.services.watchlist import WatchlistService


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_face_engine(settings: Settings) -> FaceEngine:
    """Verify the installed models and load the engine (fails fast with the fix named)."""
    # OpenCV 5 warns on every network load that its new graph engine ignores targets.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(settings.opencv_threads)
    return FaceEngine.from_model_dir(settings.resolved_model_dir, settings.engine_settings())


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
    files = FileKeyProvider(settings.resolved_key_dir)
    if files.exists():
        return files
    if settings.dev_mode:
        return EphemeralKeyProvider()
    raise ConfigurationError(
        f"no key-encryption key in {settings.resolved_key_dir}: create one with"
        " `entryexit keys init` (or set ENTRYEXIT_KEK; ENTRYEXIT_DEV_MODE=true for throw-away"
        " development keys)"
    )


def build_store(settings: Settings, keys: KeyProvider | None = None) -> SqlStore:
    """Open (creating and migrating if needed) the configured database."""
    resolved_keys = keys if keys is not None else build_key_provider(settings)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_database_engine(settings.resolved_database_url)
    migrate(engine)
    return SqlStore(engine, resolved_keys)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: SqlStore
    engine: FaceEngine
    keys: KeyService
    flights: FlightService
    enrolment: EnrolmentService
    galleries: GalleryService
    captures: CaptureService
    audit: AuditTrail
    policies: PolicyService
    opt_outs: OptOutService
    purge: PurgeService
    privacy: PrivacyReportService
    verifications: VerificationService
    fairness: FairnessReportService
    accounts: ConsoleAccounts
    console: ConsoleService
    crossings: CrossingService
    watchlist: WatchlistService


def build_services(
    settings: Settings,
    *,
    store: SqlStore | None = None,
    engine: FaceEngine | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
) -> Services:
    resolved_keys = keys if keys is not None else build_key_provider(settings)
    resolved_store = store if store is not None else build_store(settings, resolved_keys)
    resolved_engine = engine if engine is not None else build_face_engine(settings)
    audit = AuditTrail(resolved_store, clock, resolved_keys)
    policies = PolicyService(resolved_store, clock, audit)
    policies.ensure_default()
    flights = FlightService(resolved_store, clock, resolved_engine.model)
    galleries = GalleryService(
        resolved_store,
        clock,
        resolved_engine.model,
        resolved_engine.dimension,
        policies=policies,
        audit=audit,
    )
    thresholds = operating_thresholds(settings, resolved_engine)
    thresholds.check(policies.in_force().matching)
    watchlist = WatchlistService(
        resolved_store,
        resolved_engine,
        clock,
        policies,
        thresholds,
        audit,
        threshold_override=settings.watchlist_threshold,
        build_index=build_index,
    )
    galleries.on_staged(watchlist.screen_gallery)
    crossings = CrossingService(
        resolved_store,
        resolved_store,
        resolved_engine,
        clock,
        galleries,
        policies,
        thresholds,
        audit,
    )
    opt_outs = OptOutService(
        resolved_store, clock, flights, galleries, policies, on_encounter=crossings.on_encounter
    )
    return Services(
        settings=settings,
        store=resolved_store,
        engine=resolved_engine,
        keys=KeyService(resolved_store, clock),
        flights=flights,
        enrolment=EnrolmentService(resolved_store, resolved_engine, clock, policies),
        galleries=galleries,
        captures=CaptureService(
            resolved_store,
            resolved_engine,
            flights,
            galleries,
            thresholds,
            clock,
            policies,
            watchlist=watchlist,
            on_encounter=crossings.on_encounter,
        ),
        audit=audit,
        policies=policies,
        opt_outs=opt_outs,
        purge=PurgeService(resolved_store, clock, audit, galleries),
        privacy=PrivacyReportService(resolved_store, clock, audit, policies),
        verifications=VerificationService(
            resolved_store,
            resolved_engine,
            flights,
            policies,
            clock,
            thresholds,
            load_trusted_cscas(settings.csca_dir),
            on_encounter=crossings.on_encounter,
        ),
        fairness=FairnessReportService(resolved_store, clock),
        accounts=ConsoleAccounts(
            resolved_store,
            clock,
            audit,
            SessionPolicy(
                idle_timeout=timedelta(minutes=settings.console_idle_minutes),
                failures_before_lock=settings.sign_in_failures_before_lock,
            ),
        ),
        console=ConsoleService(
            resolved_store,
            resolved_store,
            resolved_engine,
            clock,
            flights,
            galleries,
            policies,
            opt_outs,
            audit,
            on_encounter=crossings.on_encounter,
        ),
        crossings=crossings,
        watchlist=watchlist,
    )
