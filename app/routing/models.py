"""Routing tables: the tenant's policy, every decision taken (with its inputs, so it can be replayed and
re-simulated). The carriers table is ``app.fulfillment.models.Carrier``: fulfilment ships with
them (SLA clocks) and routing, above it, chooses among them.

``routing_policies`` holds one active row (a partial unique index keeps it to one); it is created lazily
with the engine's defaults the first time a tenant routes or reads it. ``routing_decisions`` keeps, per
routing attempt of an order, the policy as it was, ``engine.stored_inputs`` (order + candidates with the
stock they had), ``Decision.to_dict`` and the English explanation: invariant 6 (decisions are explained).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase


class RoutingPolicy(TenantBase):
    """The engine's ``Policy`` as a row. ``options`` keeps the fields that have no column of their own
    (kind_bonus, allow_line_split, fewest_shipments_first, shipment_penalty)."""

    __tablename__ = "routing_policies"
    __table_args__ = (
        Index("uq_routing_policies_active", "active", unique=True, postgresql_where=text("active")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(20))
    weights: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)  # engine Rule.to_dict list
    max_shipments: Mapped[int | None] = mapped_column(Integer)
    store_radius_km: Mapped[float] = mapped_column(Float, default=3.0)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RoutingDecision(TenantBase):
    """One routing attempt of one order. ``status`` is the engine's (routed, partial, unfillable,
    needs_split_approval) or ``unlocated`` (the delivery address could not be placed on the map: no
    engine run, ``decision`` holds only the reason). ``job_key`` (the outbox message that ran it) makes a
    re-run of the same job a no-op."""

    __tablename__ = "routing_decisions"
    __table_args__ = (UniqueConstraint("order_id", "attempt"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(30))
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    decision: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    explanation: Mapped[str] = mapped_column(Text, default="")
    job_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
