"""tenant schema: activity log

Revision ID: 0001
Revises:
Create Date: 2026-11-23 09:03:42.668019
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_activity_events_dedupe_key")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_activity_events_created_at"),
        "activity_events",
        ["created_at"],
        unique=False,
        schema="tenant",
    )
    op.create_index(
        op.f("ix_activity_events_kind"), "activity_events", ["kind"], unique=False, schema="tenant"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_activity_events_kind"), table_name="activity_events", schema="tenant")
    op.drop_index(op.f("ix_activity_events_created_at"), table_name="activity_events", schema="tenant")
    op.drop_table("activity_events", schema="tenant")
