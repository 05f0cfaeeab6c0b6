"""Alembic environment: EntryExit runs migrations in-process with its own connection."""

from __future__ import annotations

from alembic import context

from entryexit.adapters.storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("EntryExit migrations run through entryexit.adapters.storage.database")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
