"""how many photos an admission's entry template fuses

The biometric exit link held every stay to the strictest 1:N threshold; the gate holds each
entry to its own reference count's. The count is kept with the template so the exit link can
do the same. Rows written before this one stay NULL (unknown): the strictest threshold.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admissions") as batch:
        batch.add_column(sa.Column("template_photos", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("admissions") as batch:
        batch.drop_column("template_photos")
