"""``entryexit backup create | restore | check``: back up and restore the embedded SQLite
database, and check that a restored database (SQLite or PostgreSQL) opens with the keys.

A backup holds no key: the key directory and the audit checkpoint file live outside the data
directory and are backed up separately (docs/operations.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entryexit.cli._common import load_settings
from entryexit.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from entryexit.config import Settings
    from entryexit.services.backups import RestoredDatabase
    from entryexit.services.ports import KeyProvider

app = typer.Typer(
    help="Back up and restore the database (SQLite here; PostgreSQL with pg_dump).",
    no_args_is_help=True,
)

POSTGRES_HINT = (
    "the database is not SQLite: back PostgreSQL up with `pg_dump --format=custom` and restore"
    " it with `pg_restore`, then run `entryexit backup check` (docs/operations.md)"
)


def _sqlite_file(settings: Settings) -> Path:
    from entryexit.adapters.storage.backups import sqlite_database_path

    path = sqlite_database_path(settings.resolved_database_url)
    if path is None:
        raise InvalidInputError(POSTGRES_HINT)
    return path


@app.command("create")
def create(
    path: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
) -> int:
    """Write a consistent copy of the SQLite database while the service runs (SQLite's
    backup API: one snapshot, whatever is committed meanwhile). Keys are not in it."""
    from entryexit.adapters.storage.backups import backup_mac_key, create_backup, mac_file
    from entryexit.bootstrap import build_key_provider

    settings = load_settings()
    source = _sqlite_file(settings)
    key = backup_mac_key(build_key_provider(settings).audit_key())
    size = create_backup(source, path, key)
    typer.echo(
        f"backup written to {path} ({size:,} bytes), signed in {mac_file(path)} (keep the two"
        f" together: a restore checks it). It holds no key: back up the key"
        f" directory {settings.resolved_key_dir} separately (without it the backup cannot be"
        " read)."
    )
    return 0


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `entryexit backup create`.")],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace an existing database (stop the service first); it is renamed aside,"
            " not deleted.",
        ),
    ] = False,
    allow_unsigned: Annotated[
        bool,
        typer.Option(
            "--allow-unsigned",
            help="Restore a backup without its .mac file: only one made before backups were"
            " signed (schema version 0023 or older); nothing then shows the file is what"
            " `backup create` wrote.",
        ),
    ] = False,
) -> int:
    """Restore a SQLite backup as this instance's database, only once the copy has been
    checked: its MAC (FILE.mac, from `backup create`; checked before anything opens the
    copy), its schema (exactly the migrations'
    at its version: no foreign trigger, view or table), and that it opens with this key
    directory; then acknowledge the restore before starting
    the service (`entryexit audit acknowledge-restore`)."""
    from entryexit.adapters.storage import backups

    settings = load_settings()
    target = _sqlite_file(settings)
    if target.exists() and not replace:
        raise InvalidInputError(
            f"a database already exists at {target}; stop the service and pass --replace to"
            " restore over it (it is kept aside), or restore into a fresh data directory"
        )
    from entryexit.adapters.storage.database import owner_only_directory

    if settings.database_url is None:
        owner_only_directory(settings.data_dir)
    from entryexit.bootstrap import build_key_provider

    keys = build_key_provider(settings)
    key = backups.backup_mac_key(keys.audit_key())
    staged = backups.stage_restore(path, target)
    try:
        # The MAC first, over the copied bytes: nothing (SQLite, the service) opens a file
        # before it is shown to be what `backup create` wrote.
        signed = backups.check_backup_mac(path, staged, key, allow_unsigned, _holds(keys))
        backups.check_staged(path, staged, signed)
        opened = _check(settings.model_copy(update={"database_url": f"sqlite:///{staged.path}"}))
        backups.settle(staged.path)
    except BaseException:
        backups.discard(staged.path)
        raise
    kept = backups.put_in_place(
        staged.path, target, f".before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    )
    if not signed:
        typer.echo(
            f"warning: {path} has no MAC file; restored unsigned, as asked (its schema predates"
            " signed backups): nothing shows it is the file `backup create` wrote",
            err=True,
        )
    _report(opened)
    if kept is not None:
        typer.echo(f"the database it replaced is kept at {kept}")
    typer.echo(
        f"restored {path} to {target}. Before starting the service, record the restore:"
        ' `entryexit audit acknowledge-restore --reason "..."` (audit checkpoints then report'
        " a restore, not a rollback)"
    )
    return 0


@app.command("check")
def check() -> int:
    """Check that the configured database (a restored SQLite file or PostgreSQL database)
    opens with this key directory: every key-encryption key its sealed data names is here,
    and its audit log verifies under this audit key. Exit 2 with the reason if not."""
    _report(_check(load_settings()))
    return 0


def _holds(keys: KeyProvider) -> Callable[[str], bool]:
    def holds(kek_id: str) -> bool:
        try:
            keys.kek(kek_id)
        except (ConfigurationError, OSError):
            return False
        return True

    return holds


def _check(settings: Settings) -> RestoredDatabase:
    from entryexit.bootstrap import check_restored_database

    return check_restored_database(settings)


def _report(opened: RestoredDatabase) -> None:
    sealed = (
        f"{opened.wrapped_keys} wrapped key(s) under key-encryption key(s) {', '.join(opened.keks)}"
        if opened.keks
        else "no sealed data yet"
    )
    typer.echo(
        f"the keys open it: {sealed}; the audit log of {opened.audit_events} events verifies"
    )
