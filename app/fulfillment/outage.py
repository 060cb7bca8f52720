"""A location paused or closed mid-flight: its work that has not started moves elsewhere.

``inventory.service.set_location_status`` queues ``location_outage`` whenever a location leaves
``active``. The job re-routes (``reroute_fulfilment`` jobs, one per fulfilment order) every fulfilment
order there that is not accepted yet (pending/assigned), and leaves accepted/picking/packed ones alone
(the goods may already be in someone's hands) with a ``warning`` on their order's timeline for an
operator to look at. A location active again by the time the job runs is left alone.

Idempotent: a fulfilment order is re-routed once (``reroute``), and a warning is written once per
fulfilment order and outage (``since``, the moment the status changed).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.fulfillment import reroute
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus
from app.inventory.models import Location, LocationStatus
from app.orders import timeline
from app.orders.models import Order, OrderEvent

JOB = "location_outage"
ACTOR = "fulfilment:outage"
S = FulfillmentStatus
IN_HAND = (S.accepted, S.picking, S.packed)


async def handle(session: AsyncSession, location_id: int, since: str) -> dict[str, int] | str:
    """Re-route the location's not yet accepted fulfilment orders, warn about those in hand."""
    location = await session.get(Location, location_id)
    if location is None:
        return "no_location"
    if location.status is LocationStatus.active:
        return "active_again"
    why = f"{location.name} is {location.status.value}: {location.status_reason or 'no reason given'}"
    tenant_id = session_tenant(session).id
    rows = (
        await session.execute(
            select(FulfillmentOrder.id, FulfillmentOrder.order_id, FulfillmentOrder.status)
            .where(
                FulfillmentOrder.location_id == location_id,
                FulfillmentOrder.status.in_(reroute.WAITING + IN_HAND),
            )
            .order_by(FulfillmentOrder.id)
        )
    ).all()
    rerouted = warned = 0
    for fo_id, order_id, status in rows:
        if status in reroute.WAITING:
            await outbox.enqueue(
                session, reroute.JOB, tenant_id=tenant_id, fulfillment_order_id=fo_id, reason=why
            )
            rerouted += 1
            continue
        key = {"fo": fo_id, "outage": since}
        if await session.scalar(
            select(OrderEvent.id)
            .where(OrderEvent.order_id == order_id, OrderEvent.details.contains(key))
            .limit(1)
        ):
            continue
        order = await session.get(Order, order_id)
        timeline.record(
            session,
            order,
            "warning",
            actor=ACTOR,
            message=f"{why}; fulfilment order {fo_id} is {status.value} there and stays (check it ships)",
            details={**key, "location": location_id},
        )
        warned += 1
    await session.flush()
    return {"rerouted": rerouted, "warned": warned}
