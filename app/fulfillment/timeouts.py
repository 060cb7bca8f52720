"""Store accept timeout: a store that has not accepted a fulfilment order in time loses it.

When a store's fulfilment order is handed over (``service._assigned``), a delayed
``fulfilment_accept_timeout`` job is put in the outbox for its ``accept_by``. When it runs and the
fulfilment order is still pending/assigned, it is closed the way a store's own rejection is
(``callbacks._reject``): its units go back to the order's network reservation, its status becomes
``rejected`` (so ``routing.inputs.rejected_by`` keeps the store out of the re-route) and
``route_order`` routes the lines again. Unlike a rejection, the store's on hand is left alone: a
silent store said nothing about its shelf.

Idempotent: the job locks the order then the fulfilment order, and does nothing once the fulfilment
order is accepted (or further), closed, or already timed out.

No location field holds a per-store timeout yet, so ``STORE_ACCEPT_TIMEOUT`` applies to every store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.fulfillment import service
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus
from app.inventory.models import Location
from app.orders import timeline
from app.routing import stock

STORE_ACCEPT_TIMEOUT = timedelta(minutes=30)  # the default; the same for every store for now
JOB = "fulfilment_accept_timeout"
ACTOR = "fulfilment:timeout"
WAITING = (FulfillmentStatus.pending, FulfillmentStatus.assigned)  # not accepted yet


def minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def schedule_accept_timeout(session: AsyncSession, fo: FulfillmentOrder) -> None:
    """Called when a store's fulfilment order is handed over: the store gets at least the full timeout
    from now (a release delayed by connector retries does not eat its time), and the timeout job is
    queued for that moment. Fulfilment orders without ``accept_by`` (not at a store) get nothing."""
    if fo.accept_by is None:
        return
    now = datetime.now(UTC)
    deadline = max(fo.accept_by, now + STORE_ACCEPT_TIMEOUT)
    fo.accept_by = deadline
    await outbox.enqueue(
        session, JOB, tenant_id=session_tenant(session).id, delay=deadline - now, fulfillment_order_id=fo.id
    )


async def expire_acceptance(session: AsyncSession, fo_id: int) -> str:
    """Take a store's fulfilment order away if it is still not accepted after ``accept_by``; returns what
    happened (for logs/tests)."""
    found = await service.locked(session, fo_id)
    if found is None:
        return "no_fulfillment_order"
    order, fo = found
    if fo.status not in WAITING:
        return f"not_waiting:{fo.status.value}"  # accepted in time, or already closed
    if fo.accept_by is None:
        return "no_deadline"
    left = fo.accept_by - await session.scalar(select(func.now()))
    if left > timedelta(0):
        # Ran early (clocks apart, or the deadline moved): look again when it is due.
        await outbox.enqueue(
            session, JOB, tenant_id=session_tenant(session).id, delay=left, fulfillment_order_id=fo.id
        )
        return "not_due"
    name = await session.scalar(select(Location.name).where(Location.id == fo.location_id))
    why = f"did not accept within {minutes(STORE_ACCEPT_TIMEOUT)} minutes"
    ref = service.reference(order.id)
    for material_id, qty in await service.by_material(session, fo.id):
        await stock.return_to_network(
            session, ref, material_id, fo.location_id, qty, reason=f"timed out: {why}", actor=ACTOR
        )
    fo.status, fo.reason = FulfillmentStatus.rejected, why
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=ACTOR,
        message=f"store {name} {why} (fulfilment order {fo.id}); re-routed",
        details={"fo": fo.id, "location": fo.location_id, "timeout": True},
    )
    await outbox.enqueue(session, "route_order", tenant_id=session_tenant(session).id, order_id=order.id)
    await session.flush()
    return "timed_out"
