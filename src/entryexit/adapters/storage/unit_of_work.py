"""The relational unit of work: one session, one transaction, every repository inside it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from entryexit.adapters.storage.audit_macs import mac_legacy_events
from entryexit.adapters.storage.database import (
    READ_ONLY_TRANSACTION,
    WRITE_TRANSACTION,
    scrub_sqlite,
    session_factory,
)
from entryexit.adapters.storage.queries.boards import SqlBoardQueries
from entryexit.adapters.storage.queries.reports import SqlReportQueries
from entryexit.adapters.storage.repositories.access import SqlAccessRepository
from entryexit.adapters.storage.repositories.admissions import SqlAdmissionRepository
from entryexit.adapters.storage.repositories.audit import SqlAuditRepository
from entryexit.adapters.storage.repositories.captures import (
    SqlCacheGenerations,
    SqlCaptureRepository,
    SqlCaseRepository,
)
from entryexit.adapters.storage.repositories.fingerprints import SqlFingerprintRepository
from entryexit.adapters.storage.repositories.flights import SqlFlightRepository
from entryexit.adapters.storage.repositories.kiosks import SqlKioskRepository
from entryexit.adapters.storage.repositories.maintenance import (
    SqlDataKeyRepository,
    SqlRetentionRepository,
)
from entryexit.adapters.storage.repositories.outbox import SqlOutboxRepository
from entryexit.adapters.storage.repositories.policies import SqlPolicyRepository
from entryexit.adapters.storage.repositories.travelers import SqlTravelerRepository
from entryexit.adapters.storage.repositories.watchlist import SqlWatchlistRepository
from entryexit.adapters.storage.row_macs import mac_legacy_rows
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import ReadinessProbeRow
from entryexit.services.ports import KeyProvider
from entryexit.services.unit_of_work import (
    AccessRepository,
    AdmissionRepository,
    AuditRepository,
    CacheGenerations,
    CaptureRepository,
    CaseRepository,
    DataKeyRepository,
    FingerprintRepository,
    FlightRepository,
    KioskRepository,
    OutboxRepository,
    PolicyRepository,
    RetentionRepository,
    TravelerRepository,
    UnitOfWorkFactory,
    WatchlistRepository,
)


class SqlUnitOfWork:
    flights: FlightRepository
    travelers: TravelerRepository
    captures: CaptureRepository
    cases: CaseRepository
    policies: PolicyRepository
    audit: AuditRepository
    admissions: AdmissionRepository
    watchlist: WatchlistRepository
    access: AccessRepository
    outbox: OutboxRepository
    retention: RetentionRepository
    data_keys: DataKeyRepository
    fingerprints: FingerprintRepository
    generations: CacheGenerations
    kiosks: KioskRepository

    def __init__(self, sessions: sessionmaker[Session], sealer: Sealer, read_only: bool) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._read_only = read_only
        self._after_commit: list[Callable[[], object]] = []
        self._session: Session | None = None

    def __enter__(self) -> Self:
        session = self._sessions()
        # The begin event (``database.py``) takes SQLite's write lock at once for a writing
        # unit of work, so its reads and writes are one serialisable step.
        options: dict[str, object] = (
            {READ_ONLY_TRANSACTION: True} if self._read_only else {WRITE_TRANSACTION: True}
        )
        connection = session.connection(execution_options=options)
        if self._read_only and connection.dialect.name == "postgresql":
            # The first statement of the transaction; a write then fails with 25006.
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        sealer = self._sealer
        self._session = session
        self.flights = SqlFlightRepository(session, sealer)
        self.travelers = SqlTravelerRepository(session, sealer)
        self.captures = SqlCaptureRepository(session, sealer)
        self.cases = SqlCaseRepository(session, sealer)
        self.policies = SqlPolicyRepository(session, sealer)
        self.audit = SqlAuditRepository(session, sealer)
        self.admissions = SqlAdmissionRepository(session, sealer)
        self.watchlist = SqlWatchlistRepository(session, sealer)
        self.access = SqlAccessRepository(session, sealer)
        self.outbox = SqlOutboxRepository(session, sealer)
        self.retention = SqlRetentionRepository(session)
        self.data_keys = SqlDataKeyRepository(session, sealer)
        self.fingerprints = SqlFingerprintRepository(session, sealer)
        self.generations = SqlCacheGenerations(session)
        self.kiosks = SqlKioskRepository(session, sealer)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.rollback()
            session.close()

    def commit(self) -> None:
        if self._session is None:
            raise RuntimeError("commit outside the unit of work")
        if self._read_only and (self._session.new or self._session.dirty or self._session.deleted):
            raise RuntimeError("a read-only unit of work wrote")
        self._session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], object]) -> None:
        self._after_commit.append(callback)


class SqlUnitOfWorkFactory:
    """Makes units of work over one database; also hands out the read models."""

    def __init__(self, engine: Engine, keys: KeyProvider) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._sealer = Sealer(keys)
        self.reports = SqlReportQueries(self._sessions, self._sealer)
        self.boards = SqlBoardQueries(self._sessions)

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._sealer, read_only)

    def mac_legacy_audit_events(self) -> int:
        """See :mod:`entryexit.adapters.storage.audit_macs` (run once at start)."""
        with self._sessions.begin() as session:
            return mac_legacy_events(session, self._sealer.audit_key())

    def mac_legacy_rows(self) -> dict[str, int]:
        """See :mod:`entryexit.adapters.storage.row_macs` (run once at start)."""
        with self._sessions.begin() as session:
            return mac_legacy_rows(session, self._sealer)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def probe_write(self, now: datetime) -> None:
        """Write one row and commit, as every use case must be able to."""
        with self._sessions.begin() as session:
            session.connection(execution_options={WRITE_TRANSACTION: True})
            session.merge(ReadinessProbeRow(id=1, checked_at=now))

    def scrub(self) -> None:
        scrub_sqlite(self.engine)


def _conforms(factory: SqlUnitOfWorkFactory) -> UnitOfWorkFactory:
    return factory
