"""Undoing a merge (``app.routing.merge``): an operator takes an order out of its group before anything
of the group is handed to a location. The group's fulfilment orders are cancelled (units back to each
order's network reservation) and every order of it is routed again through the outbox: the rest
together while two or more remain, the order taken out on its own for good (``orders.unmerged_at``:
routing never merges it again). Once something was handed over it is refused (``ALREADY_RELEASED``):
the location may already be packing the orders together."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import UserError
from app.fulfillment import service as fulfillment
from app.orders import service as orders
from app.orders import timeline
from app.orders.models import Order, OrderMerge, OrderStatus
from app.routing.merge import handed_over, is_released, lock_buyer


async def unmerge(session: AsyncSession, order_id: int, *, actor: str) -> Order:
    """Take the order out of its merge before anything of the group is handed over: the group's
    fulfilment orders are cancelled and every order of it is routed again (the rest together while two
    or more remain)."""
    await lock_buyer(session, order_id)
    order = await orders.get_order(session, order_id, lock=False)
    if order.merge_id is None:
        raise UserError("NOT_MERGED", f"order {order.number} is not merged with other orders", "orderId")
    group_id = order.merge_id
    members = list(
        (
            await session.scalars(
                select(Order)
                .where(Order.merge_id == group_id)
                .order_by(Order.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    released = await handed_over(session, [m.id for m in members])
    if released or any(is_released(m) for m in members):
        raise UserError(
            "ALREADY_RELEASED",
            "part of the merge was already handed to a location; it can no longer be undone",
            "orderId",
        )
    numbers = {m.id: m.number for m in members}
    rest = [m for m in members if m.id != order.id]
    for m in members:
        await fulfillment.cancel_open(
            session, m, reason=f"{order.number} taken out of the merge", actor=actor
        )
        if OrderStatus(m.status) is OrderStatus.routed:
            await orders.transition(
                session, m, OrderStatus.reserved, actor=actor, message="merge changed: routing again"
            )
    order.merge_id = None
    order.unmerged_at = func.now()
    if len(rest) < 2:
        for m in rest:
            m.merge_id = None
        (await session.get(OrderMerge, group_id)).dissolved_at = func.now()
    timeline.record(
        session,
        order,
        "unmerged",
        actor=actor,
        message=f"taken out of the merge with {', '.join(numbers[m.id] for m in rest)}; shipped on its own",
        details={"merge_id": group_id, "orders": [m.id for m in rest]},
    )
    for m in rest:
        timeline.record(
            session,
            m,
            "unmerged",
            actor=actor,
            message=f"{order.number} taken out of the merge"
            + ("; the merge is dissolved" if len(rest) < 2 else ""),
            details={"merge_id": group_id, "orders": [order.id]},
        )
    tenant_id = session_tenant(session).id
    for m in members:
        await outbox.enqueue(session, "route_order", tenant_id=tenant_id, order_id=m.id)
    await session.flush()
    return order
