"""sealed document details

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:27:22.833093
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Document numbers and names were stored in the clear before this revision. A migration
    # holds no keys and so cannot seal them: rows from before it are removed (pre-release
    # schema; send the manifests and enrol the photos again).
    op.execute("DELETE FROM manifest_entries")
    op.execute("DELETE FROM reference_templates")
    op.execute("DELETE FROM documents")

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_digest", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("personal", sa.LargeBinary(), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_document"), type_="unique")
        batch_op.create_unique_constraint("uq_document_digest", ["issuing_state", "number_digest"])
        batch_op.drop_column("date_of_birth")
        batch_op.drop_column("surname")
        batch_op.drop_column("number")
        batch_op.drop_column("sex")
        batch_op.drop_column("nationality")
        batch_op.drop_column("given_names")


def downgrade() -> None:

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("given_names", sa.VARCHAR(length=100), nullable=True))
        batch_op.add_column(sa.Column("nationality", sa.VARCHAR(length=3), nullable=True))
        batch_op.add_column(sa.Column("sex", sa.VARCHAR(length=1), nullable=True))
        batch_op.add_column(sa.Column("number", sa.VARCHAR(length=20), nullable=False))
        batch_op.add_column(sa.Column("surname", sa.VARCHAR(length=100), nullable=True))
        batch_op.add_column(sa.Column("date_of_birth", sa.DATE(), nullable=True))
        batch_op.drop_constraint("uq_document_digest", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_document"), ["issuing_state", "number"])
        batch_op.drop_column("personal")
        batch_op.drop_column("number_digest")
