"""policies and retention

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:17:33.277026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "policies",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=20000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policies_effective_from"), ["effective_from"], unique=False
        )

    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("image", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("image_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("kek_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_captures_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_captures_image_expires_at"), ["image_expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_captures_kek_id"), ["kek_id"], unique=False)

    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_encounters_expires_at"), ["expires_at"], unique=False)

    with op.batch_alter_table("flights", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gallery_expires_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("reference_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_reference_templates_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("reference_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_templates_expires_at"))
        batch_op.drop_column("expires_at")

    with op.batch_alter_table("flights", schema=None) as batch_op:
        batch_op.drop_column("gallery_expires_at")

    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encounters_expires_at"))
        batch_op.drop_column("expires_at")

    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_captures_kek_id"))
        batch_op.drop_index(batch_op.f("ix_captures_image_expires_at"))
        batch_op.drop_index(batch_op.f("ix_captures_expires_at"))
        batch_op.drop_column("kek_id")
        batch_op.drop_column("wrapped_key")
        batch_op.drop_column("image_expires_at")
        batch_op.drop_column("image")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("policy_version")

    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policies_effective_from"))

    op.drop_table("policies")
