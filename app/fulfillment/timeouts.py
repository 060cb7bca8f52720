"""Store accept timeout: a store that has not accepted a fulfilment order in time loses it.

When a store's fulfilment order is handed over (``service._assigned``), a delayed
``fulfilment_accept_timeout`` job is put in the outbox for its ``accept_by``: hand-over time plus the
store's ``locations.accept_timeout_minutes`` (default 30). When it runs and the fulfilment order is
still pending/assigned, ``reroute.take_away`` closes it (units back to the order's network reservation,
status ``rejected`` so the store is kept out of the re-route, the connector told) and ``route_order``
routes the lines again. A lost job is caught by the minute sweep (``sweep``).

Idempotent: the job locks the order then the fulfilment order, and does nothing once the fulfilment
order is accepted (or further), closed, or already timed out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.fulfillment import reroute, rows
from app.fulfillment.models import NOT_ACCEPTED, FulfillmentOrder
from app.inventory.models import Location

STORE_ACCEPT_TIMEOUT = timedelta(minutes=30)  # the default (and the column's)
JOB = "fulfilment_accept_timeout"
ACTOR = "fulfilment:timeout"
WAITING = NOT_ACCEPTED


def minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def accept_timeout(session: AsyncSession, location_id: int) -> timedelta:
    value = await session.scalar(select(Location.accept_timeout_minutes).where(Location.id == location_id))
    return timedelta(minutes=value) if value else STORE_ACCEPT_TIMEOUT


async def schedule_accept_timeout(session: AsyncSession, fo: FulfillmentOrder) -> None:
    """Called when a store's fulfilment order is handed over: the store gets its full timeout from now
    (a release delayed by connector retries does not eat its time), and the timeout job is queued for
    that moment. Fulfilment orders without ``accept_by`` (not at a store) get nothing."""
    if fo.accept_by is None:
        return
    now = datetime.now(UTC)
    deadline = now + await accept_timeout(session, fo.location_id)
    fo.accept_by = deadline
    await outbox.enqueue(
        session, JOB, tenant_id=session_tenant(session).id, delay=deadline - now, fulfillment_order_id=fo.id
    )


async def expire_acceptance(session: AsyncSession, fo_id: int) -> str:
    """Take a store's fulfilment order away if it is still not accepted after ``accept_by``; returns what
    happened (for logs/tests)."""
    found = await rows.locked(session, fo_id)
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
    why = f"did not accept within {minutes(await accept_timeout(session, fo.location_id))} minutes"
    await reroute.take_away(
        session,
        order,
        fo,
        reason=why,
        actor=ACTOR,
        message=f"store {name} {why} (fulfilment order {fo.id}); re-routed",
        details={"timeout": True},
    )
    return "timed_out"
