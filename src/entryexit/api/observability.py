"""Request ids, structured logs and Prometheus metrics.

* Every request has an id: a sane inbound ``X-Request-ID`` (what a load balancer sets) or a
  new one. It is echoed in the response, carried by every log line written while the request
  runs, and named in the request's audit event.
* Logs are text for a terminal or JSON (one event per line) for a pipeline
  (``ENTRYEXIT_LOG_FORMAT``, ``ENTRYEXIT_LOG_LEVEL``); uvicorn's loggers follow the same
  settings. Log lines carry route templates, never paths (a path may hold a document number).
* ``/metrics`` (Prometheus text format) needs the ``metrics:read`` permission: a ``monitor``
  key, which can do nothing else. Not "loopback or a trusted proxy only": behind HAProxy every
  request comes from the proxy, so an address rule would open the metrics to the internet.
  Labels are route templates, statuses, decisions and stage names: no personal data.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entryexit.api.audit import matching_endpoint
from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.metrics_registry import REGISTRY as REGISTRY
from entryexit.bootstrap import Services

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# What an inbound id may look like to be kept: an opaque token, short, no spaces or controls
# (it goes into log lines and audit events). Anything else is replaced, not rejected.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$")
_request_id: ContextVar[str | None] = ContextVar("entryexit_request_id", default=None)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Gauges that read the database are computed per scrape from the app's own services (see
# ``_ServiceCollector``); everything else is counted into the process's REGISTRY.
REQUESTS = Counter(
    "entryexit_http_requests",
    "HTTP requests answered, by route template and status.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
LATENCY = Histogram(
    "entryexit_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ("method", "route"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
DECISIONS = Counter(
    "entryexit_capture_decisions",
    "Gate capture decisions, by outcome.",
    ("decision",),
    registry=REGISTRY,
)
STAGES = Histogram(
    "entryexit_capture_stage_duration_seconds",
    "Time spent in each stage of the face pipeline (decode, locate = detect, align and"
    " quality; embed).",
    ("stage",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
STAGED_GALLERY_SIZE = Histogram(
    "entryexit_gallery_staged_templates",
    "Templates in each gallery as it is staged.",
    buckets=(0, 10, 50, 100, 200, 400, 800, 1600, 3200),
    registry=REGISTRY,
)
GALLERY_QUARANTINED = Counter(
    "entryexit_gallery_quarantined_travelers",
    "Travelers left out of a gallery as it was staged because their sealed rows do not open"
    " (moved or altered in the database without the keys): a tamper alarm; their captures go"
    " to an officer.",
    registry=REGISTRY,
)
MANIFEST_CONFLICTS = Counter(
    "entryexit_manifest_conflicts",
    "Documents whose details a carrier's manifest tried to change although another carrier"
    " (or the agency) set them: not applied, waiting for the agency's review"
    " (GET /v1/manifest-conflicts).",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "entryexit_rate_limit_rejections",
    "Requests refused with 429 (a gate key or address over its rate, failed sign-ins), by"
    " route template.",
    ("route",),
    registry=REGISTRY,
)
CAPTURES_ROUTE = "/v1/flights/{flight_id}/captures"


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The inbound id if it is sane, else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


# HTTP's methods; anything else a client makes up is counted as "OTHER", so a label's values
# stay bounded (one made-up method a request once added 18 series, without a key).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "OTHER"


def route_template(scope: Scope) -> str:
    """The matched route's template; a bounded placeholder for anything else (label values
    must not grow with what clients send)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    template, _ = matching_endpoint(scope)
    return template or "unmatched"


class RequestObservability:
    """Outermost middleware: request id, one access log line, request metrics and, for
    captures, the decision (read from the answer the gate gets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers") or [])
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        capture_body: list[bytes] | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status, capture_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
                if status == 200 and route_template(scope) == CAPTURES_ROUTE:
                    capture_body = []
            elif message["type"] == "http.response.body" and capture_body is not None:
                capture_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = method_label(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            if status == 429:
                RATE_LIMITED.labels(route).inc()
            LATENCY.labels(method, route).observe(elapsed)
            if capture_body is not None:
                _count_decision(b"".join(capture_body))
            logger.info(
                "request",
                extra={
                    "http": {
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    }
                },
            )
            _request_id.reset(token)


def _count_decision(body: bytes) -> None:
    try:
        decision = json.loads(body).get("decision")
    except (ValueError, AttributeError):
        return
    if isinstance(decision, str) and decision.isidentifier():
        DECISIONS.labels(decision).inc()


class _ServiceCollector(Collector):
    """State read at scrape time: the outbox, the audit chain, the galleries in memory."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services
        with services.uow(read_only=True) as uow:
            pending, parked = uow.outbox.count_pending(), uow.outbox.count_parked()
        outbox = GaugeMetricFamily(
            "entryexit_outbox_messages", "Background work queued, by state.", labels=["state"]
        )
        outbox.add_metric(["pending"], pending)
        outbox.add_metric(["parked"], parked)
        yield outbox
        problem = services.audit.integrity_problem()
        yield GaugeMetricFamily(
            "entryexit_audit_chain_ok",
            "1 if the audit log's head verifies and audited actions are accepted, else 0.",
            value=0 if problem else 1,
        )
        head = services.audit.head()
        yield GaugeMetricFamily(
            "entryexit_audit_chain_length", "Events in the audit log.", value=head[0] if head else 0
        )
        checkpoint = services.checkpoints.last_written
        if checkpoint is not None:
            yield GaugeMetricFamily(
                "entryexit_audit_last_checkpoint_timestamp_seconds",
                "When this process last signed a checkpoint of the audit log's head (Unix time).",
                value=checkpoint.written_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "entryexit_audit_last_checkpoint_age_seconds",
                "Seconds since this process last signed a checkpoint (written only when the log"
                " moved, so an idle log's checkpoint grows old without harm).",
                value=max(0.0, (services.clock() - checkpoint.written_at).total_seconds()),
            )
            yield GaugeMetricFamily(
                "entryexit_audit_events_since_checkpoint",
                "Audit events appended after this process's last checkpoint (not yet vouched"
                " for outside the database).",
                value=max(0, (head[0] if head else 0) - checkpoint.sequence),
            )
        yield from _job_metrics(services)
        pool = getattr(getattr(services.uow, "engine", None), "pool", None)
        checked_out = getattr(pool, "checkedout", None)
        idle = getattr(pool, "checkedin", None)
        if callable(checked_out) and callable(idle):
            connections = GaugeMetricFamily(
                "entryexit_db_pool_connections",
                "Database connections of this process, in use or idle.",
                labels=["state"],
            )
            connections.add_metric(["in_use"], checked_out())
            connections.add_metric(["idle"], idle())
            yield connections
        galleries = dict(getattr(services.galleries, "_galleries", {}))
        yield GaugeMetricFamily(
            "entryexit_galleries_loaded", "Staged galleries held in memory.", value=len(galleries)
        )
        yield GaugeMetricFamily(
            "entryexit_gallery_templates_loaded",
            "Templates in the staged galleries held in memory.",
            value=sum(len(gallery) for gallery in galleries.values()),
        )


def _job_metrics(services: Services) -> Iterator[Metric]:
    """The fleet's background jobs as recorded in the database: every instance reports the
    same values (aggregate with ``max``)."""
    runs = services.jobs.last_runs()
    started = GaugeMetricFamily(
        "entryexit_job_last_run_timestamp_seconds",
        "When the job's last run (by any process) started (Unix time).",
        labels=["job"],
    )
    success = GaugeMetricFamily(
        "entryexit_job_last_success_timestamp_seconds",
        "When the job last finished without error (Unix time).",
        labels=["job"],
    )
    duration = GaugeMetricFamily(
        "entryexit_job_last_run_duration_seconds", "How long the last run took.", labels=["job"]
    )
    succeeded = GaugeMetricFamily(
        "entryexit_job_last_run_ok", "1 if the last run finished without error.", labels=["job"]
    )
    total = GaugeMetricFamily(
        "entryexit_job_runs", "Runs recorded since the job was first run.", labels=["job"]
    )
    counts = GaugeMetricFamily(
        "entryexit_job_last_run_items",
        "What the last run did, by kind (purge: records deleted; admissions: applied).",
        labels=["job", "kind"],
    )
    for run in runs:
        if run.started_at is not None:
            started.add_metric([run.job], run.started_at.timestamp())
        if run.success_at is not None:
            success.add_metric([run.job], run.success_at.timestamp())
        if run.duration_seconds is not None:
            duration.add_metric([run.job], run.duration_seconds)
        succeeded.add_metric([run.job], 1 if run.outcome == "ok" else 0)
        total.add_metric([run.job], run.runs)
        for kind, count in sorted(run.counts.items()):
            counts.add_metric([run.job, kind], count)
    yield from (started, success, duration, succeeded, total, counts)


def metrics_text(services: Services) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ServiceCollector(services))
    return generate_latest(REGISTRY) + generate_latest(scrape)


def observe_galleries(services: Services) -> None:
    """Staged gallery sizes as they are staged."""

    def staged(_uow: object, _flight: object, gallery: Any) -> None:
        STAGED_GALLERY_SIZE.observe(len(gallery))
        if gallery.quarantined:
            GALLERY_QUARANTINED.inc(len(gallery.quarantined))

    services.galleries.on_staged(staged)


T = TypeVar("T")
# The engine's stages, by the methods that carry them out.
_STAGE_METHODS = {"decode": "decode", "locate": "_locate", "embed": "_capture_templates"}


def time_engine_stages(engine: object) -> None:
    """Time the face engine's pipeline stages (once per engine object)."""
    if getattr(engine, "_entryexit_timed", False):
        return
    for stage, method in _STAGE_METHODS.items():
        original = getattr(engine, method, None)
        if callable(original):
            setattr(engine, method, _timed(stage, original))
    engine._entryexit_timed = True  # type: ignore[attr-defined]


def _timed(stage: str, function: Callable[..., T]) -> Callable[..., T]:
    histogram = STAGES.labels(stage)

    def timed(*args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    return timed


# --- logs -----------------------------------------------------------------------------------
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request it was written for (or none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, structured extras
    and the exception's type (never its message or traceback: they can quote values)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            event["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id" and not key.startswith("_"):
                event[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            event["exception"] = record.exc_info[0].__name__
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id") or record.request_id is None:
            record.request_id = "-"
        text = super().format(record)
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            text += " " + " ".join(f"{key}={value}" for key, value in http.items())
        return text


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(log_format: str, level: str, stream: TextIO | None = None) -> None:
    """Route every logger (the service's, uvicorn's, SQLAlchemy's) through one handler on
    stderr, in the chosen format and level. uvicorn's own access log is off: the service
    writes its own access line, with the route template instead of the path."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", response_class=PlainTextResponse, include_in_schema=True)
    async def metrics(request: Request, _caller: CallerDep, services: ServicesDep) -> Response:
        """Prometheus metrics (text format); needs a ``monitor`` (or admin) key, sent as
        ``X-API-Key`` or ``Authorization: Bearer``."""
        # A scrape every few seconds would flood the audit log with events that hold no
        # personal data; refused scrapes are still recorded.
        request.state.unaudited = True
        body = await run_in_threadpool(metrics_text, services)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    return router
