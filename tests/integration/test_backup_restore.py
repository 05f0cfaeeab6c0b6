"""Backup and restore as an operator does it on the embedded SQLite database: a backup taken
while the service runs, work that goes on after it, and the backup restored into a fresh
instance (a new machine) with the key directory and checkpoint file kept elsewhere.

Afterwards the sealed data opens and the restored service matches travelers; checkpoints
report a rollback until the restore is acknowledged, then a restore. A restore with other
keys, or none, is refused with the reason and leaves nothing behind.
(PostgreSQL, with pg_dump and pg_restore: tests/fleet/test_backup_restore.py.)"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.adapters.storage.backups import LAST_UNSIGNED_VERSION, mac_file, migrate_file
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import SqlServices, build_records, build_services
from entryexit.config import Settings
from entryexit.errors import InvalidInputError
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, build_api, capture
from tests.integration.api.test_privacy_api import board_mixed_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]


@dataclass
class Instance:
    """One EntryExit installation as the command line sees it: its data directory and
    database, its key directory and its checkpoint file."""

    root: Path
    data_dir: Path
    key_dir: Path
    checkpoint_file: Path
    database_url: str | None = None

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            key_dir=self.key_dir,
            audit_checkpoint_file=self.checkpoint_file,
            database_url=self.database_url,
        )

    def cli(self, *args: str) -> tuple[int, str, str]:
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "ENTRYEXIT_DATA_DIR": str(self.data_dir),
            "ENTRYEXIT_KEY_DIR": str(self.key_dir),
            "ENTRYEXIT_AUDIT_CHECKPOINT_FILE": str(self.checkpoint_file),
        }
        if self.database_url is not None:
            environment["ENTRYEXIT_DATABASE_URL"] = self.database_url
        done = subprocess.run(
            [sys.executable, "-m", "entryexit", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env=environment,
        )
        return done.returncode, done.stdout, done.stderr


def instance(
    tmp_path: Path, name: str, keys_from: Instance | None = None, database_url: str | None = None
) -> Instance:
    """A fresh installation; with ``keys_from``, the key directory and checkpoint file
    restored from that one's separate backup (here: the same files)."""
    root = tmp_path / name
    root.mkdir()
    return Instance(
        root=root,
        data_dir=root / "data",
        key_dir=keys_from.key_dir if keys_from else root / "keys",
        checkpoint_file=keys_from.checkpoint_file
        if keys_from
        else root / "audit-checkpoints.jsonl",
        database_url=database_url,
    )


@dataclass
class Boarded:
    flight_id: str
    tokens: dict[str, str]
    head_before_backup: int
    head_after_more_work: int


def audit_head(services: SqlServices) -> int:
    with services.uow.engine.connect() as connection:
        return int(connection.execute(text("SELECT sequence FROM audit_head")).scalar_one())


def board_back_up_and_go_on(
    site: Instance, engine: FaceEngine, lfw_dir: Path, back_up: object
) -> Boarded:
    """Board a flight on ``site``, run ``back_up()`` while the service is up, then keep
    working (new flights, a capture, a checkpoint) past the backup."""
    api, services = build_api(site.settings(), engine)
    try:
        with api.client:
            flight_id = board_mixed_flight(api, lfw_dir)
            powell = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
            assert powell.json()["decision"] == "match", powell.text
            head_before_backup = audit_head(services)
            assert callable(back_up)
            back_up()
            for _ in range(3):
                api.create_flight()
            sharon = capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2))
            assert sharon.json()["decision"] == "match", sharon.text
            assert services.checkpoints.write() is not None
            after = audit_head(services)
    finally:
        services.uow.engine.dispose()
    assert after > head_before_backup
    return Boarded(flight_id, api.keys, head_before_backup, after)


def restored_instance_works(
    site: Instance, boarded: Boarded, restored_head: int, engine: FaceEngine, lfw_dir: Path
) -> None:
    """On the restored database: checkpoints report a rollback until the restore is
    acknowledged and a restore after; sealed names and templates open; the service starts,
    knows what was recorded before the backup and nothing after it, and matches."""
    code, _, err = site.cli("audit", "verify", "--checkpoints", str(site.checkpoint_file))
    assert code == 1
    assert "not acknowledged as a restore" in err

    code, out, err = site.cli("audit", "acknowledge-restore", "--reason", "site A disk lost")
    assert code == 0, err
    assert f"restored to sequence {restored_head}" in out
    code, out, err = site.cli("audit", "verify", "--checkpoints", str(site.checkpoint_file))
    assert code == 0, out + err
    assert f"restored at sequence {restored_head} on" in out
    assert "(acknowledged" in out
    assert "site A disk lost" in out

    settings = site.settings()
    records = build_records(settings)
    try:
        surnames = {t.surname for t in records.flights.manifest_travelers(boarded.flight_id)}
        assert surnames == {"POWELL", "SHARON", "URIBE"}
        with records.uow(read_only=True) as uow:
            assert len(uow.travelers.gallery_templates(boarded.flight_id, engine.model)) == 3
    finally:
        records.uow.engine.dispose()  # type: ignore[attr-defined]

    services = build_services(
        settings, engine=engine, keys=FileKeyProvider(settings.resolved_key_dir)
    )
    try:
        with TestClient(create_app(services)) as client:
            api = Api(client, services, boarded.tokens)  # keys made before the backup work
            staged = client.post(
                f"/v1/flights/{boarded.flight_id}/gallery", headers=api.headers("officer")
            )
            assert staged.status_code == 200, staged.text
            again = capture(api, boarded.flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
            assert again.json()["decision"] == "match"
            assert again.json()["already_processed"] is True  # recorded before the backup
            # Sharon's match came after the backup: it is not in the restored database.
            sharon = capture(api, boarded.flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2))
            assert sharon.json()["decision"] == "match"
            assert sharon.json()["already_processed"] is False
    finally:
        services.uow.engine.dispose()


def test_a_backup_taken_while_serving_restores_into_a_fresh_instance(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path
) -> None:
    site_a = instance(tmp_path, "site-a")
    backup = tmp_path / "backups" / "nightly.db"
    backup.parent.mkdir()

    def back_up() -> None:
        code, out, err = site_a.cli("backup", "create", str(backup))
        assert code == 0, err
        assert "holds no key" in out

    boarded = board_back_up_and_go_on(site_a, engine, lfw_dir, back_up)
    assert oct(backup.stat().st_mode)[-3:] == "600"
    with sqlite3.connect(backup) as copy:
        (copied_head,) = copy.execute("SELECT sequence FROM audit_head").fetchone()
    # The backup is the database as of one moment, before the work that followed it.
    assert boarded.head_before_backup <= copied_head < boarded.head_after_more_work

    site_b = instance(tmp_path, "site-b", keys_from=site_a)
    code, out, err = site_b.cli("backup", "restore", str(backup))
    assert code == 0, err
    assert "the keys open it" in out
    assert "acknowledge-restore" in out
    database = site_b.data_dir / "entryexit.db"
    assert oct(database.stat().st_mode)[-3:] == "600"
    assert not list(site_b.data_dir.glob("*.restoring*"))
    restored_instance_works(site_b, boarded, copied_head, engine, lfw_dir)


def test_a_restore_without_the_backups_keys_is_refused_and_leaves_nothing(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path
) -> None:
    site_a = instance(tmp_path, "site-a")
    backup = tmp_path / "nightly.db"

    def back_up() -> None:
        assert site_a.cli("backup", "create", str(backup))[0] == 0

    board_back_up_and_go_on(site_a, engine, lfw_dir, back_up)
    kek_id = (site_a.key_dir / "current-kek").read_text().strip()

    # A thief's (or a careless operator's) fresh key directory: other keys.
    other_keys = instance(tmp_path, "other-keys")
    assert other_keys.cli("keys", "init")[0] == 0
    code, out, err = other_keys.cli("backup", "restore", str(backup))
    assert code == 2, out
    assert f"sealed under key-encryption key(s) {kek_id}" in err
    assert "restore the key directory that was backed up with this database" in err
    assert not other_keys.data_dir.exists() or not any(other_keys.data_dir.iterdir())

    # The right key-encryption key but another audit key: the log does not verify.
    mixed = instance(tmp_path, "mixed-keys")
    assert mixed.cli("keys", "init")[0] == 0
    for path in site_a.key_dir.glob("kek-*.key"):
        (mixed.key_dir / path.name).write_bytes(path.read_bytes())
        (mixed.key_dir / path.name).chmod(0o600)
    (mixed.key_dir / "current-kek").write_text(kek_id + "\n")
    code, _, err = mixed.cli("backup", "restore", str(backup))
    assert code == 2
    assert "does not verify under this key directory's audit key" in err
    assert not any(mixed.data_dir.iterdir())

    # No keys at all.
    keyless = instance(tmp_path, "no-keys")
    code, _, err = keyless.cli("backup", "restore", str(backup))
    assert code == 2
    assert "no key-encryption key" in err
    assert not (keyless.data_dir / "entryexit.db").exists()


def test_restore_refuses_what_is_not_a_backup_and_never_overwrites_silently(
    tmp_path: Path,
) -> None:
    site = instance(tmp_path, "site")
    assert site.cli("keys", "init")[0] == 0
    backup = tmp_path / "backup.db"
    code, _, err = site.cli("backup", "create", str(backup))
    assert code == 2
    assert "there is no database" in err

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    code, _, err = site.cli("backup", "restore", str(not_a_backup))
    assert code == 2
    assert "is not an EntryExit backup: not a readable SQLite database" in err
    other_sqlite = tmp_path / "other.db"
    with sqlite3.connect(other_sqlite) as other:
        other.execute("CREATE TABLE t (x)")
    code, _, err = site.cli("backup", "restore", str(other_sqlite))
    assert code == 2
    assert "has no MAC file" in err  # refused before anything opens it
    code, _, err = site.cli("backup", "restore", "--allow-unsigned", str(other_sqlite))
    assert code == 2
    assert "no alembic_version, audit_events, audit_head, data_keys table" in err

    # A database in use: a backup of it, and a restore over it only with --replace, which
    # keeps the database it replaces.
    records = build_records(site.settings())  # creates the database, with its first events
    records.uow.engine.dispose()  # type: ignore[attr-defined]
    assert site.cli("backup", "create", str(backup))[0] == 0
    code, _, err = site.cli("backup", "create", str(backup))
    assert code == 2
    assert "already exists" in err
    database = site.data_dir / "entryexit.db"
    before = database.read_bytes()
    code, _, err = site.cli("backup", "restore", str(backup))
    assert code == 2
    assert "pass --replace" in err
    assert database.read_bytes() == before
    code, out, err = site.cli("backup", "restore", "--replace", str(backup))
    assert code == 0, err
    (kept,) = site.data_dir.glob("entryexit.db.before-restore-*")
    assert kept.read_bytes() == before
    assert f"kept at {kept}" in out


def test_backup_create_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    site = instance(tmp_path, "site", database_url="postgresql+psycopg://nobody@127.0.0.1:1/x")
    code, _, err = site.cli("backup", "create", str(tmp_path / "x.dump"))
    assert code == 2
    assert "pg_dump --format=custom" in err


def signed_backup(tmp_path: Path) -> tuple[Instance, Path]:
    site = instance(tmp_path, "site")
    assert site.cli("keys", "init")[0] == 0
    records = build_records(site.settings())  # the database, with its first events
    records.uow.engine.dispose()  # type: ignore[attr-defined]
    backup = tmp_path / "nightly.db"
    code, _, err = site.cli("backup", "create", str(backup))
    assert code == 0, err
    assert (tmp_path / "nightly.db.mac").is_file()
    assert oct((tmp_path / "nightly.db.mac").stat().st_mode)[-3:] == "600"
    return site, backup


KEEP_PRINTS = (
    "CREATE TRIGGER keep_prints BEFORE DELETE ON fingerprint_templates"
    " BEGIN SELECT RAISE(IGNORE); END"
)


def test_a_backup_with_a_foreign_trigger_is_refused_signed_or_not(tmp_path: Path) -> None:
    """Probe F8: a trigger added to a backup (it keeps a traveler's prints past a court-ordered
    erasure, or data past retention) was restored into production without a word."""
    site = instance(tmp_path, "site")
    assert site.cli("keys", "init")[0] == 0
    records = build_records(site.settings())
    records.uow.engine.dispose()  # type: ignore[attr-defined]
    database = site.data_dir / "entryexit.db"
    # Added to the database itself, so `backup create` signs it: the MAC verifies, the schema
    # check refuses it.
    with contextlib.closing(sqlite3.connect(database)) as live, live:
        live.execute(KEEP_PRINTS)
    backup = tmp_path / "nightly.db"
    assert site.cli("backup", "create", str(backup))[0] == 0
    fresh = instance(tmp_path, "fresh", keys_from=site)
    code, _, err = fresh.cli("backup", "restore", str(backup))
    assert code == 2
    assert "trigger keep_prints (not made by the migrations)" in err
    assert not (fresh.data_dir / "entryexit.db").exists()
    assert not list(fresh.data_dir.glob("*.restoring*"))

    # Added to a signed backup afterwards: its MAC no longer verifies.
    (tmp_path / "later").mkdir()
    site, backup = signed_backup(tmp_path / "later")
    with contextlib.closing(sqlite3.connect(backup)) as tampered, tampered:
        tampered.execute(KEEP_PRINTS)
    fresh = instance(tmp_path / "later", "fresh", keys_from=site)
    code, _, err = fresh.cli("backup", "restore", str(backup))
    assert code == 2
    assert "fails its MAC check" in err
    assert not (fresh.data_dir / "entryexit.db").exists()
    assert not list(fresh.data_dir.glob("*.restoring*"))
    # With the MAC file gone and --allow-unsigned: a backup this new was signed (L9).
    mac_file(backup).unlink()
    code, _, err = fresh.cli("backup", "restore", "--allow-unsigned", str(backup))
    assert code == 2
    assert "restores only a backup made before backups were signed" in err
    assert not (fresh.data_dir / "entryexit.db").exists()
    # Over an existing database (--replace): it is left as it was.
    database = site.data_dir / "entryexit.db"
    before = database.read_bytes()
    code, _, err = site.cli("backup", "restore", "--replace", "--allow-unsigned", str(backup))
    assert code == 2
    assert database.read_bytes() == before
    assert not list(site.data_dir.glob("entryexit.db.before-restore-*"))


def pre_signing_backup(path: Path, version: str = LAST_UNSIGNED_VERSION) -> Path:
    """A backup as `backup create` wrote it before backups were signed: a database at
    schema ``version`` (made by the migrations), no .mac file beside it."""
    migrate_file(path, version)
    return path


def test_allow_unsigned_restores_only_a_backup_made_before_signing(tmp_path: Path) -> None:
    """Review L9: deleting a backup's .mac file was enough to have it restored unsigned."""
    site, backup = signed_backup(tmp_path)
    mac_file(backup).unlink()  # a swapped file whose .mac the attacker removed
    fresh = instance(tmp_path, "fresh", keys_from=site)
    code, _, err = fresh.cli("backup", "restore", "--allow-unsigned", str(backup))
    assert code == 2
    assert f"newer than {LAST_UNSIGNED_VERSION}" in err
    assert "restores only a backup made before backups were signed" in err
    assert not (fresh.data_dir / "entryexit.db").exists()
    assert not list(fresh.data_dir.glob("*.restoring*"))

    old = pre_signing_backup(tmp_path / "old.db")
    code, _, err = fresh.cli("backup", "restore", str(old))
    assert code == 2
    assert f"(schema version {LAST_UNSIGNED_VERSION} or older), pass --allow-unsigned" in err
    code, out, err = fresh.cli("backup", "restore", "--allow-unsigned", str(old))
    assert code == 0, err
    assert "its schema predates signed backups" in err
    assert "the keys open it" in out


def test_an_edited_row_is_refused_and_an_unsigned_backup_needs_asking(tmp_path: Path) -> None:
    site, backup = signed_backup(tmp_path)
    pristine = backup.read_bytes()
    # A row that no row MAC covers, edited in the file: the schema and the audit log are
    # as they were; only the backup's MAC can tell.
    with contextlib.closing(sqlite3.connect(backup)) as tampered, tampered:
        tampered.execute("UPDATE cache_generations SET generation = generation + 7")
    assert backup.read_bytes() != pristine
    fresh = instance(tmp_path, "fresh", keys_from=site)
    code, _, err = fresh.cli("backup", "restore", str(backup))
    assert code == 2
    assert "fails its MAC check" in err
    assert not (fresh.data_dir / "entryexit.db").exists()
    # The untouched file restores; without its .mac it is refused (it is newer than signing).
    backup.write_bytes(pristine)
    mac = (tmp_path / "nightly.db.mac").read_bytes()
    (tmp_path / "nightly.db.mac").unlink()
    code, _, err = fresh.cli("backup", "restore", str(backup))
    assert code == 2
    assert "--allow-unsigned" in err
    (tmp_path / "nightly.db.mac").write_bytes(mac)
    other = instance(tmp_path, "other", keys_from=site)
    code, _, err = other.cli("backup", "restore", str(backup))
    assert code == 0, err


def test_a_tampered_backup_is_refused_before_anything_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review M2: the MAC was checked only after SQLite (integrity and schema checks) and the
    service stack (migrations, the key check, which write) had opened the staged file. A
    tampered backup (here: a trigger that writes on every audit event, and a view) is now
    refused by its MAC before any SQLite connection to the backup or its staged copy."""
    site, backup = signed_backup(tmp_path)
    pristine = backup.read_bytes()
    with contextlib.closing(sqlite3.connect(backup)) as tampered, tampered:
        tampered.execute("CREATE TABLE loot (x)")
        tampered.execute(
            "CREATE TRIGGER copy_out AFTER INSERT ON audit_events"
            " BEGIN INSERT INTO loot VALUES (new.sequence); END"
        )
        tampered.execute("CREATE VIEW v AS SELECT * FROM loot")
    fresh = instance(tmp_path, "fresh", keys_from=site)
    for name, value in {
        "ENTRYEXIT_DATA_DIR": fresh.data_dir,
        "ENTRYEXIT_KEY_DIR": fresh.key_dir,
        "ENTRYEXIT_AUDIT_CHECKPOINT_FILE": fresh.checkpoint_file,
    }.items():
        monkeypatch.setenv(name, str(value))
    opened: list[str] = []
    real_connect = sqlite3.connect

    def watched_connect(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(str(database))
        connection: sqlite3.Connection = real_connect(database, *args, **kwargs)
        return connection

    monkeypatch.setattr(sqlite3, "connect", watched_connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", watched_connect)

    from entryexit.cli.backup import restore

    with pytest.raises(InvalidInputError) as refused:
        restore(backup, replace=False, allow_unsigned=False)
    assert not [path for path in opened if "nightly" in path or "restoring" in path], opened
    assert "fails its MAC check" in str(refused.value)
    assert not (fresh.data_dir / "entryexit.db").exists()
    assert not list(fresh.data_dir.glob("*.restoring*"))
    # The file as signed is opened (and checked) as before: the watch sees it.
    backup.write_bytes(pristine)
    restore(backup, replace=False, allow_unsigned=False)
    assert [path for path in opened if "restoring" in path]
    assert (fresh.data_dir / "entryexit.db").exists()
