"""case_fingerprints: the live prints an officer submits on a console case, sealed under the
checked traveler's data key, kept for the case's evidence period

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_fingerprints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("capture_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("finger", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("officer_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("capture_id", "traveler_id", "expires_at"):
        op.create_index(f"ix_case_fingerprints_{column}", "case_fingerprints", [column])


def downgrade() -> None:
    for column in ("expires_at", "traveler_id", "capture_id"):
        op.drop_index(f"ix_case_fingerprints_{column}", table_name="case_fingerprints")
    op.drop_table("case_fingerprints")
