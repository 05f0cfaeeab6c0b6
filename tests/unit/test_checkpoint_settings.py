"""Where the audit checkpoint file goes: never inside the data directory, whose copy (a
backup, a thief's) must not carry the checkpoints that show it is old."""

from __future__ import annotations

from pathlib import Path

import pytest

from entryexit.bootstrap import build_records
from entryexit.config import Settings
from entryexit.errors import ConfigurationError
from tests.fake_storage import FakeBoardQueries, FakeReportQueries, FakeUnitOfWorkFactory
from tests.fakes import StaticKeyProvider


def test_the_default_is_beside_the_key_directory_or_else_beside_the_data_directory(
    tmp_path: Path,
) -> None:
    # Keys inside the data directory (development mode only): beside the data directory.
    inside = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "data" / "keys")
    assert inside.resolved_audit_checkpoint_file == tmp_path / "data-audit-checkpoints.jsonl"
    outside = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "etc" / "keys")
    assert outside.resolved_audit_checkpoint_file == tmp_path / "etc" / "audit-checkpoints.jsonl"
    default = Settings(data_dir=tmp_path / "data")  # keys in the user's config directory
    assert default.resolved_audit_checkpoint_file == (
        default.resolved_key_dir.parent / "audit-checkpoints.jsonl"
    )
    for settings in (inside, outside, default):
        assert not settings.resolved_audit_checkpoint_file.is_relative_to(settings.data_dir)


def test_a_checkpoint_file_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", audit_checkpoint_file=tmp_path / "data" / "sub" / "c.jsonl"
    )
    uow = FakeUnitOfWorkFactory()
    with pytest.raises(ConfigurationError, match="inside the data directory"):
        build_records(
            settings,
            uow=uow,
            reports=FakeReportQueries(uow.database),
            boards=FakeBoardQueries(uow.database),
            keys=StaticKeyProvider(),
        )
