"""Undoing a merge (``app.routing.merge``): an operator takes an order out of its group before anything
of the group is handed to a location. The group's fulfilment orders are cancelled (units back to each
order's network reservation) and every order of it is routed again through the outbox: the rest
together while two or more remain, the order taken out on its own for good (``orders.unmerged_at``:
routing never merges it again). Once something was handed over it is refused (``ALREADY_RELEASED``):
the location may already be packing the orders together.

Editing the address of a merged order (``edit_address``) takes it out the same way when the new address
no longer matches the others' (the merge's rule: the same ``fingerprint``), but not for good: at its new
address it may merge again like any order."""

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


async def unmerge(
    session: AsyncSession,
    order_id: int,
    *,
    actor: str,
    why: str = "",
    for_good: bool = True,
    buyer_locked: bool = False,
) -> Order:
    """Take the order out of its merge before anything of the group is handed over: the group's
    fulfilment orders are cancelled and every order of it is routed again (the rest together while two
    or more remain). ``why`` goes on the timelines; ``for_good`` keeps routing from merging it again;
    ``buyer_locked``: the caller took ``lock_buyer`` before changing the order's fingerprint (locking
    the new one too, after rows, could deadlock)."""
    if not buyer_locked:
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
            session, m, reason=f"{order.number} taken out of the merge{why}", actor=actor
        )
        if OrderStatus(m.status) is OrderStatus.routed:
            await orders.transition(
                session, m, OrderStatus.reserved, actor=actor, message="merge changed: routing again"
            )
    order.merge_id = None
    if for_good:
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
        message=f"taken out of the merge with {', '.join(numbers[m.id] for m in rest)}{why}"
        + "; shipped on its own",
        details={"merge_id": group_id, "orders": [m.id for m in rest]},
    )
    for m in rest:
        timeline.record(
            session,
            m,
            "unmerged",
            actor=actor,
            message=f"{order.number} taken out of the merge{why}"
            + ("; the merge is dissolved" if len(rest) < 2 else ""),
            details={"merge_id": group_id, "orders": [order.id]},
        )
    tenant_id = session_tenant(session).id
    for m in members:
        await outbox.enqueue(session, "route_order", tenant_id=tenant_id, order_id=m.id)
    await session.flush()
    return order


async def edit_address(session: AsyncSession, order_id: int, address: dict, *, actor: str) -> Order:
    """``orders.edit_address``, and a merged order whose new address no longer matches its merge's is
    taken out of it (``unmerge``); once the merge was handed over the edit is refused (ADDRESS_LOCKED),
    as the location may be packing the orders together for the old address."""
    await lock_buyer(session, order_id)
    order = await orders.edit_address(session, order_id, address, actor=actor)
    if order.merge_id is None:
        return order
    mates = await session.scalars(
        select(Order.fingerprint).where(Order.merge_id == order.merge_id, Order.id != order.id)
    )
    if all(fingerprint == order.fingerprint for fingerprint in mates.all()):
        return order
    try:
        return await unmerge(
            session,
            order.id,
            actor=actor,
            why=": its address no longer matches",
            for_good=False,
            buyer_locked=True,
        )
    except UserError as exc:
        if exc.code != "ALREADY_RELEASED":
            raise
        raise UserError(
            "ADDRESS_LOCKED",
            f"order {order.number} ships together with other orders already handed to a location: "
            "its address can no longer change",
            "address",
        ) from None
