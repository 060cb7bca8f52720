"""routing policies and decisions, carriers, fulfilment orders, shipments, location connectors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB(astext_type=Text())
NOW = sa.text("now()")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"tenant.{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "routing_policies",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("weights", JSONB, nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("max_shipments", sa.Integer(), nullable=True),
        sa.Column("store_radius_km", sa.Float(), nullable=False),
        sa.Column("options", JSONB, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_policies")),
        schema="tenant",
    )
    op.create_index(
        "uq_routing_policies_active",
        "routing_policies",
        ["active"],
        unique=True,
        schema="tenant",
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("inputs", JSONB, nullable=False),
        sa.Column("decision", JSONB, nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("job_key", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        _fk("routing_decisions", "order_id", "orders", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
        sa.UniqueConstraint("job_key", name=op.f("uq_routing_decisions_job_key")),
        sa.UniqueConstraint("order_id", "attempt", name=op.f("uq_routing_decisions_order_id_attempt")),
        schema="tenant",
    )
    op.create_table(
        "carriers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("sla_days", sa.Float(), nullable=False),
        sa.Column("cold_chain", sa.Boolean(), nullable=False),
        sa.Column("cutoff", sa.String(length=5), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("code", name=op.f("uq_carriers_code")),
        schema="tenant",
    )
    fulfillment_status = sa.Enum(
        "pending",
        "assigned",
        "accepted",
        "picking",
        "packed",
        "shipped",
        "delivered",
        "rejected",
        "cancelled",
        name="fulfillment_status",
        schema="tenant",
    )
    op.create_table(
        "fulfillment_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=True),
        sa.Column("status", fulfillment_status, nullable=False),
        sa.Column("group", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=True),
        sa.Column("accept_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        _fk("fulfillment_orders", "order_id", "orders", "CASCADE"),
        _fk("fulfillment_orders", "location_id", "locations", "RESTRICT"),
        _fk("fulfillment_orders", "decision_id", "routing_decisions", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_orders")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_fulfillment_orders_order_id"),
        "fulfillment_orders",
        ["order_id"],
        unique=False,
        schema="tenant",
    )
    op.create_index(
        "ix_fulfillment_orders_location_id_created_at",
        "fulfillment_orders",
        ["location_id", "created_at"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "fulfillment_order_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fulfillment_order_id", sa.BigInteger(), nullable=False),
        sa.Column("order_line_id", sa.BigInteger(), nullable=True),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _fk("fulfillment_order_lines", "fulfillment_order_id", "fulfillment_orders", "CASCADE"),
        _fk("fulfillment_order_lines", "order_line_id", "order_lines", "SET NULL"),
        _fk("fulfillment_order_lines", "material_id", "materials", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_order_lines")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_fulfillment_order_lines_fulfillment_order_id"),
        "fulfillment_order_lines",
        ["fulfillment_order_id"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fulfillment_order_id", sa.BigInteger(), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("parcels", JSONB, nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _fk("shipments", "fulfillment_order_id", "fulfillment_orders", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_shipments_fulfillment_order_id"),
        "shipments",
        ["fulfillment_order_id"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "location_connectors",
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        _fk("location_connectors", "location_id", "locations", "CASCADE"),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_location_connectors")),
        schema="tenant",
    )
    op.create_table(
        "connector_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fulfillment_order_id", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "sent", "failed", name="connector_delivery_status", schema="tenant"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _fk("connector_deliveries", "fulfillment_order_id", "fulfillment_orders", "CASCADE"),
        _fk("connector_deliveries", "location_id", "locations", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_deliveries")),
        sa.UniqueConstraint(
            "fulfillment_order_id", "event", name=op.f("uq_connector_deliveries_fulfillment_order_id_event")
        ),
        schema="tenant",
    )


def downgrade() -> None:
    for table in (
        "connector_deliveries",
        "location_connectors",
        "shipments",
        "fulfillment_order_lines",
        "fulfillment_orders",
        "carriers",
        "routing_decisions",
    ):
        op.drop_table(table, schema="tenant")
    op.drop_index(
        "uq_routing_policies_active",
        table_name="routing_policies",
        schema="tenant",
        postgresql_where=sa.text("active"),
    )
    op.drop_table("routing_policies", schema="tenant")
    for enum_name in ("connector_delivery_status", "fulfillment_status"):
        sa.Enum(name=enum_name, schema="tenant").drop(op.get_bind(), checkfirst=True)
