"""The network a kiosk asked for its pairing code from (its /24 or /64 prefix), so that
waiting codes are capped per network: before, one global cap of 20 let anyone who could
reach ``/kiosk`` keep every real kiosk from pairing (probe F7). Not under the row's MAC: it
grants nothing, and only counts a waiting code against its network.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kiosk_devices") as batch:
        batch.add_column(sa.Column("pairing_network", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kiosk_devices") as batch:
        batch.drop_column("pairing_network")
