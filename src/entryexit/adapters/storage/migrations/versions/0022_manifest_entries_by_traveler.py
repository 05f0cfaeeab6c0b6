"""Manifest entries found by traveler: the retention purge asks, for every document and
traveler, whether a manifest still names them; without this index each question scanned every
manifest entry (8 s of write lock with a 10,000-traveler manifest stored, deleting nothing).

Revision ID: 0022
Revises: 0018
Create Date: 2026-11-30 22:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_manifest_entries_traveler_id", "manifest_entries", ["traveler_id"])


def downgrade() -> None:
    op.drop_index("ix_manifest_entries_traveler_id", table_name="manifest_entries")
