"""catalog, channels, inventory

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:20:16.501603
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=30), nullable=False),
        sa.Column("is_core", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("code", name=op.f("uq_channels_code")),
        schema="tenant",
    )
    op.create_table(
        "inventory_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("protect_below", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_settings")),
        schema="tenant",
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("warehouse", "store", "third_party", "drop_ship", name="location_kind", schema="tenant"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("active", "paused", "closed", name="location_status", schema="tenant"),
            nullable=False,
        ),
        sa.Column("status_reason", sa.String(length=300), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=50), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("capabilities", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
        schema="tenant",
    )
    op.create_table(
        "materials",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("barcode", sa.String(length=80), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("weight_g", sa.Integer(), nullable=True),
        sa.Column("volume_cm3", sa.Integer(), nullable=True),
        sa.Column("serial_tracked", sa.Boolean(), nullable=False),
        sa.Column("batch_tracked", sa.Boolean(), nullable=False),
        sa.Column("cold_chain", sa.Boolean(), nullable=False),
        sa.Column("fragile", sa.Boolean(), nullable=False),
        sa.Column("high_value", sa.Boolean(), nullable=False),
        sa.Column("low_stock_threshold", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_materials")),
        sa.UniqueConstraint("barcode", name=op.f("uq_materials_barcode")),
        sa.UniqueConstraint("code", name=op.f("uq_materials_code")),
        schema="tenant",
    )
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("single", "bundle", "gift", "virtual", "service", name="product_kind", schema="tenant"),
            nullable=False,
        ),
        sa.Column("presale", sa.Boolean(), nullable=False),
        sa.Column("expected_ship_date", sa.Date(), nullable=True),
        sa.Column("allow_backorder", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("code", name=op.f("uq_products_code")),
        schema="tenant",
    )
    op.create_table(
        "allocation_pools",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "mode", sa.Enum("shared", "quota", "percent", name="pool_mode", schema="tenant"), nullable=False
        ),
        sa.Column("value", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.CheckConstraint("value >= 0", name=op.f("ck_allocation_pools_non_negative_value")),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["tenant.channels.id"],
            name=op.f("fk_allocation_pools_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_allocation_pools_material_id_materials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_pools")),
        sa.UniqueConstraint(
            "channel_id", "material_id", name=op.f("uq_allocation_pools_channel_id_material_id")
        ),
        schema="tenant",
    )
    op.create_index(
        "uq_allocation_pools_channel_default",
        "allocation_pools",
        ["channel_id"],
        unique=True,
        schema="tenant",
        postgresql_where="material_id IS NULL",
    )
    op.create_table(
        "channel_listings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("external_item_id", sa.String(length=120), nullable=False),
        sa.Column("external_sku_id", sa.String(length=120), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_published_qty", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["tenant.channels.id"],
            name=op.f("fk_channel_listings_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["tenant.products.id"],
            name=op.f("fk_channel_listings_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_listings")),
        sa.UniqueConstraint(
            "channel_id",
            "external_item_id",
            "external_sku_id",
            name=op.f("uq_channel_listings_channel_id_external_item_id_external_sku_id"),
        ),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_channel_listings_channel_id"),
        "channel_listings",
        ["channel_id"],
        unique=False,
        schema="tenant",
    )
    op.create_index(
        op.f("ix_channel_listings_product_id"),
        "channel_listings",
        ["product_id"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "channel_usage",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_channel_usage_non_negative")),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["tenant.channels.id"],
            name=op.f("fk_channel_usage_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_channel_usage_material_id_materials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "material_id", name=op.f("pk_channel_usage")),
        schema="tenant",
    )
    op.create_table(
        "network_stock",
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "on_hand >= 0 AND reserved >= 0 AND safety_stock >= 0", name=op.f("ck_network_stock_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_network_stock_material_id_materials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("material_id", name=op.f("pk_network_stock")),
        schema="tenant",
    )
    op.create_table(
        "product_components",
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_product_components_positive_quantity")),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_product_components_material_id_materials"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["tenant.products.id"],
            name=op.f("fk_product_components_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "material_id", name=op.f("pk_product_components")),
        schema="tenant",
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("backordered", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "released", "consumed", name="reservation_status", schema="tenant"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["tenant.channels.id"],
            name=op.f("fk_reservations_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_reservations_material_id_materials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("reference", "material_id", name=op.f("uq_reservations_reference_material_id")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_reservations_channel_id"), "reservations", ["channel_id"], unique=False, schema="tenant"
    )
    op.create_table(
        "stock_alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_stock_alerts_material_id_materials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_alerts")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_stock_alerts_created_at"), "stock_alerts", ["created_at"], unique=False, schema="tenant"
    )
    op.create_index(
        op.f("ix_stock_alerts_material_id"), "stock_alerts", ["material_id"], unique=False, schema="tenant"
    )
    op.create_table(
        "stock_levels",
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("in_transit", sa.Integer(), nullable=False),
        sa.Column("defective", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "on_hand >= 0 AND reserved >= 0 AND in_transit >= 0 AND defective >= 0 AND safety_stock >= 0",
            name=op.f("ck_stock_levels_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["tenant.locations.id"],
            name=op.f("fk_stock_levels_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_stock_levels_material_id_materials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("location_id", "material_id", name=op.f("pk_stock_levels")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_stock_levels_material_id"), "stock_levels", ["material_id"], unique=False, schema="tenant"
    )
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "receipt",
                "adjustment",
                "reservation",
                "release",
                "shipment",
                "returned",
                "transfer",
                "count",
                "safety",
                name="movement_kind",
                schema="tenant",
            ),
            nullable=False,
        ),
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=True),
        sa.Column("d_on_hand", sa.Integer(), nullable=False),
        sa.Column("d_reserved", sa.Integer(), nullable=False),
        sa.Column("d_in_transit", sa.Integer(), nullable=False),
        sa.Column("d_defective", sa.Integer(), nullable=False),
        sa.Column("d_safety", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["tenant.locations.id"],
            name=op.f("fk_stock_movements_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_stock_movements_material_id_materials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
        schema="tenant",
    )
    op.create_index(
        "ix_stock_movements_material_location",
        "stock_movements",
        ["material_id", "location_id"],
        unique=False,
        schema="tenant",
    )
    op.create_table(
        "stock_sync_requests",
        sa.Column("material_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["tenant.materials.id"],
            name=op.f("fk_stock_sync_requests_material_id_materials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("material_id", name=op.f("pk_stock_sync_requests")),
        schema="tenant",
    )
    op.create_table(
        "stock_publications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["tenant.channel_listings.id"],
            name=op.f("fk_stock_publications_listing_id_channel_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_publications")),
        schema="tenant",
    )
    op.create_index(
        op.f("ix_stock_publications_listing_id"),
        "stock_publications",
        ["listing_id"],
        unique=False,
        schema="tenant",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stock_publications_listing_id"), table_name="stock_publications", schema="tenant")
    op.drop_table("stock_publications", schema="tenant")
    op.drop_table("stock_sync_requests", schema="tenant")
    op.drop_index("ix_stock_movements_material_location", table_name="stock_movements", schema="tenant")
    op.drop_table("stock_movements", schema="tenant")
    op.drop_index(op.f("ix_stock_levels_material_id"), table_name="stock_levels", schema="tenant")
    op.drop_table("stock_levels", schema="tenant")
    op.drop_index(op.f("ix_stock_alerts_material_id"), table_name="stock_alerts", schema="tenant")
    op.drop_index(op.f("ix_stock_alerts_created_at"), table_name="stock_alerts", schema="tenant")
    op.drop_table("stock_alerts", schema="tenant")
    op.drop_index(op.f("ix_reservations_channel_id"), table_name="reservations", schema="tenant")
    op.drop_table("reservations", schema="tenant")
    op.drop_table("product_components", schema="tenant")
    op.drop_table("network_stock", schema="tenant")
    op.drop_table("channel_usage", schema="tenant")
    op.drop_index(op.f("ix_channel_listings_product_id"), table_name="channel_listings", schema="tenant")
    op.drop_index(op.f("ix_channel_listings_channel_id"), table_name="channel_listings", schema="tenant")
    op.drop_table("channel_listings", schema="tenant")
    op.drop_index(
        "uq_allocation_pools_channel_default",
        table_name="allocation_pools",
        schema="tenant",
        postgresql_where="material_id IS NULL",
    )
    op.drop_table("allocation_pools", schema="tenant")
    op.drop_table("products", schema="tenant")
    op.drop_table("materials", schema="tenant")
    op.drop_table("locations", schema="tenant")
    op.drop_table("inventory_settings", schema="tenant")
    op.drop_table("channels", schema="tenant")
    for enum_name in (
        "movement_kind",
        "reservation_status",
        "pool_mode",
        "product_kind",
        "location_status",
        "location_kind",
    ):
        sa.Enum(name=enum_name, schema="tenant").drop(op.get_bind(), checkfirst=True)
