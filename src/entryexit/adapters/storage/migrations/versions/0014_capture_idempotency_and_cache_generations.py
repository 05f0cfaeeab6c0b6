"""capture idempotency keys; cache generation counters

A gate that retries a capture sends the same ``Idempotency-Key``: the key's row, claimed in
the capture's own transaction, makes concurrent retries on any instance resolve to one
capture. ``cache_generations`` lets every process see that shared state it caches (the
watchlist) changed, with one cheap read.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_idempotency_keys",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("flight_id", sa.String(36), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("capture_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_capture_idempotency_keys_expires_at", "capture_idempotency_keys", ["expires_at"]
    )
    op.create_table(
        "cache_generations",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("cache_generations")
    op.drop_index("ix_capture_idempotency_keys_expires_at", "capture_idempotency_keys")
    op.drop_table("capture_idempotency_keys")
