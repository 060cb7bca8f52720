"""Taking a fulfilment order the location has not accepted away from it, and routing it again.

One code path for every reason a location loses such an order: its accept timeout ran out
(``timeouts``), it was paused or closed mid-flight (``outage``), or someone asked (job
``reroute_fulfilment``). The units go back to the order's network reservation, the fulfilment order
becomes ``rejected`` with the reason (so ``routing.inputs.rejected_by`` keeps that location out of the
next route), the location's connector is told (``notices``) when it had the order, and ``route_order``
routes the lines again. Unlike a location's own rejection, its on hand is left alone: nobody said
anything about its shelf.

Idempotent: the caller holds the order then the fulfilment order locked (``rows.locked``), and
only a pending/assigned fulfilment order is taken; anything else (accepted meanwhile, already closed)
is left as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.fulfillment import notices, rows
from app.fulfillment.models import NOT_ACCEPTED, FulfillmentOrder, FulfillmentStatus
from app.inventory import placement
from app.inventory.models import Location
from app.orders import timeline
from app.orders.models import Order

JOB = "reroute_fulfilment"
ACTOR = "fulfilment:reroute"
WAITING = NOT_ACCEPTED


async def take_away(
    session: AsyncSession,
    order: Order,
    fo: FulfillmentOrder,
    *,
    reason: str,
    actor: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Close ``fo`` (locked, status in ``WAITING``) and route its lines again."""
    before = FulfillmentStatus(fo.status)
    ref = rows.reference(order.id)
    for material_id, qty in await rows.by_material(session, fo.id):
        await placement.return_to_network(
            session, ref, material_id, fo.location_id, qty, reason=f"re-routed: {reason}", actor=actor
        )
    fo.status, fo.reason = FulfillmentStatus.rejected, reason[:500]
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=actor,
        message=message[:2000],
        details={"fo": fo.id, "location": fo.location_id, **(details or {})},
    )
    await notices.queue_cancel(session, order, fo, before, reason=reason)
    await outbox.enqueue(session, "route_order", tenant_id=session_tenant(session).id, order_id=order.id)
    await session.flush()


async def reroute(session: AsyncSession, fo_id: int, *, reason: str, actor: str = ACTOR) -> str:
    """Take a not yet accepted fulfilment order from its location and route it again; returns what
    happened (for logs/tests)."""
    found = await rows.locked(session, fo_id)
    if found is None:
        return "no_fulfillment_order"
    order, fo = found
    if fo.status not in WAITING:
        return f"not_waiting:{fo.status.value}"
    name = await session.scalar(select(Location.name).where(Location.id == fo.location_id))
    await take_away(
        session,
        order,
        fo,
        reason=reason,
        actor=actor,
        message=f"fulfilment order {fo.id} taken from {name}: {reason}; re-routed",
        details={"reroute": True},
    )
    return "rerouted"
