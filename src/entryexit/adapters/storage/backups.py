"""Backups of the embedded SQLite database: an online, consistent copy through SQLite's
backup API (the service may keep writing), and a restore that only ever replaces a database
with a complete, checked copy.

A backup is signed: ``backup create`` writes an HMAC of the file beside it (``FILE.mac``,
keyed from the audit key, which the backup does not hold), and a restore refuses a file whose
MAC does not verify. The MAC is checked over the bytes copied beside the database before
anything opens them (neither SQLite nor the service parses an unauthenticated file); the
.mac file also names, unauthenticated, the signer's audit key and the key-encryption keys the
data is sealed under, only so that a refusal can say which key directory is wanted. A backup
without a .mac file is restored only with ``--allow-unsigned`` and only if its schema
predates signing (version ``LAST_UNSIGNED_VERSION`` or older). Independently, a restore
refuses a database whose schema (tables, indexes, triggers, views) is not exactly what the
migrations make at its version: a trigger added to a backup (``BEFORE DELETE ...
RAISE(IGNORE)``) would otherwise survive into production and make an erasure or the purge
impossible (probe F8).

PostgreSQL is backed up with its own tools (``pg_dump`` / ``pg_restore``, see
``docs/operations.md``); nothing here touches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from entryexit.adapters.storage.database import (
    OWNER_ONLY_FILE,
    alembic_config,
    owner_only_database,
)
from entryexit.errors import ConfigurationError, InvalidInputError

MAC_SUFFIX = ".mac"
_MAC_FORMAT = "entryexit-backup-mac-v1"
# The last schema version whose ``backup create`` wrote no .mac file: signed backups came with
# migration 0024 (session 7). Only a backup at this version or older may be restored unsigned.
LAST_UNSIGNED_VERSION = "0023"
# Every SQLite database file starts with these bytes (https://sqlite.org/fileformat.html).
_SQLITE_HEADER = b"SQLite format 3\x00"

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


_SIGNER = re.compile(r"[0-9a-f]{16}")
# Key-encryption key ids as the key directory names its files (kek-<id>.key).
_KEK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def signer_id(mac_key: bytes) -> str:
    """A public name of a backup MAC key (so of an audit key): which key directory signed."""
    return hmac.new(mac_key, b"entryexit backup signer", hashlib.sha256).hexdigest()[:16]


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
    backup: Path,
    staged: StagedRestore,
    key: bytes,
    allow_unsigned: bool,
    holds_kek: Callable[[str], bool],
) -> bool:
    """Refuse a backup whose MAC file does not verify over the bytes that were staged
    (changed after ``backup create`` wrote it, or signed under another key directory: then
    say which keys are wanted, from the signer's names in the .mac file). Nothing has opened
    the staged bytes yet. Without a MAC file: refused, unless ``allow_unsigned``; returns
    whether the backup is signed (an unsigned one must then predate signing, see
    ``check_staged``)."""
    path = mac_file(backup)
    if not path.is_file():
        if allow_unsigned:
            return False
        raise InvalidInputError(
            f"{backup} has no MAC file ({path.name}) beside it: it cannot be shown to be what"
            " `backup create` wrote. Keep the .mac file with the backup; for a backup made"
            " before backups were signed (schema version"
            f" {LAST_UNSIGNED_VERSION} or older), pass --allow-unsigned"
        )
    lines = path.read_text(encoding="ascii", errors="replace").splitlines() or [""]
    name, _, value = lines[0].strip().partition(" ")
    expected = hmac.new(key, staged.digest, hashlib.sha256).hexdigest()
    if name == _MAC_FORMAT and hmac.compare_digest(value, expected):
        return True
    # The hints are not authenticated (whoever changed the file may have written them): they
    # only word the refusal, are used only when well formed, and the words say "claims".
    hints = dict(line.strip().partition(" ")[::2] for line in lines[1:])
    signer = hints.get("signer", "")
    if _SIGNER.fullmatch(signer) and signer != signer_id(key):
        keks = [kek for kek in hints.get("keks", "").split(",") if _KEK_ID.fullmatch(kek)]
        missing = [kek for kek in keks if not holds_kek(kek)]
        if missing:
            raise ConfigurationError(
                f"{backup} fails its MAC check under this key directory, and its {path.name}"
                " claims another key directory signed it: if so, the database's data is sealed"
                f" under key-encryption key(s) {', '.join(missing)}, which this key directory"
                " does not hold: restore the key directory that was backed up with this"
                " database (without it the backup is unreadable by design); otherwise the"
                " file was changed after `backup create` wrote it"
            )
        raise ConfigurationError(
            f"{backup}: its MAC does not verify under this key directory's audit key, and its"
            f" {path.name} claims another key directory signed it: if so, restore the key"
            " directory that was backed up with this database; otherwise the file was changed"
            " after `backup create` wrote it"
        )
    raise InvalidInputError(
        f"{backup} fails its MAC check ({path.name}): the file was changed after `backup"
        " create` wrote it, or it was made under another key directory's audit key"
    )


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
        signature = (
            f"{_MAC_FORMAT} {_file_mac(partial, mac_key)}\n"
            f"signer {signer_id(mac_key)}\n"
            f"keks {','.join(_sealing_keks(partial))}\n"
        )
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
    is a rename) and return it with its digest for the MAC check; the target is not
    touched. Nothing opens the backup or the copy as a database here: only its first bytes
    are read, to refuse at once what is not a SQLite file."""
    if not backup.is_file():
        raise InvalidInputError(f"backup {backup} does not exist or is not a file")
    with backup.open("rb") as source:
        header = source.read(len(_SQLITE_HEADER))
    if header != _SQLITE_HEADER:
        raise InvalidInputError(
            f"{backup} is not an EntryExit backup: not a readable SQLite database (it does not"
            " begin with SQLite's header)"
        )
    staged = target.with_name(target.name + ".restoring")
    _remove_database(staged)
    owner_only_database(staged)
    try:
        with backup.open("rb") as source, staged.open("r+b") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
            copy.truncate()
        digest = _digest(staged)
    except BaseException:
        _remove_database(staged)
        raise
    return StagedRestore(staged, digest)


def check_staged(backup: Path, staged: StagedRestore, signed: bool) -> None:
    """Once its MAC is checked (or an unsigned restore was asked for), open the staged copy
    read-only and refuse it unless it is a database of ours whose schema is exactly the
    migrations' at its version; an unsigned one also must predate signed backups."""
    problem = _not_a_backup(staged.path)
    if problem is not None:
        raise InvalidInputError(f"{backup} is not an EntryExit backup: {problem}")
    if not signed:
        version = _schema_version(staged.path)
        if version not in unsigned_versions():
            raise InvalidInputError(
                f"{backup} has no MAC file, but its schema version {version[:40]!r} is newer"
                f" than {LAST_UNSIGNED_VERSION}, from when every backup is signed:"
                " --allow-unsigned restores only a backup made before backups were signed."
                " Its .mac file was lost or removed: restore it beside the backup, or use"
                " another backup"
            )
    problem = schema_problem(staged.path)
    if problem is not None:
        raise InvalidInputError(f"{backup} is refused: {problem}")


def unsigned_versions() -> frozenset[str]:
    """The schema versions of backups made before backups were signed."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(
        revision.revision for revision in script.iterate_revisions(LAST_UNSIGNED_VERSION, "base")
    )


def _schema_version(path: Path) -> str:
    with _connect(path, read_only=True) as connection:
        versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    return str(versions[0]) if len(versions) == 1 else f"{len(versions)} versions"


def _sealing_keks(path: Path) -> list[str]:
    """The key-encryption keys a database of ours (one being backed up) has data sealed
    under: named in its .mac file, so a restore under other keys can say which it needs."""
    from entryexit.adapters.storage.repositories.maintenance import SEALED_ITEMS

    found: set[str] = set()
    with _connect(path, read_only=True) as connection:
        for table in SEALED_ITEMS:
            name = table.__tablename__
            query = f"SELECT DISTINCT kek_id FROM {name} WHERE kek_id IS NOT NULL"  # noqa: S608
            try:
                found.update(str(row[0]) for row in connection.execute(query))
            except sqlite3.OperationalError:  # a table an older schema did not have yet
                continue
    return sorted(found)


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


def migrate_file(path: Path, version: str) -> None:
    """Bring the SQLite database at ``path`` (created if absent) to schema ``version``."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, version)
    finally:
        engine.dispose()


def migrated_schema(version: str) -> Schema:
    """The schema the migrations make at ``version``, on a throw-away database."""
    with tempfile.TemporaryDirectory(prefix="entryexit-schema-") as folder:
        migrate_file(Path(folder) / "reference.db", version)
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
