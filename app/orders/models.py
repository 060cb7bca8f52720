"""The unified order: what was bought on any channel, in one shape.

``orders`` is the trade (channel, buyer, amounts, delivery address, state); ``order_lines`` what was sold
(resolved to a sales product through the channel listing); ``order_line_materials`` the stock-keeping
units a line takes once bundles are exploded (what routing and reservations work on). Holds carry the
audit reasons an order is waiting on; ``order_events`` is the timeline.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase


class OrderStatus(enum.StrEnum):
    received = "received"  # stored, not yet paid or not yet checked
    on_hold = "on_hold"  # an audit rule or an operator holds it
    awaiting_stock = "awaiting_stock"  # could not be reserved
    presale = "presale"  # reserved against future stock (presale products)
    reserved = "reserved"
    routed = "routed"
    released = "released"  # handed to fulfilment
    partially_shipped = "partially_shipped"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"
    returned = "returned"


MONEY = Numeric(14, 2)


class Order(TenantBase):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_placed_at", "placed_at"),
        Index("ix_orders_address_hash_placed_at", "address_hash", "placed_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(120))
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, name="order_status", schema="tenant"), default=OrderStatus.received
    )
    channel_status: Mapped[str] = mapped_column(String(30))  # normalised platform status (paid, shipped…)
    raw_status: Mapped[str] = mapped_column(String(60), default="")
    business_model: Mapped[str] = mapped_column(String(20), default="b2c")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    address_hash: Mapped[str] = mapped_column(String(64), default="")  # the address alone (scalper rule)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    shipping: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    paid: Mapped[Decimal] = mapped_column(MONEY)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    external_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    promised_ship_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    requested_carrier: Mapped[str | None] = mapped_column(String(60))
    buyer: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # name, nick, platform id
    address: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # name, phone, country, … street
    buyer_note: Mapped[str | None] = mapped_column(Text)
    seller_note: Mapped[str | None] = mapped_column(Text)
    invoice: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Lower-cased name, phone and address, for the console's text search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # When the current status was entered: automations scheduled for that entry check it is unchanged.
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    inbox_id: Mapped[int | None] = mapped_column(BigInteger)  # the payload this version came from
    # Shipped together with other orders of the same buyer and address (``app.routing.merge``).
    merge_id: Mapped[int | None] = mapped_column(
        ForeignKey("order_merges.id", ondelete="SET NULL"), index=True
    )
    # Taken out of a merge by an operator: never merged automatically again.
    unmerged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class OrderMerge(TenantBase):
    """Orders of one buyer to one address, not yet handed over, routed and shipped together
    (``app.routing.merge``). Members point here through ``orders.merge_id``; a group left with one
    order is dissolved (``dissolved_at``) and that order no longer points here."""

    __tablename__ = "order_merges"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200), default="routing")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    dissolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderLine(TenantBase):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "external_line_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    external_line_id: Mapped[str] = mapped_column(String(120))
    external_item_id: Mapped[str] = mapped_column(String(120))
    external_sku_id: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    kind: Mapped[str | None] = mapped_column(String(20))  # the product kind; NULL while unresolved
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    is_gift: Mapped[bool] = mapped_column(Boolean, default=False)
    presale: Mapped[bool] = mapped_column(Boolean, default=False)


class OrderLineMaterial(TenantBase):
    """A line exploded into stock-keeping units (a bundle gives several rows)."""

    __tablename__ = "order_line_materials"
    line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"), primary_key=True)
    material_id: Mapped[int] = mapped_column(
        ForeignKey("materials.id", ondelete="RESTRICT"), primary_key=True
    )
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)


class OrderHold(TenantBase):
    """Why an order waits: an audit rule's code and reason, or an operator's manual hold."""

    __tablename__ = "order_holds"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))


class OrderEvent(TenantBase):
    """The timeline: who or what changed the order, when, from which status to which, and details."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_id_id", "order_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # received, updated, status, hold, release, note, …
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditRule(TenantBase):
    """A tenant's setting for one built-in audit rule (rules without a row use their defaults)."""

    __tablename__ = "audit_rules"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    weight: Mapped[int] = mapped_column(Integer, default=100)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class BlacklistEntry(TenantBase):
    """A hashed phone, email, buyer id or address fingerprint whose orders are held."""

    __tablename__ = "blacklist"
    __table_args__ = (UniqueConstraint("kind", "value_hash"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # phone, email, buyer, address
    value_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Automation(TenantBase):
    """Run an action some minutes after an order enters a state, e.g. cancel unpaid after 30 minutes,
    or release holds of one code after review time."""

    __tablename__ = "order_automations"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    on_status: Mapped[str] = mapped_column(String(30))  # the status entered (e.g. received, on_hold)
    hold_code: Mapped[str | None] = mapped_column(String(40))  # only for holds of this code
    action: Mapped[str] = mapped_column(String(20))  # cancel, release
    after_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
