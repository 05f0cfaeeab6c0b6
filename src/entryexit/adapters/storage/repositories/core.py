"""Prebuilt Core statements on a unit of work's session, for the capture's hot path.

An ORM ``insert(Entity).values(...)`` builds, caches-by-key and bulk-processes a new statement
on every call (~1 ms a capture row on this machine's SQLite), and an ORM select loads an
entity nothing keeps; a statement built once with bind parameters and run on the session's
connection costs a tenth of that (benchmarks/RESULTS.md, issue 17, session 9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.orm import Session


def run(
    session: Session, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """``statement`` in the session's transaction, after the session has written what it
    holds pending (as the ORM's autoflush would before a query of its own), so that a read
    sees the unit of work's own writes."""
    session.flush()
    return session.connection().execute(statement, parameters or {})
