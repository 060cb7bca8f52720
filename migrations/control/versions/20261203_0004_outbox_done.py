"""outbox: done_at (a row is done when its job has run, not when Redis accepted it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("done_at", sa.DateTime(timezone=True), nullable=True), schema="control")
    # Rows sent before this revision count as done: nothing can tell which of them ran.
    op.execute("UPDATE control.outbox SET done_at = sent_at WHERE sent_at IS NOT NULL")
    op.create_index(
        "ix_outbox_unfinished",
        "outbox",
        ["sent_at"],
        unique=False,
        schema="control",
        postgresql_where=sa.text("sent_at IS NOT NULL AND done_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unfinished", table_name="outbox", schema="control")
    op.drop_column("outbox", "done_at", schema="control")
