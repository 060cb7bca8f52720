"""fulfilment lifecycle: per-location accept timeout and pick-up hold, pick-up deadline, shipment SLA

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # ALTER statements are not schema-translated: they name the real schema.
    schema = op.get_context().version_table_schema
    op.add_column(
        "locations",
        sa.Column("accept_timeout_minutes", sa.Integer(), server_default="30", nullable=False),
        schema=schema,
    )
    op.add_column(
        "locations",
        sa.Column("pickup_hold_hours", sa.Integer(), server_default="48", nullable=False),
        schema=schema,
    )
    op.add_column("fulfillment_orders", sa.Column("pickup_by", TZ, nullable=True), schema=schema)
    for column in ("sla_due_at", "last_scan_at", "alerted_at"):
        op.add_column("shipments", sa.Column(column, TZ, nullable=True), schema=schema)


def downgrade() -> None:
    schema = op.get_context().version_table_schema
    for column in ("sla_due_at", "last_scan_at", "alerted_at"):
        op.drop_column("shipments", column, schema=schema)
    op.drop_column("fulfillment_orders", "pickup_by", schema=schema)
    op.drop_column("locations", "pickup_hold_hours", schema=schema)
    op.drop_column("locations", "accept_timeout_minutes", schema=schema)
