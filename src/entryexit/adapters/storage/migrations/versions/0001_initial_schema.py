"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:40:48.820677
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "flights",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("carrier", sa.String(length=3), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("scheduled_departure", sa.DateTime(), nullable=False),
        sa.Column("origin", sa.String(length=5), nullable=False),
        sa.Column("destination", sa.String(length=5), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("gallery_version", sa.Integer(), nullable=False),
        sa.Column("gallery_staged_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flights", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flights_carrier"), ["carrier"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_flights_scheduled_departure"), ["scheduled_departure"], unique=False
        )

    op.create_table(
        "travelers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "captures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("gate", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("traveler_id", sa.String(length=36), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["flight_id"],
            ["flights.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_captures_flight_id"), ["flight_id"], unique=False)

    op.create_table(
        "documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("issuing_state", sa.String(length=3), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("surname", sa.String(length=100), nullable=True),
        sa.Column("given_names", sa.String(length=100), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("nationality", sa.String(length=3), nullable=True),
        sa.Column("citizenship_class", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["traveler_id"],
            ["travelers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuing_state", "number", name="uq_document"),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_documents_traveler_id"), ["traveler_id"], unique=False)

    op.create_table(
        "encounters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("gate", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("capture_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["flight_id"],
            ["flights.id"],
        ),
        sa.ForeignKeyConstraint(
            ["traveler_id"],
            ["travelers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flight_id", "traveler_id", name="uq_encounter_flight_traveler"),
    )
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_encounters_flight_id"), ["flight_id"], unique=False)
        batch_op.create_index("ix_encounters_traveler", ["traveler_id"], unique=False)

    op.create_table(
        "manifest_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["flight_id"],
            ["flights.id"],
        ),
        sa.ForeignKeyConstraint(
            ["traveler_id"],
            ["travelers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flight_id", "document_id", name="uq_manifest_document"),
    )
    with op.batch_alter_table("manifest_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_manifest_entries_flight_id"), ["flight_id"], unique=False
        )

    op.create_table(
        "reference_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["traveler_id"],
            ["travelers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reference_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reference_templates_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reference_templates_traveler_id"), ["traveler_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("reference_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_templates_traveler_id"))
        batch_op.drop_index(batch_op.f("ix_reference_templates_document_id"))

    op.drop_table("reference_templates")
    with op.batch_alter_table("manifest_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manifest_entries_flight_id"))

    op.drop_table("manifest_entries")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index("ix_encounters_traveler")
        batch_op.drop_index(batch_op.f("ix_encounters_flight_id"))

    op.drop_table("encounters")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_traveler_id"))

    op.drop_table("documents")
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_captures_flight_id"))

    op.drop_table("captures")
    op.drop_table("travelers")
    with op.batch_alter_table("flights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flights_scheduled_departure"))
        batch_op.drop_index(batch_op.f("ix_flights_carrier"))

    op.drop_table("flights")
    op.drop_table("api_keys")
