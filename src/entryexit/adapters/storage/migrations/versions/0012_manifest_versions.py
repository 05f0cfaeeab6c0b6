"""manifest versions: a flight points at the manifest version in force, so replacing a
manifest of any size is one row changed (the staging table is gone: an upload writes its
version's entries directly, invisible until the flight points at them)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 14:30:00
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flights") as batch:
        batch.add_column(sa.Column("manifest_version", sa.String(length=36), nullable=True))
    with op.batch_alter_table("manifest_entries") as batch:
        batch.add_column(sa.Column("upload_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("personal", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("document_type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("expiry", sa.Date(), nullable=True))
        batch.add_column(sa.Column("citizenship_class", sa.String(length=32), nullable=True))
    connection = op.get_bind()
    flights = connection.execute(sa.text("SELECT DISTINCT flight_id FROM manifest_entries"))
    for (flight_id,) in flights.all():
        version = str(uuid.uuid4())
        connection.execute(
            sa.text("UPDATE manifest_entries SET upload_id = :v WHERE flight_id = :f"),
            {"v": version, "f": flight_id},
        )
        connection.execute(
            sa.text("UPDATE flights SET manifest_version = :v WHERE id = :f"),
            {"v": version, "f": flight_id},
        )
    with op.batch_alter_table("manifest_entries") as batch:
        batch.alter_column("upload_id", existing_type=sa.String(length=36), nullable=False)
        batch.drop_constraint("uq_manifest_document", type_="unique")
        batch.create_unique_constraint("uq_manifest_version_document", ["upload_id", "document_id"])
        batch.create_index("ix_manifest_entries_version", ["flight_id", "upload_id"])
    op.drop_index("ix_manifest_staging_staged_at", table_name="manifest_staging")
    op.drop_index("ix_manifest_staging_upload_id", table_name="manifest_staging")
    op.drop_table("manifest_staging")


def downgrade() -> None:
    # Only the versions in force survive: uploads in progress and superseded versions go.
    op.execute(
        "DELETE FROM manifest_entries WHERE upload_id <> "
        "(SELECT manifest_version FROM flights WHERE flights.id = manifest_entries.flight_id) "
        "OR (SELECT manifest_version FROM flights WHERE flights.id = manifest_entries.flight_id) "
        "IS NULL"
    )
    with op.batch_alter_table("manifest_entries") as batch:
        batch.drop_index("ix_manifest_entries_version")
        batch.drop_constraint("uq_manifest_version_document", type_="unique")
        batch.create_unique_constraint("uq_manifest_document", ["flight_id", "document_id"])
        for column in ("citizenship_class", "expiry", "document_type", "personal", "upload_id"):
            batch.drop_column(column)
    with op.batch_alter_table("flights") as batch:
        batch.drop_column("manifest_version")
    op.create_table(
        "manifest_staging",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("flight_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_id", sa.String(length=36), nullable=False),
        sa.Column("staged_at", sa.DateTime(), nullable=False),
        sa.Column("personal", sa.LargeBinary(), nullable=True),
        sa.Column("document_type", sa.String(length=32), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("citizenship_class", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["flight_id"], ["flights.id"]),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.ForeignKeyConstraint(["traveler_id"], ["travelers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("upload_id", "document_id", name="uq_manifest_staging_document"),
    )
    op.create_index("ix_manifest_staging_upload_id", "manifest_staging", ["upload_id"])
    op.create_index("ix_manifest_staging_staged_at", "manifest_staging", ["staged_at"])
