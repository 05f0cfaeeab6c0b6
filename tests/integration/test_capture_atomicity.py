"""A capture is one transaction: killed at any step before it commits, nothing of it is
stored; once it commits, all of it is (alert, encounter, capture, admission hand-off, audit
event). The process really dies (SIGKILL), as it would in a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from entryexit.adapters.storage.tables import (
    AuditEventRow,
    CaptureRow,
    EncounterRow,
    OutboxRow,
)

ROOT = Path(__file__).resolve().parents[2]

# Boards one traveler onto a staged entry flight with the fake face engine, then captures
# them; ``KILL_AT`` names a repository method that kills the process once it has written.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, date, datetime
    from entryexit.bootstrap import build_services
    from entryexit.config import Settings
    from entryexit.domain.access import Principal, Role
    from entryexit.domain.model import (
        CitizenshipClass, Direction, DocumentKey, DocumentType, ManifestTraveler, PhotoSource,
        Sex,
    )
    from entryexit.services.flights import NewFlight
    from tests.fakes import FakeAnalyser, StaticKeyProvider

    settings = Settings(data_dir=sys.argv[1], gallery_threshold=0.9)
    services = build_services(settings, engine=FakeAnalyser(), keys=StaticKeyProvider())
    officer = Principal("k1", "officer", Role.OFFICER)
    flight = services.flights.create(
        NewFlight("EE", "1", datetime(2027, 1, 1, tzinfo=UTC), "AAA", "BBB", Direction.ENTRY)
    )
    document = DocumentKey("XYZ", "N1")
    services.flights.put_manifest(flight.id, [ManifestTraveler(
        "DOE", "J", date(1990, 1, 1), Sex.MALE, "XYZ", CitizenshipClass.FOREIGN_NATIONAL,
        DocumentType.PASSPORT, document, date(2030, 1, 1),
    )])
    services.enrolment.enrol(document, b"face:1", PhotoSource.PASSPORT)
    services.galleries.stage(flight.id)
    kill_at = os.environ.get("KILL_AT")
    if kill_at:
        module, _, name = kill_at.rpartition(".")
        owner = {
            "captures": "entryexit.adapters.storage.repositories.captures.SqlCaptureRepository",
            "outbox": "entryexit.adapters.storage.repositories.outbox.SqlOutboxRepository",
            "audit": "entryexit.adapters.storage.repositories.audit.SqlAuditRepository",
        }[module]
        path, _, cls_name = owner.rpartition(".")
        cls = getattr(__import__(path, fromlist=[cls_name]), cls_name)
        original = getattr(cls, name)

        def dying(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            self._session.flush()  # the row is written to the database, not yet committed
            os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(cls, name, dying)
    outcome = services.captures.process(officer, flight.id, b"face:1", "G1", "cam")
    print(outcome.decision.value)
    """
)


def run(data_dir: Path, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENTRYEXIT_DEV_MODE": "false"}
    env.pop("KILL_AT", None)
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stored(data_dir: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{data_dir / 'entryexit.db'}")
    with engine.connect() as connection:

        def count(query: object) -> int:
            return int(connection.scalar(query) or 0)  # type: ignore[call-overload]

        counts = {
            "captures": count(select(func.count()).select_from(CaptureRow)),
            "encounters": count(select(func.count()).select_from(EncounterRow)),
            "outbox": count(select(func.count()).select_from(OutboxRow)),
            "capture_events": count(
                select(func.count())
                .select_from(AuditEventRow)
                .where(AuditEventRow.action == "capture")
            ),
        }
    engine.dispose()
    return counts


def test_a_capture_that_commits_stores_all_of_it(tmp_path: Path) -> None:
    result = run(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "match"
    assert stored(tmp_path) == {"captures": 1, "encounters": 1, "outbox": 1, "capture_events": 1}


@pytest.mark.parametrize(
    "kill_at", ["captures.add_encounter", "outbox.add", "captures.add_capture", "audit.append"]
)
def test_a_capture_killed_before_it_commits_stores_none_of_it(tmp_path: Path, kill_at: str) -> None:
    result = run(tmp_path, kill_at)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert stored(tmp_path) == {"captures": 0, "encounters": 0, "outbox": 0, "capture_events": 0}
