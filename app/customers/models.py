"""Customers: one person across channels, found again by any identity they show us.

Personal identifiers (phone, email, platform buyer id) are stored only as keyed hashes, so two orders
from the same phone meet without the phone being readable from this table; a masked form is kept for
display.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase

IDENTITY_KINDS = ("phone", "email", "buyer")


class Customer(TenantBase):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone_masked: Mapped[str | None] = mapped_column(String(40))
    email_masked: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)  # e.g. "vip"
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CustomerIdentity(TenantBase):
    """A hashed identifier pointing at its customer. ``kind`` is phone, email or buyer (platform:id)."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "value_hash"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    value_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
