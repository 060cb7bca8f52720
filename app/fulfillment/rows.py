"""Reading one fulfilment order: locked with its order (lock order: the order row first, then its
fulfilment orders), its lines, its units per material, and the reservation reference they belong to.

Below every other fulfilment module (service, callbacks, reroute, timeouts, pickups, sla), so the
timeout job can reach ``reroute`` without ``service`` reaching back into it.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fulfillment.models import FulfillmentOrder, FulfillmentOrderLine
from app.orders import service as orders
from app.orders.models import Order


def reference(order_id: int) -> str:
    return f"order:{order_id}"  # the order's reservation reference (orders.service.reservation_reference)


async def lines_of(session: AsyncSession, fo_id: int) -> list[FulfillmentOrderLine]:
    query = select(FulfillmentOrderLine).where(FulfillmentOrderLine.fulfillment_order_id == fo_id)
    return list((await session.scalars(query.order_by(FulfillmentOrderLine.id))).all())


async def by_material(session: AsyncSession, fo_id: int) -> list[tuple[int, int]]:
    totals: dict[int, int] = defaultdict(int)
    for line in await lines_of(session, fo_id):
        totals[line.material_id] += line.quantity
    return sorted(totals.items())


async def locked(session: AsyncSession, fo_id: int) -> tuple[Order, FulfillmentOrder] | None:
    """The fulfilment order and its order, both locked (order first)."""
    order_id = await session.scalar(select(FulfillmentOrder.order_id).where(FulfillmentOrder.id == fo_id))
    if order_id is None:
        return None
    order = await orders.get_order(session, order_id)
    fo = await session.scalar(
        select(FulfillmentOrder)
        .where(FulfillmentOrder.id == fo_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return order, fo
