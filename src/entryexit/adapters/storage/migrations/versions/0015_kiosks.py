"""kiosks: paired devices, lane assignments, anonymous opt-out requests, notices shown

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kiosk_devices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("carrier", sa.String(3), nullable=True),
        sa.Column("port", sa.String(5), nullable=True),
        sa.Column("lane", sa.String(16), nullable=True),
        sa.Column("paired_at", sa.DateTime(), nullable=True),
        sa.Column("paired_by", sa.String(36), nullable=True),
        sa.Column("session_issued_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "lane_assignments",
        sa.Column("port", sa.String(5), primary_key=True),
        sa.Column("lane", sa.String(16), primary_key=True),
        sa.Column("flight_id", sa.String(36), sa.ForeignKey("flights.id"), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_by", sa.String(36), nullable=False),
    )
    op.create_table(
        "kiosk_opt_out_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("device_id", sa.String(36), sa.ForeignKey("kiosk_devices.id"), nullable=False),
        sa.Column("port", sa.String(5), nullable=False),
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("flight_id", sa.String(36), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("notice_version", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(36), nullable=True),
    )
    op.create_index(
        "ix_kiosk_opt_out_requests_requested_at", "kiosk_opt_out_requests", ["requested_at"]
    )
    op.create_table(
        "kiosk_capture_notices",
        sa.Column("capture_id", sa.String(36), primary_key=True),
        sa.Column("device_id", sa.String(36), sa.ForeignKey("kiosk_devices.id"), nullable=False),
        sa.Column("notice_version", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kiosk_capture_notices")
    op.drop_index("ix_kiosk_opt_out_requests_requested_at", "kiosk_opt_out_requests")
    op.drop_table("kiosk_opt_out_requests")
    op.drop_table("lane_assignments")
    op.drop_table("kiosk_devices")
