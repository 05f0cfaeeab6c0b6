"""MACs on the rows that grant access or govern decisions: API keys, console users and
sessions, policy versions

A migration holds no keys: rows written before this one are MACed at the first start that
holds them, if the audit log attests them (``adapters/storage/row_macs.py``); until then, and
for any row the log does not attest, they are refused.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "console_users", "console_sessions", "policies")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("mac", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("mac")
