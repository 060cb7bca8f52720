"""What of an order is not yet on a live fulfilment order (not rejected or cancelled).

Routing routes these lines (nothing left means the order is routed: the idempotency of
``route_order``); fulfilment asks it too, to know whether a shipped order is complete. It is about what
fulfilment orders hold, so it lives here and routing calls down into it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, FulfillmentOrder, FulfillmentOrderLine
from app.orders.models import OrderLine, OrderLineMaterial


@dataclass(frozen=True)
class OpenLine:
    """Units of one material of one order line not yet on a live fulfilment order."""

    order_line_id: int
    material_id: int
    material_code: str
    quantity: int
    presale: bool
    cold_chain: bool

    @property
    def key(self) -> str:
        return f"{self.order_line_id}:{self.material_id}"


async def open_lines(session: AsyncSession, order_id: int) -> list[OpenLine]:
    """The order's material lines minus what live fulfilment orders already hold (quantity > 0 only)."""
    rows = (
        await session.execute(
            select(
                OrderLineMaterial.line_id,
                OrderLineMaterial.material_id,
                OrderLineMaterial.quantity,
                OrderLine.presale,
                Material.code,
                Material.cold_chain,
            )
            .join(OrderLine, OrderLine.id == OrderLineMaterial.line_id)
            .join(Material, Material.id == OrderLineMaterial.material_id)
            .where(OrderLineMaterial.order_id == order_id)
            .order_by(OrderLineMaterial.line_id, OrderLineMaterial.material_id)
        )
    ).all()
    held: dict[tuple[int, int], int] = defaultdict(int)
    for line_id, material_id, qty in (
        await session.execute(
            select(
                FulfillmentOrderLine.order_line_id,
                FulfillmentOrderLine.material_id,
                func.sum(FulfillmentOrderLine.quantity),
            )
            .join(FulfillmentOrder, FulfillmentOrder.id == FulfillmentOrderLine.fulfillment_order_id)
            .where(
                FulfillmentOrder.order_id == order_id,
                FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING),
            )
            .group_by(FulfillmentOrderLine.order_line_id, FulfillmentOrderLine.material_id)
        )
    ).all():
        held[(line_id, material_id)] += int(qty)
    out = []
    for line_id, material_id, quantity, presale, code, cold in rows:
        left = quantity - held.get((line_id, material_id), 0)
        if left > 0:
            out.append(OpenLine(line_id, material_id, code, left, bool(presale), bool(cold)))
    return out
