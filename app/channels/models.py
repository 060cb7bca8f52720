"""Sales channels of a tenant (marketplace stores, web shop, mini-program, POS, B2B, manual).

The catalog (listings) and inventory (allocation pools) reference channels; orders arrive through a
channel's webhook (signed with its secret), bulk GraphQL or CSV, and its adapter normalises them.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantBase

PLATFORMS = (
    "tmall",
    "taobao",
    "jd",
    "douyin",
    "pinduoduo",
    "amazon",
    "shopee",
    "shopify",
    "web",
    "mini_program",
    "pos",
    "b2b",
    "manual",
)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Channel(TenantBase):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(30))
    # Core channels keep selling when stock runs low (see inventory allocation pools).
    is_core: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # HMAC-SHA256 key for this channel's webhooks (and, for Shopify, the app's shared secret).
    webhook_secret: Mapped[str] = mapped_column(String(100), default=new_webhook_secret)
    timezone: Mapped[str] = mapped_column(String(50), default="Asia/Shanghai")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    default_carrier: Mapped[str | None] = mapped_column(String(60))  # e.g. JD orders ship with SF
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # e.g. the CSV column mapping
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
