"""Pick-up orders: the hold on the shelf, and what happens when nobody comes.

An order whose ``extra.fulfilment_type`` is ``pickup`` is collected at the store. The store's
``ready_for_pickup`` callback starts the hold: the fulfilment order is ``packed`` (no status of its
own: ready for pick-up *is* packed, waiting at the counter instead of the dock) with ``pickup_by`` =
now + the store's ``locations.pickup_hold_hours`` (default 48), and a delayed ``pickup_expiry`` job
is queued for that moment. Collected is the ``delivered`` callback (the goods leave the shelf then).

Not collected by ``pickup_by``: the fulfilment order is cancelled, the store's reservation goes back
down (the goods are still on its shelf: on hand is untouched), the store's connector is told, and
when nothing else of the order is live the order is cancelled, its reservation released
(``orders.service.cancel_order``). When another part of the order is live, the expired units stay
reserved for the order at network level (an operator decides; the timeline says so).

Idempotent: the job locks the order then the fulfilment order and acts only on a packed one past its
``pickup_by``. A lost job is caught by the minute sweep (``sweep``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import UserError
from app.fulfillment import notices, rows
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, FulfillmentOrder, FulfillmentStatus
from app.inventory import placement
from app.inventory.models import Location
from app.orders import service as orders
from app.orders import states, timeline
from app.orders.models import Order, OrderStatus

JOB = "pickup_expiry"
ACTOR = "fulfilment:pickup"
DEFAULT_HOLD = timedelta(hours=48)
S = FulfillmentStatus
# A store may say "ready" from any of these (steps may be skipped, as with other callbacks).
READY_FROM = (S.pending, S.assigned, S.accepted, S.picking, S.packed)


def is_pickup(order: Order) -> bool:
    return (order.extra or {}).get("fulfilment_type") == "pickup"


async def hold_hours(session: AsyncSession, location_id: int) -> int:
    value = await session.scalar(select(Location.pickup_hold_hours).where(Location.id == location_id))
    return int(value or DEFAULT_HOLD.total_seconds() // 3600)


async def ready(
    session: AsyncSession, order: Order, fo: FulfillmentOrder, location: Location, actor: str
) -> bool:
    """The ``ready_for_pickup`` callback (order and fulfilment order locked). Returns False when it
    is a repeat (the hold started already)."""
    if not is_pickup(order):
        raise UserError("NOT_A_PICKUP", "this order is not collected at the store", "event")
    if fo.status not in READY_FROM:
        raise UserError("ILLEGAL_TRANSITION", f"the fulfilment order is {fo.status.value}", "event")
    if fo.pickup_by is not None:
        return False
    hours = await hold_hours(session, fo.location_id)
    now = await session.scalar(select(func.now()))
    fo.status, fo.pickup_by = S.packed, now + timedelta(hours=hours)
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=actor,
        message=f"ready for pick-up at {location.name}; held {hours} h, until {fo.pickup_by:%Y-%m-%d %H:%M}",
        details={"fo": fo.id, "status": S.packed.value, "pickup_by": fo.pickup_by.isoformat()},
    )
    await outbox.enqueue(
        session,
        JOB,
        tenant_id=session_tenant(session).id,
        delay=timedelta(hours=hours),
        fulfillment_order_id=fo.id,
    )
    await session.flush()
    return True


async def expire(session: AsyncSession, fo_id: int) -> str:
    """Cancel a pick-up nobody collected in time; returns what happened (for logs/tests)."""
    found = await rows.locked(session, fo_id)
    if found is None:
        return "no_fulfillment_order"
    order, fo = found
    if fo.status is not S.packed or fo.pickup_by is None:
        return f"not_waiting:{fo.status.value}"  # collected, or closed some other way
    left = fo.pickup_by - await session.scalar(select(func.now()))
    if left > timedelta(0):
        await outbox.enqueue(
            session, JOB, tenant_id=session_tenant(session).id, delay=left, fulfillment_order_id=fo.id
        )
        return "not_due"
    location = await session.get(Location, fo.location_id)
    reason = f"not collected within {await hold_hours(session, fo.location_id)} h"
    ref = rows.reference(order.id)
    for material_id, qty in await rows.by_material(session, fo.id):
        # Back to the order's network reservation first; ``cancel_order`` then releases all of it.
        await placement.return_to_network(
            session, ref, material_id, fo.location_id, qty, reason=f"pick-up expired: {reason}", actor=ACTOR
        )
    fo.status, fo.reason = S.cancelled, reason
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=ACTOR,
        message=f"pick-up at {location.name} {reason} (fulfilment order {fo.id}); cancelled, the goods"
        " stay on its shelf",
        details={"fo": fo.id, "location": fo.location_id, "pickup_expired": True},
    )
    await notices.queue_cancel(session, order, fo, S.packed, reason=reason)
    live = await session.scalar(
        select(func.count())
        .select_from(FulfillmentOrder)
        .where(FulfillmentOrder.order_id == order.id, FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING))
    )
    current = OrderStatus(order.status)
    if not live and OrderStatus.cancelled in states.TRANSITIONS[current]:
        await orders.cancel_order(session, order, reason=reason, actor=ACTOR)
        await session.flush()
        return "expired_order_cancelled"
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=ACTOR,
        message="the order stays open (another part of it is live); the expired units stay reserved for it",
        details={"fo": fo.id},
    )
    await session.flush()
    return "expired"
