"""Background jobs that run once across the fleet: the retention purge (at most once per
interval) and the admission worker (one leader at a time).

Who may run is a :class:`~entryexit.services.ports.JobLease` (a PostgreSQL advisory lock, or
a lease row with an expiry on SQLite, ``adapters/storage/jobs.py``); each run is recorded
(start, end, outcome, counts) where every instance's ``/metrics`` reads it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from entryexit.services.ports import Clock, JobLease, JobLeases, JobRun

logger = logging.getLogger(__name__)

PURGE_JOB = "purge"
ADMISSIONS_JOB = "admissions"

JobBody = Callable[[], dict[str, int]]
# A leader's rounds that did nothing are recorded this often (seconds), so that its last run
# in /metrics stays recent while the outbox is empty.
RECORD_IDLE_EVERY = 30.0


class FleetJobs:
    def __init__(self, leases: JobLeases, clock: Clock) -> None:
        self._leases = leases
        self._clock = clock

    def run_if_due(self, job: str, interval: timedelta, body: JobBody) -> dict[str, int] | None:
        """Run ``body`` if no other process is running this job and its last run started at
        least ``interval`` ago (by any process); ``None`` if it did not run. The check is made
        under the lease, so two processes that both find the job due cannot both run it."""
        lease = self._leases.acquire(job)
        if lease is None:
            return None
        try:
            last = self._leases.last_run(job)
            now = self._clock()
            started = None if last is None else last.started_at
            if started is not None and now - started < interval:
                return None
            return self._run_recorded(job, body)
        finally:
            lease.release()

    def leadership(self, job: str) -> Leadership:
        return Leadership(self, job)

    def last_runs(self) -> list[JobRun]:
        return self._leases.last_runs()

    def _acquire(self, job: str) -> JobLease | None:
        return self._leases.acquire(job)

    def _run_recorded(self, job: str, body: JobBody, record_idle: bool = True) -> dict[str, int]:
        started = self._clock()
        try:
            counts = body()
        except Exception:
            self._record(job, started, "failed", {})
            raise
        if record_idle or any(counts.values()):
            self._record(job, started, "ok", counts)
        return counts

    def _record(self, job: str, started: datetime, outcome: str, counts: dict[str, int]) -> None:
        try:
            self._leases.record(job, started, self._clock(), outcome, counts)
        except Exception as exc:  # the job's own work committed; only its record is missing
            logger.error("recording the %s run failed (%s)", job, type(exc).__name__)


class Leadership:
    """One leader for a job that runs continuously (the admission worker): each round runs
    only in the process that holds the lease, which it keeps from round to round; a leader
    that dies (its session ends, or its lease expires) is replaced at another's next round."""

    def __init__(self, jobs: FleetJobs, job: str) -> None:
        self._jobs = jobs
        self._job = job
        self._lease: JobLease | None = None
        self._lock = threading.Lock()
        self._recorded_at: float | None = None

    @property
    def job(self) -> str:
        return self._job

    def run(self, body: JobBody) -> dict[str, int] | None:
        """Run one round if this process leads (taking the lead if nobody holds it)."""
        with self._lock:
            if self._lease is not None and not self._lease.renew():
                logger.warning("lost the lead of %s", self._job)
                self._lease = None
            if self._lease is None:
                self._lease = self._jobs._acquire(self._job)
                if self._lease is None:
                    return None
            # Idle rounds (every few seconds) are recorded at most every RECORD_IDLE_EVERY:
            # the record is a write, and on SQLite the gates' captures wait for writers.
            now = time.monotonic()
            idle_due = self._recorded_at is None or now - self._recorded_at >= RECORD_IDLE_EVERY
            counts = self._jobs._run_recorded(self._job, body, record_idle=idle_due)
            if idle_due or any(counts.values()):
                self._recorded_at = now
            return counts

    def release(self) -> None:
        with self._lock:
            if self._lease is not None:
                self._lease.release()
                self._lease = None


class LocalJobLeases:
    """Leases within one process (no shared database: the in-memory store of unit tests).
    Not a fleet: a second process would not see them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._runs: dict[str, JobRun] = {}

    def acquire(self, job: str) -> JobLease | None:
        with self._lock:
            if job in self._held:
                return None
            self._held.add(job)
        return _LocalLease(self, job)

    def _release(self, job: str) -> None:
        with self._lock:
            self._held.discard(job)

    def last_run(self, job: str) -> JobRun | None:
        with self._lock:
            return self._runs.get(job)

    def last_runs(self) -> list[JobRun]:
        with self._lock:
            return [self._runs[name] for name in sorted(self._runs)]

    def record(
        self,
        job: str,
        started_at: datetime,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
    ) -> None:
        with self._lock:
            previous = self._runs.get(job)
            success = finished_at if outcome == "ok" else None
            if success is None and previous is not None:
                success = previous.success_at
            self._runs[job] = JobRun(
                job,
                started_at,
                finished_at,
                success,
                (finished_at - started_at).total_seconds(),
                outcome,
                dict(counts),
                (previous.runs if previous else 0) + 1,
            )


class _LocalLease:
    def __init__(self, owner: LocalJobLeases, job: str) -> None:
        self._owner = owner
        self._job = job
        self._held = True

    def renew(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._owner._release(self._job)
