"""First carrier wins: who set a document's details, and the conflicts a carrier's manifest
raises by bringing other details for a document another carrier (or the agency) set.

``documents.details_by`` is a carrier's code or ``(agency)``; documents stored before this
revision keep None (their first change by a carrier still yields to a manifest in force of
another carrier's flight, as before). ``manifest_conflicts`` holds the details not applied,
sealed as on the manifest entry, until the agency applies or dismisses them.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("details_by", sa.String(16), nullable=True))
    op.create_table(
        "manifest_conflicts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("traveler_id", sa.String(36), nullable=False),
        sa.Column("flight_id", sa.String(36), nullable=False),
        sa.Column("proposed_by", sa.String(16), nullable=False),
        sa.Column("held_by", sa.String(16), nullable=True),
        sa.Column("personal", sa.LargeBinary(), nullable=True),
        sa.Column("document_type", sa.String(32), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("citizenship_class", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
    )
    op.create_index(
        "ix_manifest_conflicts_document_open", "manifest_conflicts", ["document_id", "resolved_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_manifest_conflicts_document_open", table_name="manifest_conflicts")
    op.drop_table("manifest_conflicts")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("details_by")
