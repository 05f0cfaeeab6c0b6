"""admissions, watchlist entries and alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admissions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=True),
        sa.Column("admission_class", sa.String(length=16), nullable=False),
        sa.Column("admitted_on", sa.Date(), nullable=True),
        sa.Column("admitted_until", sa.Date(), nullable=True),
        sa.Column("entry_encounter_id", sa.String(length=36), nullable=True),
        sa.Column("entry_flight_id", sa.String(length=36), nullable=True),
        sa.Column("exit_encounter_id", sa.String(length=36), nullable=True),
        sa.Column("exit_flight_id", sa.String(length=36), nullable=True),
        sa.Column("exit_traveler_id", sa.String(length=36), nullable=True),
        sa.Column("exited_on", sa.Date(), nullable=True),
        sa.Column("link", sa.String(length=16), nullable=True),
        sa.Column("link_score", sa.Float(), nullable=True),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("template_model", sa.String(length=64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("admissions", schema=None) as batch_op:
        batch_op.create_index("ix_admissions_open_until", ["exited_on", "admitted_until"])
        batch_op.create_index("ix_admissions_exited_on", ["exited_on"])
        batch_op.create_index(batch_op.f("ix_admissions_traveler_id"), ["traveler_id"])
        batch_op.create_index(batch_op.f("ix_admissions_exit_encounter_id"), ["exit_encounter_id"])
        batch_op.create_index(batch_op.f("ix_admissions_exit_traveler_id"), ["exit_traveler_id"])
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("added_by", sa.String(length=36), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watchlist_entries_model"), ["model"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=True),
        sa.Column("capture_id", sa.String(length=36), nullable=True),
        sa.Column("watchlist_entry_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("disposition_reason", sa.String(length=500), nullable=True),
        sa.Column("dispositioned_by", sa.String(length=36), nullable=True),
        sa.Column("dispositioned_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_status_traveler", ["status", "traveler_id"])
        batch_op.create_index(batch_op.f("ix_alerts_flight_id"), ["flight_id"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("watchlist_entries")
    op.drop_table("admissions")
