"""The composition root: the only place that builds and wires EntryExit's parts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2

from entryexit.adapters.crypto.keys import (
    EnvironmentKeyProvider,
    EphemeralKeyProvider,
    FileKeyProvider,
)
from entryexit.adapters.crypto.trust import load_trusted_cscas
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.store import SqlStore
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.identification import IdentificationRule
from entryexit.errors import ConfigurationError
from entryexit.services.audit import AuditTrail
from entryexit.services.captures import CaptureService
from entryexit.services.enrolment import EnrolmentService
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.keys import KeyService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, KeyProvider, Store
from entryexit.services.privacy import (
    FairnessReportService,
    OptOutService,
    PrivacyReportService,
    PurgeService,
)
from entryexit.services.verification import VerificationService


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_face_engine(settings: Settings) -> FaceEngine:
    """Verify the installed models and load the engine (fails fast with the fix named)."""
    # OpenCV 5 warns on every network load that its new graph engine ignores targets.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(settings.opencv_threads)
    return FaceEngine.from_model_dir(settings.resolved_model_dir, settings.engine_settings())


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
    store: Store
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


def build_services(
    settings: Settings,
    *,
    store: Store | None = None,
    engine: FaceEngine | None = None,
    keys: KeyProvider | None = None,
    clock: Clock = utc_now,
) -> Services:
    resolved_keys = keys if keys is not None else build_key_provider(settings)
    resolved_store: Store = store if store is not None else build_store(settings, resolved_keys)
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
    rule = IdentificationRule(settings.gallery_threshold, settings.ambiguity_margin)
    return Services(
        settings=settings,
        store=resolved_store,
        engine=resolved_engine,
        keys=KeyService(resolved_store, clock),
        flights=flights,
        enrolment=EnrolmentService(resolved_store, resolved_engine, clock, policies),
        galleries=galleries,
        captures=CaptureService(
            resolved_store, resolved_engine, flights, galleries, rule, clock, policies
        ),
        audit=audit,
        policies=policies,
        opt_outs=OptOutService(resolved_store, clock, flights, galleries, policies),
        purge=PurgeService(resolved_store, clock, audit, galleries),
        privacy=PrivacyReportService(resolved_store, clock, audit, policies),
        verifications=VerificationService(
            resolved_store,
            resolved_engine,
            flights,
            policies,
            clock,
            settings.match_threshold,
            load_trusted_cscas(settings.csca_dir),
        ),
        fairness=FairnessReportService(resolved_store, clock),
    )
