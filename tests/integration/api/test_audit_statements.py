"""The audit chain's write, while the head is locked: as few statements as each database
allows (SQLite: one read of the head and the last event, the event's insert, the head's
update; PostgreSQL: the head's locking read and the last event's read apart). SQLite and
PostgreSQL. The chain's checks themselves are held by test_audit_attacks.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event

from entryexit.domain.audit import AuditEntry
from tests.integration.api.conftest import Api


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The statements this thread runs (the service's own workers poll the same engine)."""
    seen: list[str] = []
    mine = threading.current_thread()

    def record(*args: Any) -> None:
        if threading.current_thread() is mine:
            seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_an_audit_append_runs_three_statements_on_sqlite_four_on_postgresql(api: Api) -> None:
    engine = api.services.uow.engine
    entry = AuditEntry(occurred_at=datetime.now(UTC), action="test", outcome="ok")
    with api.services.uow() as uow:
        uow.audit.events(limit=1)  # the transaction has begun
        with statements(engine) as seen:
            appended = uow.audit.append(entry)
        uow.commit()
    expected = 3 if engine.dialect.name == "sqlite" else 4
    assert len(seen) == expected, seen
    assert not any("SAVEPOINT" in statement.upper() for statement in seen)
    with api.services.uow(read_only=True) as uow:
        last = uow.audit.last()
        assert uow.audit.integrity_problem() is None  # the head signed at the new event
    assert last == appended
