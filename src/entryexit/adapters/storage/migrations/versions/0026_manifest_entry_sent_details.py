"""What a carrier itself sent for each traveler of its flight's manifest (sealed under the
traveler's data key, like the document's details). "First carrier wins" keeps a document's
details in force when another carrier (or the agency) set them first; a carrier-bound key's
listing of its own flight and the flight's gallery staging now read the carrier's own copy
instead of details it did not send (probe P1 and P4, session 8). Entries from before keep
None: a bound key sees their personal fields empty unless its carrier holds the details.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("manifest_entries") as batch:
        batch.add_column(sa.Column("sent", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manifest_entries") as batch:
        batch.drop_column("sent")
