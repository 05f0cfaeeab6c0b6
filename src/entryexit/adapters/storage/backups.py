"""Backups of the embedded SQLite database: an online, consistent copy through SQLite's
backup API (the service may keep writing), and a restore that only ever replaces a database
with a complete, checked copy.

PostgreSQL is backed up with its own tools (``pg_dump`` / ``pg_restore``, see
``docs/operations.md``); nothing here touches it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from entryexit.adapters.storage.database import OWNER_ONLY_FILE, owner_only_database
from entryexit.errors import InvalidInputError

# Tables every EntryExit database has had since its first migration: a file without them is
# some other database, not a backup of ours.
_EXPECTED_TABLES = frozenset({"alembic_version", "audit_events", "audit_head", "data_keys"})
_COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_database_path(database_url: str) -> Path | None:
    """The file of a SQLite URL, or None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_backup(source: Path, destination: Path) -> int:
    """Copy ``source`` to ``destination`` (created 0600, never overwritten) as one consistent
    snapshot while other connections keep writing; returns its size in bytes. The copy is a
    single file (rollback journal, not WAL): nothing beside it is needed to open it."""
    if not source.is_file():
        raise InvalidInputError(f"there is no database at {source} to back up")
    if destination.exists():
        raise InvalidInputError(f"{destination} already exists; choose a new file for the backup")
    if not destination.parent.is_dir():
        raise InvalidInputError(f"the directory {destination.parent} does not exist")
    partial = destination.with_name(destination.name + ".partial")
    _remove_database(partial)
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE))
        with _connect(source) as reader, _connect(partial) as writer:
            # One step (pages=-1): the whole copy is read in one read transaction, so it is
            # the database as of one moment, whatever the service commits meanwhile.
            reader.backup(writer, pages=-1)
            writer.execute("PRAGMA journal_mode=DELETE")
        problem = _not_a_backup(partial)
        if problem is not None:
            raise InvalidInputError(f"the copy of {source} failed its check: {problem}")
        partial.replace(destination)
    except BaseException:
        _remove_database(partial)
        raise
    return destination.stat().st_size


def stage_restore(backup: Path, target: Path) -> Path:
    """Copy a checked backup beside ``target`` (same directory, so putting it in place is a
    rename) and return the staged file; the target is not touched."""
    if not backup.is_file():
        raise InvalidInputError(f"backup {backup} does not exist or is not a file")
    problem = _not_a_backup(backup)
    if problem is not None:
        raise InvalidInputError(f"{backup} is not an EntryExit backup: {problem}")
    staged = target.with_name(target.name + ".restoring")
    _remove_database(staged)
    owner_only_database(staged)
    try:
        with _connect(backup, read_only=True) as reader, _connect(staged) as writer:
            reader.backup(writer, pages=-1)
    except BaseException:
        _remove_database(staged)
        raise
    return staged


def settle(staged: Path) -> None:
    """Fold any write-ahead log of ``staged`` into the file (the key check opened it), so
    the single file is the whole database when it is renamed."""
    with _connect(staged) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    for suffix in _COMPANIONS:
        if Path(f"{staged}{suffix}").exists():
            raise InvalidInputError(f"{staged}{suffix} is still in use; is a service running?")


def put_in_place(staged: Path, target: Path, suffix: str) -> Path | None:
    """Move ``staged`` to ``target``. An existing database (with its -wal and -shm, which
    belong to it and would corrupt the restored file) is first renamed aside with
    ``suffix``, never deleted; returns where it went."""
    kept: Path | None = None
    if target.exists():
        kept = target.with_name(target.name + suffix)
        for companion in ("", *_COMPANIONS):
            old = Path(f"{target}{companion}")
            if old.exists():
                old.replace(Path(f"{kept}{companion}"))
    staged.replace(target)
    return kept


def discard(staged: Path) -> None:
    _remove_database(staged)


def _not_a_backup(path: Path) -> str | None:
    try:
        with _connect(path, read_only=True) as connection:
            (integrity,) = connection.execute("PRAGMA quick_check").fetchone()
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    if integrity != "ok":
        return f"SQLite's check failed ({integrity})"
    missing = _EXPECTED_TABLES - tables
    if missing:
        return f"no {', '.join(sorted(missing))} table"
    return None


@contextlib.contextmanager
def _connect(path: Path, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "")
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        yield connection
    finally:
        connection.close()


def _remove_database(path: Path) -> None:
    for suffix in ("", *_COMPANIONS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
