"""The retention purge deletes a backlog in batches, on both databases: each batch one
transaction with its own audit record, so that a run stopped between batches has recorded
exactly what it deleted, leaves no batch half done, and the next run purges the rest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from entryexit.adapters.crypto.keys import EphemeralKeyProvider
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.tables import (
    CaptureRow,
    DataKeyRow,
    DocumentRow,
    EncounterRow,
    FlightRow,
    ManifestConflictRow,
    ManifestEntryRow,
    ReferenceTemplateRow,
    TravelerRow,
)
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.audit import AuditEvent
from entryexit.services.audit import AuditTrail
from entryexit.services.policies import PolicyService
from entryexit.services.privacy import PrivacyReportService, PurgeService
from entryexit.services.unit_of_work import UnitOfWork

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
DUE = 11  # travelers whose every record is past its retention
BATCH = 4
KINDS = {
    "capture_records": CaptureRow,
    "reference_templates": ReferenceTemplateRow,
    "encounter_records": EncounterRow,
    "manifest_entries": ManifestEntryRow,
    "traveler_documents": DocumentRow,
    # Details another carrier proposed for the document: they go with it.
    "manifest_conflicts": ManifestConflictRow,
    "data_keys": DataKeyRow,
    "travelers": TravelerRow,
}


def _store_backlog(engine: Engine) -> None:
    """``DUE`` travelers on a flight that left in 2020, every kind of their data past its
    retention (as ``benchmarks/bench_purge.py`` generates them, smaller)."""
    ids = range(DUE)
    with engine.begin() as connection:
        connection.execute(
            insert(FlightRow),
            {
                "id": "old",
                "carrier": "EE",
                "number": "1",
                "scheduled_departure": LONG_AGO,
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
                "created_at": LONG_AGO,
                "gallery_version": 0,
                "manifest_version": "u",
            },
        )
        connection.execute(
            insert(TravelerRow), [{"id": f"t{i}", "created_at": LONG_AGO} for i in ids]
        )
        connection.execute(
            insert(DocumentRow),
            [
                {
                    "id": f"d{i}",
                    "traveler_id": f"t{i}",
                    "issuing_state": "XXA",
                    "number_digest": f"n{i}",
                    "citizenship_class": "foreign_national",
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(DataKeyRow),
            [
                {
                    "traveler_id": f"t{i}",
                    "kek_id": "k",
                    "wrapped_key": b"\0",
                    "created_at": LONG_AGO,
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(ManifestEntryRow),
            [
                {
                    "flight_id": "old",
                    "upload_id": "u",
                    "document_id": f"d{i}",
                    "traveler_id": f"t{i}",
                    "added_at": LONG_AGO,
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(ReferenceTemplateRow),
            [
                {
                    "id": f"r{i}",
                    "document_id": f"d{i}",
                    "traveler_id": f"t{i}",
                    "source": "document",
                    "model": "m",
                    "vector": b"\0",
                    "created_at": LONG_AGO,
                    "expires_at": LONG_AGO,
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(CaptureRow),
            [
                {
                    "id": f"c{i}",
                    "flight_id": "old",
                    "gate": "G1",
                    "device": "d",
                    "received_at": LONG_AGO,
                    "decision": "match",
                    "traveler_id": f"t{i}",
                    "expires_at": LONG_AGO,
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(ManifestConflictRow),
            [
                {
                    "id": f"m{i}",
                    "document_id": f"d{i}",
                    "traveler_id": f"t{i}",
                    "flight_id": "old",
                    "proposed_by": "ZZ",
                    "held_by": "EE",
                    "personal": b"\0",
                    "created_at": LONG_AGO,
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(EncounterRow),
            [
                {
                    "id": f"e{i}",
                    "flight_id": "old",
                    "traveler_id": f"t{i}",
                    "direction": "exit",
                    "method": "biometric",
                    "gate": "G1",
                    "device": "d",
                    "occurred_at": LONG_AGO,
                    "policy_version": "default-2",
                    "expires_at": LONG_AGO,
                }
                for i in ids
            ],
        )


class CrashingAudit(AuditTrail):
    """The audit trail of a process that dies while recording its ``crash_at``-th event (a
    kill between two batches, as the purge's next batch is being written)."""

    crash_at: int | None = None
    recorded = 0

    def record(self, uow: UnitOfWork, action: str, *args: object, **kwargs: object) -> AuditEvent:
        if action == "purge":
            self.recorded += 1
            if self.recorded == self.crash_at:
                raise RuntimeError("killed")
        return super().record(uow, action, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    migrate(engine)
    _store_backlog(engine)
    yield engine
    engine.dispose()


def _purge(engine: Engine) -> tuple[PurgeService, CrashingAudit, PrivacyReportService]:
    keys = EphemeralKeyProvider()
    uow = SqlUnitOfWorkFactory(engine, keys)
    audit = CrashingAudit(uow, lambda: NOW, keys)
    policies = PolicyService(uow, lambda: NOW, audit)
    policies.ensure_default()
    report = PrivacyReportService(uow.reports, lambda: NOW, audit, policies)
    return PurgeService(uow, lambda: NOW, audit, None, policies, batch_size=BATCH), audit, report


def _held(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            kind: int(connection.scalar(select(func.count()).select_from(table)) or 0)
            for kind, table in KINDS.items()
        }


def _recorded(audit: AuditTrail) -> list[Mapping[str, object]]:
    return [event.entry.details for event in audit.all_events("purge")]


def _summed(events: list[Mapping[str, object]]) -> dict[str, int]:
    return {kind: sum(int(str(e.get(kind, 0))) for e in events) for kind in KINDS}


def test_a_backlog_is_purged_in_batches_each_recorded(engine: Engine) -> None:
    purge, audit, report = _purge(engine)

    totals = purge.run()

    assert {kind: totals[kind] for kind in KINDS} == dict.fromkeys(KINDS, DUE)
    assert _held(engine) == dict.fromkeys(KINDS, 0)
    events = _recorded(audit)
    # Several transactions, none over the batch size, together the whole run.
    assert len(events) >= DUE // BATCH
    assert all(int(str(e.get(kind, 0))) <= BATCH for e in events for kind in KINDS)
    assert _summed(events) == {kind: totals[kind] for kind in KINDS}
    assert len({e["run"] for e in events}) == 1
    privacy = report.report(LONG_AGO)
    assert privacy["purges"] == {"runs": 1, "deleted": totals}
    assert privacy["overdue_total"] == 0


def test_a_run_killed_between_batches_has_recorded_what_it_deleted(engine: Engine) -> None:
    purge, audit, _ = _purge(engine)
    audit.crash_at = 3  # two batches committed; the third dies as it is recorded

    with pytest.raises(RuntimeError, match="killed"):
        purge.run()

    left = _held(engine)
    recorded = _summed(_recorded(audit))
    assert len(_recorded(audit)) == 2
    # Exactly what the two committed batches deleted is gone, and recorded; the third
    # batch's deletions went with its record.
    assert {kind: DUE - left[kind] for kind in KINDS} == recorded
    assert 0 < recorded["capture_records"] < DUE

    audit.crash_at = None
    purge.run()  # the next run purges the rest

    assert _held(engine) == dict.fromkeys(KINDS, 0)
    assert _summed(_recorded(audit)) == dict.fromkeys(KINDS, DUE)


def test_a_purge_with_nothing_due_is_still_recorded_once(engine: Engine) -> None:
    purge, audit, _ = _purge(engine)
    purge.run()
    before = len(_recorded(audit))

    assert set(purge.run().values()) == {0}

    assert len(_recorded(audit)) == before + 1


def test_statistics_autovacuum_has_not_caught_up_with_are_refreshed_once(engine: Engine) -> None:
    uow = SqlUnitOfWorkFactory(engine, EphemeralKeyProvider())

    def refresh() -> list[str]:
        with uow() as unit:
            analyzed = unit.retention.refresh_statistics()
            unit.commit()
            return analyzed

    first = refresh()
    if engine.dialect.name != "postgresql":
        assert first == []  # SQLite's plans do not go stale this way
        return
    # Never analyzed after the bulk insert: the purge's tables that hold the backlog.
    assert {"travelers", "documents", "manifest_entries", "data_keys"} <= set(first)
    assert refresh() == []  # analyzed now: nothing more to do until the data changes


def _orphaned_conflicts(engine: Engine, count: int) -> None:
    """Conflicts of documents an earlier purge deleted (before conflicts went with them):
    no batch names their traveler any more."""
    with engine.begin() as connection:
        connection.execute(
            insert(ManifestConflictRow),
            [
                {
                    "id": f"orphan{i}",
                    "document_id": f"gone{i}",
                    "traveler_id": f"gone-traveler{i}",
                    "flight_id": "old",
                    "proposed_by": "ZZ",
                    "held_by": "EE",
                    "personal": b"sealed under a shredded key",
                    "citizenship_class": "foreign_national",
                    "created_at": LONG_AGO,
                }
                for i in range(count)
            ],
        )


@pytest.mark.parametrize("batched", [True, False])
def test_conflicts_orphaned_by_earlier_purges_are_purged_and_reported(
    engine: Engine, batched: bool
) -> None:
    _orphaned_conflicts(engine, BATCH + 2)  # more than one batch
    purge, _, report = _purge(engine)
    if not batched:  # the whole purge in one transaction, as the preview runs it
        assert purge.preview(NOW)["manifest_conflicts"] == DUE + BATCH + 2
        return
    totals = purge.run()
    assert totals["manifest_conflicts"] == DUE + BATCH + 2
    assert _held(engine)["manifest_conflicts"] == 0
    privacy = report.report(LONG_AGO)
    deleted = privacy["purges"]["deleted"]  # type: ignore[index]
    assert deleted["manifest_conflicts"] == DUE + BATCH + 2
