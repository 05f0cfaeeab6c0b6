"""MACs on kiosk device rows (a paired kiosk acts as a gate key of its carrier)

A migration holds no keys: paired kiosks written before this one are MACed at the first start
that holds them, if a verified "kiosk pair" audit event attests them
(``adapters/storage/row_macs.py``); until then, and for any row the log does not attest, they
are refused (the kiosk shows a pairing code again).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kiosk_devices") as batch:
        batch.add_column(sa.Column("mac", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kiosk_devices") as batch:
        batch.drop_column("mac")
