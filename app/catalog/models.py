"""Catalog in three layers: materials (what a warehouse counts), sales products (what is sold),
channel listings (a channel's own item/SKU id -> sales product)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import TenantBase


class ProductKind(enum.StrEnum):
    single = "single"  # one material
    bundle = "bundle"  # a kit of components, exploded on orders
    gift = "gift"  # only given away, never sold
    virtual = "virtual"  # no stock (e.g. a card)
    service = "service"  # creates a service task (e.g. installation), no stock


STOCKED_KINDS = (ProductKind.single, ProductKind.bundle, ProductKind.gift)


class Material(TenantBase):
    __tablename__ = "materials"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    barcode: Mapped[str | None] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # colour, size, ...
    weight_g: Mapped[int | None] = mapped_column(Integer)
    volume_cm3: Mapped[int | None] = mapped_column(Integer)
    serial_tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    batch_tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    cold_chain: Mapped[bool] = mapped_column(Boolean, default=False)
    fragile: Mapped[bool] = mapped_column(Boolean, default=False)
    high_value: Mapped[bool] = mapped_column(Boolean, default=False)
    # Network-wide available below this raises a low-stock alert; None = no alerting.
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Product(TenantBase):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[ProductKind] = mapped_column(Enum(ProductKind, name="product_kind", schema="tenant"))
    presale: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_ship_date: Mapped[date | None] = mapped_column(Date)
    allow_backorder: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    components: Mapped[list[ProductComponent]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="ProductComponent.material_id"
    )


class ProductComponent(TenantBase):
    __tablename__ = "product_components"
    __table_args__ = (CheckConstraint("quantity > 0", name="positive_quantity"),)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    material_id: Mapped[int] = mapped_column(
        ForeignKey("materials.id", ondelete="RESTRICT"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)


class ChannelListing(TenantBase):
    __tablename__ = "channel_listings"
    __table_args__ = (UniqueConstraint("channel_id", "external_item_id", "external_sku_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    external_item_id: Mapped[str] = mapped_column(String(120))
    external_sku_id: Mapped[str] = mapped_column(String(120), default="")  # "" when the item has no SKUs
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_published_qty: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
