"""``entryexit worker``: the background jobs without HTTP (the fleet's worker role), and the
graceful stop that ``serve`` and ``worker`` share.

In a fleet the service instances run with ``--no-jobs`` and one (or more) workers record
admissions from the outbox and run the retention purge. Several workers run each job once
across the fleet (``services/jobs.py``): one leader drains the outbox at a time, and the purge
runs once per interval wherever it falls due; a dead holder's turn is taken over (PostgreSQL:
at once, its advisory lock ends with its session; SQLite: when its lease expires).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings

if TYPE_CHECKING:
    from entryexit.bootstrap import Services
    from entryexit.services.jobs import FleetJobs
    from entryexit.services.privacy import PurgeService

logger = logging.getLogger(__name__)
# How long a stopping process keeps recording queued admissions before it exits (what is
# left stays queued for the next worker: the outbox never loses it).
OUTBOX_DRAIN_SECONDS = 30.0


class PurgeScheduler:
    """Runs the retention purge once per ``interval`` across the fleet: every process with
    jobs looks several times per interval, and the one that finds it due under the job's
    lease runs it (``FleetJobs.run_if_due``), so a dead worker's turn is taken within about
    a quarter of an interval after the purge falls due."""

    CHECKS_PER_INTERVAL = 4

    def __init__(self, jobs: FleetJobs, purge: PurgeService, interval: float) -> None:
        self._jobs = jobs
        self._purge = purge
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="purge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def run_once(self) -> dict[str, int] | None:
        """The purge's counts if this process ran it, ``None`` if it was not due here."""
        from entryexit.services.jobs import PURGE_JOB

        return self._jobs.run_if_due(PURGE_JOB, timedelta(seconds=self._interval), self._purge.run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                counts = self.run_once()
                if counts is not None:
                    logger.info("purge: %s", counts)
            except Exception as exc:  # the next run retries; counts carry no personal data
                logger.error("purge failed: %s", type(exc).__name__)
            self._stop.wait(self._interval / self.CHECKS_PER_INTERVAL)


def drain_outbox(services: Services, timeout: float = OUTBOX_DRAIN_SECONDS) -> bool:
    """Record what is queued before exiting; ``False`` if some is left (it stays queued)."""
    try:
        services.crossings.wait_idle(timeout)
    except Exception as exc:  # the work stays in the outbox for the next worker
        logger.warning("stopping with admission work still queued (%s)", type(exc).__name__)
        return False
    return True


def worker() -> int:
    """Run the background jobs without HTTP: record admissions queued in the outbox and run
    the retention purge, until SIGTERM or SIGINT; then finish the queue and exit 0."""
    from entryexit.bootstrap import build_services

    settings = load_settings()
    services = build_services(settings)
    stop = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, request_stop)
    scheduler = PurgeScheduler(services.jobs, services.purge, settings.purge_interval_seconds)
    services.crossings.start_worker()
    scheduler.start()
    typer.echo("EntryExit worker: admissions (outbox) and retention purge; SIGTERM stops it")
    stop.wait()
    services.crossings.stop_worker()
    scheduler.stop()
    drained = drain_outbox(services)
    typer.echo("worker stopped" + ("" if drained else "; admission work left queued"))
    return 0


JobsOption = Annotated[
    bool,
    typer.Option(
        "--jobs/--no-jobs",
        help="Run the background jobs (outbox, purge) in this process too; a fleet's service"
        " instances say --no-jobs and leave them to `entryexit worker`.",
    ),
]
