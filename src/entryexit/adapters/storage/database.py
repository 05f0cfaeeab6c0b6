"""Database engines, schema migration (Alembic, in-process) and sessions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, ExceptionContext, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from entryexit.errors import ConfigurationError, StorageUnavailableError

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# Execution option naming a unit of work that writes: on SQLite it begins ``IMMEDIATE``.
WRITE_TRANSACTION = "entryexit_write"
# Execution option naming a read-only unit of work: the database itself refuses its writes
# (SQLite ``PRAGMA query_only``; PostgreSQL ``SET TRANSACTION READ ONLY``).
READ_ONLY_TRANSACTION = "entryexit_read_only"


class _NoRowData(logging.Filter):
    """SQLAlchemy logs every result row (names, document numbers) at DEBUG. Those records
    never pass, whatever level an operator turns on; statements (INFO) carry no values."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_ROW_FILTER = _NoRowData()


def _silence_row_logging() -> None:
    for name in ("sqlalchemy.engine", "sqlalchemy.engine.Engine"):
        target = logging.getLogger(name)
        if _ROW_FILTER not in target.filters:
            target.addFilter(_ROW_FILTER)


def create_database_engine(url: str) -> Engine:
    """An engine with the pragmas EntryExit relies on (SQLite: WAL, foreign keys, waits).

    ``hide_parameters``: statement parameters (names, document numbers, templates) never
    appear in error messages or logs.
    """
    _silence_row_logging()
    try:
        if url.startswith("sqlite"):
            database_file = make_url(url).database
            if (
                database_file
                and database_file != ":memory:"
                and not database_file.startswith("file:")
            ):
                owner_only_database(Path(database_file))
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                hide_parameters=True,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            event.listen(engine, "handle_error", _storage_failure)
        else:
            engine = create_engine(
                url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
            )
            event.listen(engine, "handle_error", _storage_failure)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot use database URL ({type(exc).__name__})") from exc
    return engine


OWNER_ONLY_DIRECTORY = 0o700
OWNER_ONLY_FILE = 0o600


def owner_only_directory(path: Path) -> None:
    """Create ``path`` readable by its owner only, or tighten it if it is wider (the data
    directory holds the database: nobody else on the machine has any business in it)."""
    path.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIRECTORY)
    _tighten(path, OWNER_ONLY_DIRECTORY)


def owner_only_database(path: Path) -> None:
    """The SQLite database file created 0600 before SQLite opens it; SQLite gives its -wal
    and -shm files the database file's mode. Existing wider files are tightened. (A missing
    parent is created owner-only; an existing one is the operator's: it may be shared.)"""
    path.parent.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIRECTORY)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE))
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if companion.exists():
            _tighten(companion, OWNER_ONLY_FILE)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        try:
            path.chmod(mode)
        except PermissionError:
            raise ConfigurationError(
                f"{path} is accessible to others (mode {current:o}) and cannot be changed;"
                f" run `chmod {mode:o} {path}`"
            ) from None
        logger.warning("%s was accessible to others (mode %o); now %o", path, current, mode)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off: ``_sqlite_begin`` says BEGIN itself, so
    # savepoints work and a writer can take the lock up front.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows (a purge, an erasure) are overwritten with zeros, not left in free pages
    # for anyone who copies the file; ``scrub_sqlite`` then empties the write-ahead log.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


# What a database says when it cannot store anything now (not when a statement is wrong):
# SQLite's messages, PostgreSQL's SQLSTATE classes 53 (insufficient resources), 57P
# (operator intervention), 08 (connection) and 25006 (read-only transaction).
_SQLITE_STORAGE = (
    "readonly database",
    "disk is full",
    "disk i/o error",
    "unable to open database",
    "database is locked",
)
_POSTGRES_STORAGE = ("53", "57P", "08", "25006")


def _storage_failure(context: ExceptionContext) -> None:
    """Storage that cannot write is a 503 the client may retry, never a 500."""
    connection = context.connection
    if connection is not None and connection.get_execution_options().get(READ_ONLY_TRANSACTION):
        return  # a write in a read-only unit of work is a bug, not unavailable storage
    original = context.original_exception
    message = str(original).lower()
    sqlstate = getattr(original, "sqlstate", None) or ""
    if any(part in message for part in _SQLITE_STORAGE) or (
        sqlstate and sqlstate.startswith(_POSTGRES_STORAGE)
    ):
        raise StorageUnavailableError(
            f"the database cannot store anything now ({type(original).__name__})"
        ) from None


_QUERY_ONLY = "entryexit_query_only"


def _sqlite_begin(connection: Connection) -> None:
    """A writing unit of work takes the write lock when it begins (``BEGIN IMMEDIATE``):
    read-then-write transactions then queue on ``busy_timeout`` instead of failing with
    "database is locked" when two of them try to upgrade their read locks at once."""
    options = connection.get_execution_options()
    write = options.get(WRITE_TRANSACTION, False)
    # A connection-wide switch, not a transaction's: checked at every begin (before it: BEGIN
    # IMMEDIATE is itself a write), so a pooled connection never carries a read-only unit of
    # work's setting into the next one. The pooled connection remembers what it was last set
    # to (a new or invalidated connection starts with nothing remembered), and the pragma goes
    # straight to the driver, only when it changes: it cannot fail as a storage fault can
    # (BEGIN IMMEDIATE can, so it keeps SQLAlchemy's error handling), and a capture pays two
    # of these begins.
    read_only = "ON" if options.get(READ_ONLY_TRANSACTION, False) else "OFF"
    pooled = connection.connection
    if pooled.info.get(_QUERY_ONLY) != read_only:
        cursor = pooled.cursor()
        try:
            cursor.execute(f"PRAGMA query_only={read_only}")
        finally:
            cursor.close()
        pooled.info[_QUERY_ONLY] = read_only
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# A truncating checkpoint holds the write lock while it waits for readers: it waits this long
# at most (milliseconds), not the 30 s a use case may, so that gates are never held up.
SCRUB_WAIT_MS = 2000


def scrub_sqlite(engine: Engine) -> None:
    """Checkpoint the write-ahead log into the database file and truncate it to nothing, so
    that no earlier version of a page (a deleted name, template or key) survives in it. A
    checkpoint that could not finish (a long reader) is logged; the next purge or erasure
    tries again."""
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
        try:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _, _ = cursor.fetchone() or (1, 0, 0)
        except sqlite3.Error:
            busy = 1  # the deletion itself is committed; only its log copy waits
        finally:
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    finally:
        connection.close()
    if busy:
        logger.warning("the write-ahead log could not be truncated after a deletion (busy)")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it on first start)."""
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"cannot migrate the database ({type(exc).__name__}); is it reachable?"
        ) from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
