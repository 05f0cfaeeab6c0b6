"""fingerprint_templates: enrolled fingers, sealed with the traveler's data key

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("finger", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.ForeignKeyConstraint(["traveler_id"], ["travelers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("traveler_id", "finger", "engine", name="uq_fingerprint_finger"),
    )
    for column in ("document_id", "traveler_id", "expires_at"):
        op.create_index(f"ix_fingerprint_templates_{column}", "fingerprint_templates", [column])


def downgrade() -> None:
    for column in ("expires_at", "traveler_id", "document_id"):
        op.drop_index(f"ix_fingerprint_templates_{column}", table_name="fingerprint_templates")
    op.drop_table("fingerprint_templates")
