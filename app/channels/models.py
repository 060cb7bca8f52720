"""Sales channels of a tenant (marketplace stores, web shop, mini-program, POS, B2B, manual).

The catalog (listings) and inventory (allocation pools) reference channels; adapters and webhooks come
with the orders work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, String, func
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


class Channel(TenantBase):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(30))
    # Core channels keep selling when stock runs low (see inventory allocation pools).
    is_core: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
