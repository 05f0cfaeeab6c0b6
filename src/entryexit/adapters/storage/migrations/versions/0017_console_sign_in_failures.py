"""console sign-in failures per account and client address

A lock-out per account alone let anyone lock an officer out by typing five wrong passwords
from anywhere. Failures are now counted per (account, hashed client address): an attacker's
address is locked for that account, the officer's own workstation is not. The account's own
counter stays as a ceiling over all addresses.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sign_in_failures",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("console_users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source_key", sa.String(64), primary_key=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_console_sign_in_failures_last_failure_at",
        "console_sign_in_failures",
        ["last_failure_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_console_sign_in_failures_last_failure_at", table_name="console_sign_in_failures"
    )
    op.drop_table("console_sign_in_failures")
