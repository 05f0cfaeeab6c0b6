"""Manifest entries found by traveler and by document, for the retention purge:

* it asks, for every document and traveler, whether a manifest still names them; without an
  index on ``traveler_id`` each question scanned every manifest entry (8 s of write lock with
  a 10,000-traveler manifest stored, deleting nothing);
* SQLite checks the foreign key of every manifest entry when a document is deleted; without
  an index on ``document_id`` each deleted document scanned every manifest entry (30 s to
  delete 5,000 expired documents with 100,000 travelers stored).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 22:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_manifest_entries_traveler_id", "manifest_entries", ["traveler_id"])
    op.create_index("ix_manifest_entries_document_id", "manifest_entries", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_manifest_entries_document_id", table_name="manifest_entries")
    op.drop_index("ix_manifest_entries_traveler_id", table_name="manifest_entries")
