"""manifest_staging: manifests uploaded in short batches, swapped in at the end

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifest_staging",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("staged_at", sa.DateTime(), nullable=False),
        sa.Column("personal", sa.LargeBinary(), nullable=True),
        sa.Column("document_type", sa.String(length=32), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("citizenship_class", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["flight_id"], ["flights.id"]),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.ForeignKeyConstraint(["traveler_id"], ["travelers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("upload_id", "document_id", name="uq_manifest_staging_document"),
    )
    op.create_index("ix_manifest_staging_upload_id", "manifest_staging", ["upload_id"])
    op.create_index("ix_manifest_staging_staged_at", "manifest_staging", ["staged_at"])


def downgrade() -> None:
    op.drop_index("ix_manifest_staging_staged_at", table_name="manifest_staging")
    op.drop_index("ix_manifest_staging_upload_id", table_name="manifest_staging")
    op.drop_table("manifest_staging")
