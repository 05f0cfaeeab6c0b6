"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.formparsers import MultiPartParser

from entryexit import __version__
from entryexit.api.audit import DOCS_ASSETS, AuditAccess
from entryexit.api.deps import RequestLimits
from entryexit.api.headers import BaselineHeaders
from entryexit.api.keyless import AnonymousFormGuard, KeylessRequestGuard
from entryexit.api.limits import BodySizeLimit
from entryexit.api.observability import (
    RequestObservability,
    metrics_router,
    observe_galleries,
    time_engine_stages,
)
from entryexit.api.openapi import document_responses
from entryexit.api.problems import install_problem_handlers
from entryexit.api.routes import audit as audit_routes
from entryexit.api.routes import (
    crossings,
    documents,
    fingerprints,
    flights,
    health,
    manifest_conflicts,
    privacy,
    verifications,
)
from entryexit.bootstrap import Services
from entryexit.domain.throttle import FailureLockout, TokenBuckets


def create_app(services: Services, jobs: bool = True) -> FastAPI:
    """The API. ``jobs``: record queued admissions (the outbox) in this process too; a
    fleet's service instances leave that to ``entryexit worker``."""
    # Uploaded photos are biometric data: keep every multipart part in memory (the body limit
    # bounds it) instead of letting Starlette spool parts over 1 MiB to a temporary file.
    MultiPartParser.spool_max_size = max(
        MultiPartParser.spool_max_size, services.settings.max_request_bytes
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The audit log's head leaves the database now, at intervals, and at shutdown (without
        # its checkpoint key the service does not start).
        services.checkpoints.start()
        # Admissions queued in the outbox (by this or another process, or before a crash).
        if jobs:
            services.crossings.start_worker()
        try:
            yield
        finally:
            if jobs:
                services.crossings.stop_worker()
            if services.manifest_workers is not None:
                services.manifest_workers.stop()
            services.checkpoints.stop()
            services.captures.close()

    # The API documentation's scripts and styles are served from the installed package, not a
    # CDN: /docs works on a machine without internet.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        lifespan=lifespan,
        title="EntryExit",
        version=__version__,
        description=(
            "Biometric entry/exit verification. Authenticate with an API key in the"
            " `X-API-Key` header. Errors are RFC 9457 problem details."
        ),
    )
    app.state.services = services
    settings = services.settings
    app.state.limits = RequestLimits(
        gate=TokenBuckets(settings.gate_requests_per_second, settings.gate_burst),
        keys=TokenBuckets(settings.key_requests_per_second, settings.key_burst),
        sign_in=FailureLockout(
            settings.sign_in_failures_before_block, 60.0, settings.sign_in_block_seconds
        ),
    )
    install_problem_handlers(app)
    for module in (
        health,
        flights,
        documents,
        fingerprints,
        privacy,
        verifications,
        audit_routes,
        crossings,
        manifest_conflicts,
    ):
        app.include_router(document_responses(module.router))
    # Outermost last. The access log wraps the body guard, so a request refused with 413 or
    # 408 still gets its access event.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        read_timeout=settings.body_read_timeout_seconds,
        budget=settings.max_buffered_body_bytes,
    )
    app.add_middleware(KeylessRequestGuard)
    app.add_middleware(AnonymousFormGuard)
    app.add_middleware(AuditAccess)
    # Outside the access log: the 503 it sends in place of an answer it could not record
    # carries the baseline headers too.
    app.add_middleware(BaselineHeaders)
    # Outermost: the request id is set before anything logs, and every answer is counted.
    app.add_middleware(RequestObservability)
    app.include_router(document_responses(metrics_router()))
    observe_galleries(services)
    time_engine_stages(services.engine)
    return app
