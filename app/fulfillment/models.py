"""Fulfilment tables: what one location must ship for an order, the parcels that left, and the
connectors that hand work to a location's WMS/POS (out) and hear back from it (callbacks in).

As in Shopify's model, the order is what was bought and a fulfilment order is what one location ships:
routing creates one per shipment of its decision, and a rejection or re-route acts on fulfilment
orders, never on the order's lines.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase


class FulfillmentStatus(enum.StrEnum):
    pending = "pending"  # created by routing, not yet handed to the location
    assigned = "assigned"  # handed over (connector delivery sent, or no connector: fulfilled by hand)
    accepted = "accepted"
    picking = "picking"
    packed = "packed"
    shipped = "shipped"
    delivered = "delivered"
    rejected = "rejected"  # the location cannot ship it; its lines are routed again elsewhere
    cancelled = "cancelled"


# Statuses whose lines no longer count as allocated to the location.
CLOSED_WITHOUT_SHIPPING = (FulfillmentStatus.rejected, FulfillmentStatus.cancelled)
# Handed to (or about to be handed to) a location that has not accepted yet: may still be taken away.
NOT_ACCEPTED = (FulfillmentStatus.pending, FulfillmentStatus.assigned)


class FulfillmentOrder(TenantBase):
    __tablename__ = "fulfillment_orders"
    __table_args__ = (Index("ix_fulfillment_orders_location_id_created_at", "location_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("routing_decisions.id", ondelete="SET NULL"))
    status: Mapped[FulfillmentStatus] = mapped_column(
        Enum(FulfillmentStatus, name="fulfillment_status", schema="tenant"), default=FulfillmentStatus.pending
    )
    group: Mapped[str] = mapped_column(String(20), default="all")  # all | in_stock | presale (engine group)
    carrier: Mapped[str | None] = mapped_column(String(60))
    accept_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # stores (O2O) only
    # Pick-up orders: set by the ``ready_for_pickup`` callback (status packed); not collected by then →
    # cancelled (``pickups.expire``).
    pickup_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(500))  # why it was rejected or cancelled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class FulfillmentOrderLine(TenantBase):
    """Units of one material of one order line that the location ships. ``order_line_id`` becomes NULL
    if the channel rewrites the order's lines (allowed until release)."""

    __tablename__ = "fulfillment_order_lines"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(
        ForeignKey("fulfillment_orders.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id", ondelete="SET NULL"))
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)


class Shipment(TenantBase):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(
        ForeignKey("fulfillment_orders.id", ondelete="CASCADE"), index=True
    )
    carrier: Mapped[str | None] = mapped_column(String(60))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    parcels: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    shipped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Carrier SLA (``sla.py``): no carrier scan by ``sla_due_at`` → one alert on the timeline.
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_scan_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def new_connector_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class LocationConnector(TenantBase):
    """Where a location's system (WMS, 3PL, store POS) takes fulfilment orders, and the HMAC key both
    directions are signed with."""

    __tablename__ = "location_connectors"
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100), default=new_connector_secret)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # last attempt failed; ``next_attempt_at`` says when the next one runs (NULL: gave up)


class ConnectorDelivery(TenantBase):
    """One outbound message to a connector (one per fulfilment order and event), with its attempts."""

    __tablename__ = "connector_deliveries"
    __table_args__ = (UniqueConstraint("fulfillment_order_id", "event"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="connector_delivery_status", schema="tenant"),
        default=DeliveryStatus.pending,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Carrier(TenantBase):
    """A carrier and its services. ``services``: ``{"standard": {"rates": {"East": {"first_kg": 8,
    "extra_kg": 2}}, "sla_days": 2}}`` (the full shape, and how one is chosen per shipment:
    ``app.routing.carriers``). ``sla_days``, ``cold_chain`` and ``cutoff`` apply to services that do not
    say otherwise."""

    __tablename__ = "carriers"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    services: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    sla_days: Mapped[float] = mapped_column(Float, default=2.0)
    cold_chain: Mapped[bool] = mapped_column(Boolean, default=False)
    cutoff: Mapped[str | None] = mapped_column(String(5))  # local "HH:MM": later orders leave tomorrow
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
