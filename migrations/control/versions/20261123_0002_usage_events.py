"""usage events (billing meter)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint(
            "tenant_id", "kind", "reference", name=op.f("uq_usage_events_tenant_id_kind_reference")
        ),
        schema="control",
    )
    op.create_index(
        "ix_usage_events_unreported",
        "usage_events",
        ["tenant_id", "id"],
        unique=False,
        schema="control",
        postgresql_where=sa.text("reported_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("usage_events", schema="control")
