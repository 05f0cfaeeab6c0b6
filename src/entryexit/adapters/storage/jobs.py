"""Who runs a background job now, across every process on one database.

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection held for
  as long as the lease is. A holder that dies (SIGKILL, a lost host) ends its session and the
  server releases the lock at once; nothing has to expire.
* SQLite (processes on one host): the job's row in ``job_runs`` names the holder until
  ``lease_expires_at``; the holder renews it (a heartbeat thread, every third of the lease) and
  a dead holder's lease is taken over once it has expired (``lease_seconds``).

Both record each run in ``job_runs`` (times, outcome, counts), which ``/metrics`` reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from entryexit.adapters.storage.database import WRITE_TRANSACTION, session_factory
from entryexit.adapters.storage.tables import JobRunRow
from entryexit.services.ports import JobLease, JobRun

logger = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key per job (the lock's name for ``pg_locks``)."""
    digest = hashlib.sha256(f"entryexit:job:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SqlJobLeases:
    def __init__(self, engine: Engine, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._lease = timedelta(seconds=lease_seconds)
        self._postgres = engine.dialect.name == "postgresql"

    def acquire(self, job: str) -> JobLease | None:
        if self._postgres:
            return self._advisory_lock(job)
        holder = holder_name()
        if not self._claim_row(job, holder):
            return None
        return _RowLease(self, job, holder, self._lease.total_seconds() / 3)

    # --- PostgreSQL ---------------------------------------------------------------------
    def _advisory_lock(self, job: str) -> JobLease | None:
        connection = self._engine.connect()
        try:
            held = bool(
                connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(job)}
                )
            )
            connection.commit()  # the lock is the session's, not the transaction's
        except Exception:
            connection.invalidate()
            connection.close()
            raise
        if not held:
            connection.close()
            return None
        return _AdvisoryLease(connection, job)

    # --- SQLite -------------------------------------------------------------------------
    def _claim_row(self, job: str, holder: str) -> bool:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.connection(execution_options={WRITE_TRANSACTION: True})
            row = session.get(JobRunRow, job)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            JobRunRow(
                                name=job, holder=holder, lease_expires_at=now + self._lease, runs=0
                            )
                        )
                except IntegrityError:
                    return False
                return True
            expired = row.lease_expires_at is None or row.lease_expires_at <= now
            if row.holder is not None and not expired:
                return False
            row.holder = holder
            row.lease_expires_at = now + self._lease
            return True

    def _renew_row(self, job: str, holder: str) -> bool:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.connection(execution_options={WRITE_TRANSACTION: True})
            result = session.execute(
                update(JobRunRow)
                .where(JobRunRow.name == job, JobRunRow.holder == holder)
                .values(lease_expires_at=now + self._lease)
            )
            return bool(getattr(result, "rowcount", 0))

    def _release_row(self, job: str, holder: str) -> None:
        with self._sessions.begin() as session:
            session.connection(execution_options={WRITE_TRANSACTION: True})
            session.execute(
                update(JobRunRow)
                .where(JobRunRow.name == job, JobRunRow.holder == holder)
                .values(holder=None, lease_expires_at=None)
            )

    # --- runs ---------------------------------------------------------------------------
    def last_run(self, job: str) -> JobRun | None:
        with self._sessions() as session:
            row = session.get(JobRunRow, job)
            return None if row is None or row.last_started_at is None else _job_run(row)

    def last_runs(self) -> list[JobRun]:
        with self._sessions() as session:
            rows = session.scalars(
                select(JobRunRow)
                .where(JobRunRow.last_started_at.is_not(None))
                .order_by(JobRunRow.name)
            )
            return [_job_run(row) for row in rows]

    def record(
        self,
        job: str,
        started_at: datetime,
        finished_at: datetime,
        outcome: str,
        counts: dict[str, int],
    ) -> None:
        with self._sessions.begin() as session:
            session.connection(execution_options={WRITE_TRANSACTION: True})
            row = _row_for_update(session, job)
            row.last_started_at = started_at
            row.last_finished_at = finished_at
            row.last_duration_seconds = (finished_at - started_at).total_seconds()
            row.last_outcome = outcome
            row.last_counts = json.dumps(counts, sort_keys=True)
            row.runs = (row.runs or 0) + 1
            if outcome == "ok":
                row.last_success_at = finished_at


def _row_for_update(session: Session, job: str) -> JobRunRow:
    row = session.get(JobRunRow, job, with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(JobRunRow(name=job, runs=0))
    except IntegrityError:
        pass  # another process made it first
    found = session.get(JobRunRow, job, with_for_update=True)
    assert found is not None
    return found


def _job_run(row: JobRunRow) -> JobRun:
    try:
        counts = {str(k): int(v) for k, v in json.loads(row.last_counts or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        counts = {}
    return JobRun(
        row.name,
        row.last_started_at,
        row.last_finished_at,
        row.last_success_at,
        row.last_duration_seconds,
        row.last_outcome,
        counts,
        row.runs or 0,
    )


class _AdvisoryLease:
    def __init__(self, connection: Connection, job: str) -> None:
        self._connection: Connection | None = connection
        self._job = job
        self._lock = threading.Lock()

    def renew(self) -> bool:
        """The lock lives as long as the session: a session that still answers holds it."""
        with self._lock:
            if self._connection is None:
                return False
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except SQLAlchemyError:
                self._drop()
                return False

    def release(self) -> None:
        with self._lock:
            connection = self._connection
            if connection is None:
                return
            try:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self._job)}
                )
                connection.commit()
                connection.close()
                self._connection = None
            except SQLAlchemyError:
                self._drop()

    def _drop(self) -> None:
        """A broken session holds nothing: discard it rather than pool it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except SQLAlchemyError:
                pass


class _RowLease:
    def __init__(self, owner: SqlJobLeases, job: str, holder: str, heartbeat: float) -> None:
        self._owner = owner
        self._job = job
        self._holder = holder
        self._held = True
        self._every = heartbeat
        self._lease_seconds = heartbeat * 3
        self._renewed_at = time.monotonic()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, args=(heartbeat,), name=f"lease-{job}", daemon=True
        )
        self._heartbeat.start()

    def _beat(self, every: float) -> None:
        """Beats until released or told the lease is gone: one failed renewal (a lock held a
        moment too long, a driver error SQLAlchemy did not wrap) is tried again next beat, and
        the lease is lost only when a renewal says so or it expires."""
        while not self._stop.wait(every):
            if not self._renew_now():
                return

    def renew(self) -> bool:
        """Answered from the heartbeat's last renewal when that is recent (a leader asks every
        round; SQLite has one writer at a time, and gate captures need it more)."""
        if self._held and time.monotonic() - self._renewed_at < self._every:
            return True
        return self._renew_now()

    def _renew_now(self) -> bool:
        if not self._held:
            return False
        try:
            self._held = self._owner._renew_row(self._job, self._holder)
            self._renewed_at = time.monotonic()
        except Exception as exc:  # the heartbeat must outlive any one failure
            # The type only: a driver's message may quote the statement's parameters.
            logger.warning("renewing the %s lease failed (%s)", self._job, type(exc).__name__)
            if time.monotonic() - self._renewed_at >= self._lease_seconds:
                self._held = False  # expired: another process may have taken it over
        return self._held

    def release(self) -> None:
        self._stop.set()
        if self._held:
            self._held = False
            try:
                self._owner._release_row(self._job, self._holder)
            except SQLAlchemyError as exc:  # it expires on its own
                logger.warning("releasing the %s lease failed (%s)", self._job, type(exc).__name__)
