"""audit events carry a MAC of their own

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:00:00

The MACs of existing events are written on the first start that holds the audit key, and
only if the existing chain verifies against its signed head (``adapters.storage.audit_macs``):
a migration has no keys, and must not vouch for a chain it has not checked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("mac")
