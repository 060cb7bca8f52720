"""Inventory: locations, stock per location and material, the network view, the ledger, reservations,
channel allocation pools, low-stock alerts and channel stock publications.

Levels are a cache of the ledger: every change appends a movement in the same transaction, and
``service.check_ledger`` proves the two agree.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase


class LocationKind(enum.StrEnum):
    warehouse = "warehouse"
    store = "store"
    third_party = "third_party"
    drop_ship = "drop_ship"


class LocationStatus(enum.StrEnum):
    active = "active"
    paused = "paused"  # e.g. an outage; stock is kept but not sold
    closed = "closed"


CAPABILITIES = ("ship", "pickup", "same_day")


class Location(TenantBase):
    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[LocationKind] = mapped_column(Enum(LocationKind, name="location_kind", schema="tenant"))
    status: Mapped[LocationStatus] = mapped_column(
        Enum(LocationStatus, name="location_status", schema="tenant"), default=LocationStatus.active
    )
    status_reason: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(500), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    province: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(50), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower ships first on ties
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=lambda: ["ship"])
    daily_capacity: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    # Fulfilment lifecycle (app.fulfillment): a store's time to accept, a pick-up's hold on the shelf.
    accept_timeout_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    pickup_hold_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StockLevel(TenantBase):
    """One location x material. available = on_hand - reserved - safety_stock (defective never sells)."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint(
            "on_hand >= 0 AND reserved >= 0 AND in_transit >= 0 AND defective >= 0 AND safety_stock >= 0",
            name="non_negative",
        ),
    )
    location_id: Mapped[int] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT"), primary_key=True
    )
    material_id: Mapped[int] = mapped_column(
        ForeignKey("materials.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    in_transit: Mapped[int] = mapped_column(Integer, default=0)
    defective: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NetworkStock(TenantBase):
    """Per material, what the whole network can sell: sums over *active* locations, plus every
    reservation. Orders reserve here (before routing picks a location), in one conditional UPDATE."""

    __tablename__ = "network_stock"
    __table_args__ = (
        CheckConstraint("on_hand >= 0 AND reserved >= 0 AND safety_stock >= 0", name="non_negative"),
    )
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)


class MovementKind(enum.StrEnum):
    receipt = "receipt"
    adjustment = "adjustment"
    reservation = "reservation"
    release = "release"
    shipment = "shipment"
    returned = "returned"
    transfer = "transfer"
    count = "count"
    safety = "safety"


class StockMovement(TenantBase):
    """Append-only ledger. location_id is NULL for network reservations (no location chosen yet)."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_material_location", "material_id", "location_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[MovementKind] = mapped_column(Enum(MovementKind, name="movement_kind", schema="tenant"))
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="RESTRICT"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    d_on_hand: Mapped[int] = mapped_column(Integer, default=0)
    d_reserved: Mapped[int] = mapped_column(Integer, default=0)
    d_in_transit: Mapped[int] = mapped_column(Integer, default=0)
    d_defective: Mapped[int] = mapped_column(Integer, default=0)
    d_safety: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(300), default="")
    reference: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReservationStatus(enum.StrEnum):
    active = "active"
    released = "released"
    consumed = "consumed"  # shipped


class Reservation(TenantBase):
    """Units held for one reference (an order) and channel; idempotent on (reference, material)."""

    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("reference", "material_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"), index=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    backordered: Mapped[int] = mapped_column(
        Integer, default=0
    )  # part taken beyond stock (presale/backorder)
    status: Mapped[ReservationStatus] = mapped_column(
        Enum(ReservationStatus, name="reservation_status", schema="tenant"), default=ReservationStatus.active
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PoolMode(enum.StrEnum):
    shared = "shared"  # may sell everything available
    quota = "quota"  # at most `value` units outstanding
    percent = "percent"  # at most `value`% of sellable stock outstanding


class AllocationPool(TenantBase):
    """A channel's share of stock; material_id NULL = the channel's default for every material."""

    __tablename__ = "allocation_pools"
    __table_args__ = (
        UniqueConstraint("channel_id", "material_id"),
        CheckConstraint("value >= 0", name="non_negative_value"),
        Index(
            "uq_allocation_pools_channel_default",
            "channel_id",
            unique=True,
            postgresql_where="material_id IS NULL",
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"))
    mode: Mapped[PoolMode] = mapped_column(Enum(PoolMode, name="pool_mode", schema="tenant"))
    value: Mapped[float] = mapped_column(Numeric(12, 2), default=0)


class ChannelUsage(TenantBase):
    """Units a channel currently holds reserved per material: what pool limits are checked against."""

    __tablename__ = "channel_usage"
    __table_args__ = (CheckConstraint("reserved >= 0", name="non_negative"),)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), primary_key=True)
    reserved: Mapped[int] = mapped_column(Integer, default=0)


class InventorySettings(TenantBase):
    """One row: the low-stock protection rule (below N available, only core channels may sell)."""

    __tablename__ = "inventory_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    protect_below: Mapped[int] = mapped_column(Integer, default=0)


class StockAlert(TenantBase):
    __tablename__ = "stock_alerts"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), index=True)
    available: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class SyncRequest(TenantBase):
    """Materials whose ATP changed since the last channel sync (the debounce buffer)."""

    __tablename__ = "stock_sync_requests"
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StockPublication(TenantBase):
    """What was (or, until the channel adapters exist, would have been) pushed to a channel listing."""

    __tablename__ = "stock_publications"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("channel_listings.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="recorded")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
