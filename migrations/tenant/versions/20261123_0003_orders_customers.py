"""orders, customers, audit rules, channel webhook settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.channels.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER and raw table clauses are not schema-translated: they name the real schema.
    schema = op.get_context().version_table_schema
    for column in (
        sa.Column("webhook_secret", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=50), server_default="Asia/Shanghai", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False),
        sa.Column("default_carrier", sa.String(length=60), nullable=True),
        sa.Column("settings", postgresql.JSONB(astext_type=Text()), server_default="{}", nullable=False),
    ):
        op.add_column("channels", column, schema=schema)
    # Existing channels get a secret of their own (one per row, not a shared default).
    channels = sa.table("channels", sa.column("id"), sa.column("webhook_secret"), schema=schema)
    conn = op.get_bind()
    for (channel_id,) in conn.execute(sa.select(channels.c.id)).all():
        conn.execute(
            channels.update()
            .where(channels.c.id == channel_id)
            .values(webhook_secret=app.channels.models.new_webhook_secret())
        )
    op.alter_column("channels", "webhook_secret", nullable=False, schema=schema)
    op.create_table(
        "audit_rules",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_audit_rules")),
        schema="tenant",
    )
    op.create_table(
        "blacklist",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blacklist")),
        sa.UniqueConstraint("kind", "value_hash", name=op.f("uq_blacklist_kind_value_hash")),
        schema="tenant",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone_masked", sa.String(length=40), nullable=True),
        sa.Column("email_masked", sa.String(length=200), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("blacklisted", sa.Boolean(), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        schema="tenant",
    )
    op.create_table(
        "order_automations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("on_status", sa.String(length=30), nullable=False),
        sa.Column("hold_code", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("after_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_automations")),
        schema="tenant",
    )
    op.create_table(
        "customer_identities",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["tenant.customers.id"],
            name=op.f("fk_customer_identities_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identities")),
        sa.UniqueConstraint("kind", "value_hash", name=op.f("uq_customer_identities_kind_value_hash")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_customer_identities_customer_id"),
        "customer_identities",
        ["customer_id"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "on_hold",
                "awaiting_stock",
                "presale",
                "reserved",
                "routed",
                "released",
                "partially_shipped",
                "shipped",
                "delivered",
                "completed",
                "cancelled",
                "returned",
                name="order_status",
                schema="tenant",
            ),
            nullable=False,
        ),
        sa.Column("channel_status", sa.String(length=30), nullable=False),
        sa.Column("raw_status", sa.String(length=60), nullable=False),
        sa.Column("business_model", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("shipping", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("discount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("paid", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promised_ship_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_carrier", sa.String(length=60), nullable=True),
        sa.Column("buyer", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("address", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("buyer_note", sa.Text(), nullable=True),
        sa.Column("seller_note", sa.Text(), nullable=True),
        sa.Column("invoice", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("extra", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "status_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["tenant.channels.id"],
            name=op.f("fk_orders_channel_id_channels"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["tenant.customers.id"],
            name=op.f("fk_orders_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("channel_id", "external_id", name=op.f("uq_orders_channel_id_external_id")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
        schema="tenant",
    )
    op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"], unique=False, schema="tenant")
    op.create_index(op.f("ix_orders_fingerprint"), "orders", ["fingerprint"], unique=False, schema="tenant")
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"], unique=False, schema="tenant")
    op.create_index(
        "ix_orders_address_hash_placed_at",
        "orders",
        ["address_hash", "placed_at"],
        unique=False,
        schema="tenant",
    )
    op.create_index("ix_orders_status_id", "orders", ["status", "id"], unique=False, schema="tenant")
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=30), nullable=True),
        sa.Column("to_status", sa.String(length=30), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["tenant.orders.id"],
            name=op.f("fk_order_events_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        schema="tenant",
    )
    op.create_index(
        "ix_order_events_order_id_id", "order_events", ["order_id", "id"], unique=False, schema="tenant"
    )
    op.create_table(
        "order_holds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["tenant.orders.id"],
            name=op.f("fk_order_holds_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_holds")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_order_holds_order_id"), "order_holds", ["order_id"], unique=False, schema="tenant"
    )
    op.create_table(
        "order_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("external_line_id", sa.String(length=120), nullable=False),
        sa.Column("external_item_id", sa.String(length=120), nullable=False),
        sa.Column("external_sku_id", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("discount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("is_gift", sa.Boolean(), nullable=False),
        sa.Column("presale", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["tenant.orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["tenant.products.id"],
            name=op.f("fk_order_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint(
            "order_id", "external_line_id", name=op.f("uq_order_lines_order_id_external_line_id")
        ),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_order_lines_order_id"), "order_lines", ["order_id"], unique=False, schema="tenant"
    )
    op.create_table(
        "order_line_materials",
        sa.Column("line_id", sa.BigInteger(), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["tenant.order_lines.id"],
            name=op.f("fk_order_line_materials_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_order_line_materials_material_id_materials"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["tenant.orders.id"],
            name=op.f("fk_order_line_materials_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("line_id", "material_id", name=op.f("pk_order_line_materials")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_order_line_materials_order_id"),
        "order_line_materials",
        ["order_id"],
        unique=False,
        schema="tenant",
    )


def downgrade() -> None:
    for table in (
        "order_line_materials",
        "order_lines",
        "order_holds",
        "order_events",
        "orders",
        "customer_identities",
        "customers",
        "audit_rules",
        "blacklist",
        "order_automations",
    ):
        op.drop_table(table, schema="tenant")
    sa.Enum(name="order_status", schema="tenant").drop(op.get_bind(), checkfirst=True)
    for column in ("webhook_secret", "timezone", "currency", "default_carrier", "settings"):
        op.drop_column("channels", column, schema=op.get_context().version_table_schema)
