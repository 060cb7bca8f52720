"""Usage events: what each tenant consumed, recorded in the transaction that consumed it.

Lives in the control schema (billing is per tenant, not inside a tenant). ``(tenant_id, kind, reference)``
is unique so a re-delivered order is metered once; ``reported_at`` is set once the period total that
includes it has gone to Stripe.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ControlBase


class UsageEvent(ControlBase):
    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "reference"),
        Index("ix_usage_events_unreported", "tenant_id", "id", postgresql_where=text("reported_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))  # "order"
    reference: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
