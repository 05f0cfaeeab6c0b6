"""The data key a manifest conflict's proposed details were sealed under (the key's creation
time: a traveler's key shredded and made anew is another key). The list of conflicts opened
every proposal with the traveler's current key and failed as a whole (500) once one key had
changed; a proposal sealed under another key is now unreadable, like the fake store's, and
cannot be applied (review L7). Rows from before keep None (opened if they still can be).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("manifest_conflicts") as batch:
        batch.add_column(sa.Column("sealed_under", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manifest_conflicts") as batch:
        batch.drop_column("sealed_under")
