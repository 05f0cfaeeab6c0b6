"""Backup and restore on PostgreSQL as docs/operations.md tells an operator: `pg_dump
--format=custom` while the service runs, more work after it, `pg_restore` into a fresh
database for a fresh instance holding the key directory and checkpoint file from their own
backup, `entryexit backup check`, `entryexit audit acknowledge-restore`, then `audit verify
--checkpoints` reports the restore and the sealed data opens; with other keys the check
refuses the database with the reason.

Debian's PostgreSQL client tools (pg_dump, pg_restore) against the test server
(ENTRYEXIT_TEST_POSTGRES_URL, started by scripts/test)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from entryexit.biometrics import FaceEngine
from tests.integration.conftest import postgres_database
from tests.integration.test_backup_restore import (
    board_back_up_and_go_on,
    instance,
    restored_instance_works,
)

pytestmark = [pytest.mark.fleet, pytest.mark.postgres, pytest.mark.models, pytest.mark.lfw]
TIME_BOX_SECONDS = 180


def client_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found (Debian's postgresql-client; scripts/lib/postgres.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The connection string the client tools take, and the password in their environment
    (PGPASSWORD), never on their command line where `ps` shows it."""
    url = make_url(database_url)
    conninfo = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    return conninfo, {**os.environ, "PGPASSWORD": url.password or ""}


@pytest.fixture
def source_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture
def target_url() -> Iterator[str]:
    yield from postgres_database()


def run(command: list[str], environment: dict[str, str]) -> None:
    done = subprocess.run(
        command,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIME_BOX_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_pg_dump_taken_while_serving_restores_into_a_fresh_instance(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path, source_url: str, target_url: str
) -> None:
    pg_dump, pg_restore = client_tool("pg_dump"), client_tool("pg_restore")
    site_a = instance(tmp_path, "site-a", database_url=source_url)
    dump = tmp_path / "nightly.dump"

    def back_up() -> None:
        conninfo, environment = libpq(source_url)
        run([pg_dump, "--format=custom", f"--file={dump}", conninfo], environment)

    boarded = board_back_up_and_go_on(site_a, engine, lfw_dir, back_up)

    conninfo, environment = libpq(target_url)
    run(
        [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "-d", conninfo, str(dump)],
        environment,
    )
    restored = create_engine(target_url)
    try:
        with restored.connect() as connection:
            restored_head = int(
                connection.execute(text("SELECT sequence FROM audit_head")).scalar_one()
            )
    finally:
        restored.dispose()
    assert boarded.head_before_backup <= restored_head < boarded.head_after_more_work

    # Other keys: the check says so, and which key is missing.
    other_keys = instance(tmp_path, "other-keys", database_url=target_url)
    assert other_keys.cli("keys", "init")[0] == 0
    code, out, err = other_keys.cli("backup", "check")
    assert code == 2, out
    kek_id = (site_a.key_dir / "current-kek").read_text().strip()
    assert f"sealed under key-encryption key(s) {kek_id}" in err
    code, _, err = instance(tmp_path, "no-keys", database_url=target_url).cli("backup", "check")
    assert code == 2
    assert "no key-encryption key" in err

    site_b = instance(tmp_path, "site-b", keys_from=site_a, database_url=target_url)
    code, out, err = site_b.cli("backup", "check")
    assert code == 0, err
    assert "the keys open it" in out
    code, _, err = site_b.cli("backup", "create", str(tmp_path / "x"))
    assert code == 2
    assert "pg_dump --format=custom" in err
    restored_instance_works(site_b, boarded, restored_head, engine, lfw_dir)
