"""The audit log against rollback: checkpoints signed with a key of their own leave the
database, so a log cut back to an earlier valid head, or wiped, is caught even when every
remaining event and the head verify (a saved head restored, or the audit MAC key stolen);
a checkpoint cannot be forged without the Ed25519 private key; and a restore from backup
that an administrator acknowledged reads as a restore, not a rollback.

Before checkpoints, each of these attacks left `audit verify` saying intact.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from entryexit.adapters.crypto.checkpoints import (
    Ed25519CheckpointSigner,
    format_checkpoint,
    new_checkpoint_seed,
)
from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.adapters.storage.repositories.audit import _audit_row
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import build_services
from entryexit.domain.audit import RESTORE_ACTION, AuditEntry, chain, sign_head, with_mac
from entryexit.domain.audit_checkpoints import Checkpoint, RestoreStatement
from tests.integration.api.conftest import Api

pytestmark = [pytest.mark.models]


def sql(api: Api, statement: str, **params: object) -> None:
    with api.services.uow.engine.begin() as connection:
        connection.execute(text(statement), params)


def head_row(api: Api) -> dict[str, Any]:
    with api.services.uow.engine.connect() as connection:
        row = connection.execute(text("SELECT sequence, hash, signature FROM audit_head"))
        return dict(row.mappings().one())


def work(api: Api, flights: int = 3) -> int:
    for _ in range(flights):
        api.create_flight()
    return head_row(api)["sequence"]  # type: ignore[no-any-return]


def verification(api: Api) -> dict[str, Any]:
    response = api.client.get("/v1/audit/verification", headers=api.headers("auditor"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def checkpoint_file(api: Api) -> Path:
    return api.services.settings.resolved_audit_checkpoint_file


def mac_key(api: Api) -> bytes:
    return FileKeyProvider(api.services.settings.resolved_key_dir).audit_key()


def cut_back_to(api: Api, sequence: int, head: dict[str, Any] | None = None) -> None:
    """Delete the events after ``sequence`` and set the head there: the saved head row if
    given (a rollback to a copy), else re-signed with the stolen audit MAC key."""
    sql(api, "DELETE FROM audit_events WHERE sequence > :s", s=sequence)
    if head is None:
        with api.services.uow.engine.connect() as connection:
            kept = connection.execute(
                text("SELECT hash FROM audit_events WHERE sequence = :s"), {"s": sequence}
            ).scalar_one()
        head = {
            "sequence": sequence,
            "hash": kept,
            "signature": sign_head(mac_key(api), sequence, kept),
        }
    sql(
        api,
        "UPDATE audit_head SET sequence = :sequence, hash = :hash, signature = :signature",
        **head,
    )


@dataclass
class Cli:
    """The ``entryexit`` command as an administrator runs it: its own process, its own
    connections to the database."""

    environment: dict[str, str]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [sys.executable, "-m", "entryexit", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=self.environment,
        )
        return done.returncode, done.stdout, done.stderr

    def public_key(self, tmp_path: Path) -> Path:
        code, pem, err = self("audit", "public-key")
        assert code == 0, err
        path = tmp_path / "checkpoint-key.pem"
        path.write_text(pem)
        return path


@pytest.fixture
def cli(api: Api) -> Cli:
    settings = api.services.settings
    return Cli(
        {
            "PATH": "/usr/bin:/bin",
            "HOME": str(settings.data_dir.parent),
            "ENTRYEXIT_DATA_DIR": str(settings.data_dir),
            # The service's own keys and checkpoint file (both outside the data directory).
            "ENTRYEXIT_KEY_DIR": str(settings.resolved_key_dir),
            "ENTRYEXIT_AUDIT_CHECKPOINT_FILE": str(settings.resolved_audit_checkpoint_file),
            "ENTRYEXIT_DATABASE_URL": settings.resolved_database_url,
        }
    )


@pytest.mark.parametrize("how", ["saved head restored", "head re-signed with the stolen MAC key"])
def test_newest_events_deleted_and_an_earlier_valid_head_restored_are_caught(
    api: Api, cli: Cli, tmp_path: Path, how: str
) -> None:
    saved_at = work(api)
    saved = head_row(api)
    work(api)
    assert api.services.checkpoints.write() is not None  # the interval's checkpoint
    cut_back_to(api, saved_at, saved if how.startswith("saved") else None)
    # Every remaining event and the head verify: the service goes on, the chain says intact.
    assert api.client.get("/readyz").status_code == 200
    api.create_flight()
    assert api.services.audit.verify().ok
    result = verification(api)
    assert result["ok"] is False
    assert result["problems"] == []
    (problem,) = result["checkpoints"]["problems"]
    assert "not acknowledged as a restore" in problem
    code, _, err = cli(
        "audit",
        "verify",
        "--checkpoints",
        str(checkpoint_file(api)),
        "--public-key",
        str(cli.public_key(tmp_path)),
    )
    assert code == 1
    assert "not acknowledged as a restore" in err


def test_a_wiped_log_is_caught(api: Api, cli: Cli) -> None:
    work(api)
    api.services.checkpoints.write()
    sql(api, "DELETE FROM audit_events")
    sql(api, "DELETE FROM audit_head")
    assert api.services.audit.verify().ok  # an empty log is a valid log
    result = verification(api)
    assert result["ok"] is False
    assert any("the whole log was wiped" in p for p in result["checkpoints"]["problems"])
    api.create_flight()  # a new log from the start: still shorter than the checkpoint
    assert any("rollback" in p for p in verification(api)["checkpoints"]["problems"])
    code, _, err = cli("audit", "verify", "--checkpoints", str(checkpoint_file(api)))
    assert code == 1
    assert "events were removed" in err


def test_a_checkpoint_cannot_be_forged_without_the_private_key(api: Api, cli: Cli) -> None:
    """The thief has the database, the audit MAC key and the checkpoint file, not the
    Ed25519 private key: after a rollback, the file is rewritten with checkpoints of the
    rolled-back log signed with a key of the thief's own."""
    saved_at = work(api)
    work(api)
    api.services.checkpoints.write()
    cut_back_to(api, saved_at)
    own_key = Ed25519CheckpointSigner(new_checkpoint_seed)
    with api.services.uow.engine.connect() as connection:
        kept = connection.execute(
            text("SELECT hash FROM audit_events WHERE sequence = :s"), {"s": saved_at}
        ).scalar_one()
    forged = Checkpoint(saved_at, kept, api.services.clock())
    forged = replace(forged, signature=own_key.sign(forged.message()))
    checkpoint_file(api).write_text(format_checkpoint(forged) + "\n")
    result = verification(api)
    assert result["ok"] is False
    assert result["checkpoints"]["checked"] == 0
    assert "signature does not verify" in result["checkpoints"]["problems"][0]
    # An emptied file proves nothing either.
    checkpoint_file(api).write_text("")
    assert "no checkpoints found" in verification(api)["checkpoints"]["problems"][0]


def test_a_restore_from_backup_acknowledged_reads_as_a_restore(
    api: Api, cli: Cli, tmp_path: Path
) -> None:
    backup_at = work(api)
    backup_head = head_row(api)
    work(api)
    api.services.checkpoints.write()
    cut_back_to(api, backup_at, backup_head)  # the database restored from last night's backup
    assert verification(api)["ok"] is False  # unacknowledged, a restore is a rollback
    # (that verification request is itself an event: the head acknowledged is after it)
    backup_at = head_row(api)["sequence"]
    code, out, _ = cli("audit", "acknowledge-restore", "--reason", "disk failure, restored")
    assert code == 0, out
    assert f"restored to sequence {backup_at}" in out
    api.create_flight()
    api.services.checkpoints.write()
    result = verification(api)
    assert result["ok"] is True, result
    (restore,) = result["checkpoints"]["restores"]
    assert f"restored at sequence {backup_at} on" in restore
    assert "(acknowledged" in restore
    assert "disk failure, restored" in restore
    # (The interactive check holds the log against the last checkpoint only; the full walk
    # below goes through every checkpoint, the one the restore superseded too.)
    # Checkpoints written after it acknowledge it, signed.
    lines = checkpoint_file(api).read_text().splitlines()
    assert f"[{backup_at + 1}]" in lines[-1]
    code, out, _ = cli(
        "audit",
        "verify",
        "--checkpoints",
        str(checkpoint_file(api)),
        "--public-key",
        str(cli.public_key(tmp_path)),
    )
    assert code == 0
    assert f"restored at sequence {backup_at} on" in out
    assert "1 superseded by an acknowledged restore" in out, out


def test_a_restore_event_made_with_the_stolen_mac_key_is_not_an_acknowledgement(
    api: Api,
) -> None:
    saved_at = work(api)
    work(api)
    api.services.checkpoints.write()
    cut_back_to(api, saved_at)
    key = mac_key(api)
    with api.services.uow.engine.connect() as connection:
        kept = connection.execute(
            text("SELECT hash FROM audit_events WHERE sequence = :s"), {"s": saved_at}
        ).scalar_one()
    statement = RestoreStatement(saved_at, kept, "routine", api.services.clock())
    details = statement.details(
        Ed25519CheckpointSigner(new_checkpoint_seed).sign(statement.message())
    )
    forged = with_mac(
        key,
        chain(
            AuditEntry(api.services.clock(), RESTORE_ACTION, "acknowledged", details=details),
            saved_at + 1,
            kept,
        ),
    )
    with Session(api.services.uow.engine) as session:
        session.add(_audit_row(forged))
        session.commit()
    sql(
        api,
        "UPDATE audit_head SET sequence = :s, hash = :h, signature = :g",
        s=forged.sequence,
        h=forged.hash,
        g=sign_head(key, forged.sequence, forged.hash),
    )
    assert api.client.get("/readyz").status_code == 200  # the MAC key makes it fit
    result = verification(api)
    assert result["ok"] is False
    assert result["checkpoints"]["restores"] == []
    problems = result["checkpoints"]["problems"]
    assert any("does not verify (forged)" in p for p in problems)
    assert any("not acknowledged as a restore" in p for p in problems)


def test_the_service_writes_checkpoints_at_start_at_intervals_and_at_shutdown(
    api: Api, engine: FaceEngine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = api.services.settings.model_copy(update={"audit_checkpoint_interval_seconds": 0.05})
    services = build_services(
        settings, engine=engine, keys=FileKeyProvider(settings.resolved_key_dir)
    )
    path = settings.resolved_audit_checkpoint_file
    before = len(path.read_text().splitlines())
    with caplog.at_level("INFO", logger="entryexit.audit.checkpoints"):
        with TestClient(create_app(services)) as client:
            assert len(path.read_text().splitlines()) == before + 1  # at start
            response = client.post(
                "/v1/flights",
                json={
                    "carrier": "EE",
                    "number": "9",
                    "scheduled_departure": "2030-01-01T10:00:00Z",
                    "origin": "AAA",
                    "destination": "BBB",
                    "direction": "exit",
                },
                headers=api.headers("admin"),
            )
            assert response.status_code == 201
            wait_for(lambda: len(path.read_text().splitlines()) >= before + 2)
            sequence = head_row(api)["sequence"]
            assert f'"sequence":{sequence}' in path.read_text().splitlines()[-1]
            client.get("/healthz")
        after_interval = len(path.read_text().splitlines())
    logged = [r.getMessage() for r in caplog.records if "audit checkpoint: " in r.getMessage()]
    assert logged
    assert logged[-1].endswith(path.read_text().splitlines()[-1])
    assert after_interval >= before + 2
    services.uow.engine.dispose()


def test_shutdown_writes_the_last_checkpoint(api: Api, engine: FaceEngine) -> None:
    settings = api.services.settings  # the default interval: nothing between start and stop
    services = build_services(
        settings, engine=engine, keys=FileKeyProvider(settings.resolved_key_dir)
    )
    path = settings.resolved_audit_checkpoint_file
    with TestClient(create_app(services)) as client:
        started = len(path.read_text().splitlines())
        client.get("/v1/audit/events", headers=api.headers("auditor"))  # an access event
    lines = path.read_text().splitlines()
    assert len(lines) == started + 1
    assert f'"sequence":{head_row(api)["sequence"]}' in lines[-1]
    services.uow.engine.dispose()


def test_the_checkpoint_file_is_outside_the_data_directory(api: Api) -> None:
    settings = api.services.settings
    path = settings.resolved_audit_checkpoint_file
    assert not path.resolve().is_relative_to(settings.data_dir.resolve())
    assert path.exists()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_interactive_check_walks_from_the_last_checkpoint_not_the_whole_log(
    api: Api, cli: Cli
) -> None:
    """Probe F6: every verification request walked the whole log (minutes of CPU and a read
    transaction as long at a port's volume). It now walks what was written since the last
    signed checkpoint; the full walk is the CLI's."""
    work(api, flights=30)
    checkpoint = api.services.checkpoints.write()
    assert checkpoint is not None
    after = work(api, flights=2)
    body = verification(api)
    assert body["ok"] is True
    assert body["checked_from_sequence"] == checkpoint.sequence
    # The checkpoint's own event (its MAC, its hash against the checkpoint) and those after it.
    assert body["events"] == after - checkpoint.sequence + 1
    code, out, err = cli("audit", "verify", "--checkpoints", str(checkpoint_file(api)))
    assert code == 0, out + err
    # Changed after the checkpoint: named. Rolled back below it: named, as a rollback.
    sql(
        api,
        "UPDATE audit_events SET action = 'x' WHERE sequence = :s",
        s=checkpoint.sequence + 1,
    )
    changed = verification(api)
    assert (changed["ok"], changed["first_broken_sequence"]) == (False, checkpoint.sequence + 1)
    cut_back_to(api, checkpoint.sequence - 5)
    rolled_back = verification(api)
    assert rolled_back["ok"] is False
    assert any("removed" in p for p in rolled_back["checkpoints"]["problems"])
