"""The agency's list of manifest conflicts is read in pages by keyset (creation time, id;
review C3, session 10): an index in that order, so a page costs the same however many
conflicts there are (one carrier upload could open 10,000 before the per-upload bound).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_manifest_conflicts_created", "manifest_conflicts", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_manifest_conflicts_created", table_name="manifest_conflicts")
