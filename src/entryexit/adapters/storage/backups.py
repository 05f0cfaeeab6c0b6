"""Backups of the embedded SQLite database: an online, consistent copy through SQLite's
backup API (the service may keep writing), and a restore that only ever replaces a database
with a complete, checked copy.

A backup is signed: ``backup create`` writes an HMAC of the file beside it (``FILE.mac``,
keyed from the audit key, which the backup does not hold), and a restore refuses a file whose
MAC does not verify. Independently, a restore refuses a database whose schema (tables,
indexes, triggers, views) is not exactly what the migrations make at its version: a trigger
added to a backup (``BEFORE DELETE ... RAISE(IGNORE)``) would otherwise survive into
production and make an erasure or the purge impossible (probe F8).

PostgreSQL is backed up with its own tools (``pg_dump`` / ``pg_restore``, see
``docs/operations.md``); nothing here touches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from entryexit.adapters.storage.database import (
    OWNER_ONLY_FILE,
    alembic_config,
    owner_only_database,
)
from entryexit.errors import InvalidInputError

MAC_SUFFIX = ".mac"
_MAC_FORMAT = "entryexit-backup-mac-v1"

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


def backup_mac_key(audit_key: bytes) -> bytes:
    """The key of backup MACs, derived from the audit key (as row MACs are), for its own use."""
    return hmac.new(audit_key, b"entryexit backup mac v1", hashlib.sha256).digest()


def mac_file(backup: Path) -> Path:
    return backup.with_name(backup.name + MAC_SUFFIX)


def _digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _file_mac(path: Path, key: bytes) -> str:
    """HMAC-SHA256 over the file's SHA-256 (one pass over a large file)."""
    return hmac.new(key, _digest(path), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class StagedRestore:
    """A backup copied byte for byte beside the database it will replace, and the SHA-256 of
    those bytes (its MAC is checked over them: what is checked is what is put in place)."""

    path: Path
    digest: bytes


def check_backup_mac(
    backup: Path, staged: StagedRestore, key: bytes, allow_unsigned: bool
) -> str | None:
    """Refuse a backup whose MAC file does not verify over the bytes that were staged
    (changed after ``backup create`` wrote it, or signed under another key directory).
    Without a MAC file: refused, unless ``allow_unsigned`` (a backup made before backups
    were signed): then a warning to show."""
    path = mac_file(backup)
    if not path.is_file():
        if allow_unsigned:
            return (
                f"warning: {backup} has no MAC file ({path.name}); restoring it unsigned, as"
                " asked: nothing shows it is the file `backup create` wrote"
            )
        raise InvalidInputError(
            f"{backup} has no MAC file ({path.name}) beside it: it cannot be shown to be what"
            " `backup create` wrote. Keep the .mac file with the backup; for a backup made"
            " before backups were signed, pass --allow-unsigned"
        )
    name, _, value = path.read_text(encoding="ascii", errors="replace").strip().partition(" ")
    expected = hmac.new(key, staged.digest, hashlib.sha256).hexdigest()
    if name != _MAC_FORMAT or not hmac.compare_digest(value, expected):
        raise InvalidInputError(
            f"{backup} fails its MAC check ({path.name}): the file was changed after `backup"
            " create` wrote it, or it was made under another key directory's audit key"
        )
    return None


def create_backup(source: Path, destination: Path, mac_key: bytes) -> int:
    """Copy ``source`` to ``destination`` (created 0600, never overwritten) as one consistent
    snapshot while other connections keep writing, and sign it (``destination.mac``);
    returns its size in bytes. The copy is a single file (rollback journal, not WAL):
    nothing beside it is needed to open it."""
    if not source.is_file():
        raise InvalidInputError(f"there is no database at {source} to back up")
    if destination.exists() or mac_file(destination).exists():
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
        signature = f"{_MAC_FORMAT} {_file_mac(partial, mac_key)}\n"
        descriptor = os.open(
            mac_file(destination), os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE
        )
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(signature)
        partial.replace(destination)
    except BaseException:
        _remove_database(partial)
        if not destination.exists():
            mac_file(destination).unlink(missing_ok=True)
        raise
    return destination.stat().st_size


def stage_restore(backup: Path, target: Path) -> StagedRestore:
    """Copy a backup beside ``target`` byte for byte (same directory, so putting it in place
    is a rename), check the copy (a database of ours, its schema exactly the migrations'),
    and return it with its digest for the MAC check; the target is not touched."""
    if not backup.is_file():
        raise InvalidInputError(f"backup {backup} does not exist or is not a file")
    problem = _not_a_backup(backup)
    if problem is not None:
        raise InvalidInputError(f"{backup} is not an EntryExit backup: {problem}")
    staged = target.with_name(target.name + ".restoring")
    _remove_database(staged)
    owner_only_database(staged)
    try:
        with backup.open("rb") as source, staged.open("r+b") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
            copy.truncate()
        digest = _digest(staged)
        problem = _not_a_backup(staged) or schema_problem(staged)
        if problem is not None:
            raise InvalidInputError(f"{backup} is refused: {problem}")
    except BaseException:
        _remove_database(staged)
        raise
    return StagedRestore(staged, digest)


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


Schema = frozenset[tuple[str, str, str, str]]


def _schema(connection: sqlite3.Connection) -> Schema:
    """Every table, index, trigger and view (type, name, table, SQL with whitespace
    normalised); SQLite's own objects (sqlite_sequence, sqlite_stat1) are left out."""
    rows = connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    )
    return frozenset((kind, name, table, _normalised(sql or "")) for kind, name, table, sql in rows)


def _normalised(sql: str) -> str:
    """Whitespace collapsed, and a table's column and constraint clauses in sorted order:
    a table a migration rebuilt (alembic's batch mode) lists its foreign keys in whatever
    order reflection found them, so one schema has more than one text."""
    sql = " ".join(sql.split())
    start = sql.find("(")
    if not sql.upper().startswith("CREATE TABLE") or start < 0 or not sql.endswith(")"):
        return sql
    clauses: list[str] = []
    depth, current = 0, list[str]()
    for char in sql[start + 1 : -1]:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            clauses.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    clauses.append("".join(current).strip())
    return f"{sql[:start].strip()} ({', '.join(sorted(clauses))})"


def migrated_schema(version: str) -> Schema:
    """The schema the migrations make at ``version``, on a throw-away database."""
    with tempfile.TemporaryDirectory(prefix="entryexit-schema-") as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'reference.db'}")
        try:
            with engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, version)
        finally:
            engine.dispose()
        with _connect(Path(folder) / "reference.db", read_only=True) as connection:
            return _schema(connection)


def schema_problem(path: Path) -> str | None:
    """Why the database at ``path`` is not what the migrations make at its version (an
    extra trigger, view, table or index, or one changed or missing), or None."""
    with _connect(path, read_only=True) as connection:
        versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        found = _schema(connection)
    if len(versions) != 1:
        return f"it names {len(versions)} schema versions (alembic_version), not one"
    try:
        expected = migrated_schema(versions[0])
    except CommandError:  # an unknown revision (a newer release's, or made up)
        return f"its schema version {versions[0][:40]!r} is not one this release knows"
    extra = sorted(found - expected)
    missing = sorted(expected - found)
    if not extra and not missing:
        return None
    named = [f"{kind} {name} (not made by the migrations)" for kind, name, _, _ in extra[:5]]
    named += [f"{kind} {name} (missing or changed)" for kind, name, _, _ in missing[:5]]
    return (
        f"its schema differs from what the migrations make at version {versions[0]}: "
        + "; ".join(named)
    )


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
