"""The data directory and the SQLite files are readable by their owner only, whatever the
umask, and wider modes found on start are tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from entryexit.adapters.storage.database import (
    create_database_engine,
    owner_only_directory,
)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o000)  # the worst case: everything created world-writable
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_are_owner_only_even_with_an_open_umask(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    owner_only_directory(data)
    database = data / "entryexit.db"
    engine = create_database_engine(f"sqlite+pysqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as connection:  # the WAL and shared-memory files exist now
        connection.execute(text("SELECT x FROM t")).all()
        assert mode(data) == 0o700
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode(path) == 0o600, path
    engine.dispose()


def test_wider_modes_found_on_start_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    database = data / "entryexit.db"
    engine = create_database_engine(f"sqlite+pysqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    database.chmod(0o644)
    owner_only_directory(data)
    create_database_engine(f"sqlite+pysqlite:///{database}").dispose()
    assert mode(data) == 0o700
    assert mode(database) == 0o600
