"""Writing the order timeline: one ``order_events`` row per change (who, when, from→to, details)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order, OrderEvent, OrderStatus


def record(
    session: AsyncSession,
    order: Order,
    kind: str,
    *,
    actor: str,
    message: str = "",
    from_status: OrderStatus | None = None,
    to_status: OrderStatus | None = None,
    details: dict[str, Any] | None = None,
) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id,
        kind=kind,
        actor=actor,
        message=message,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        details=details or {},
    )
    session.add(event)
    return event
