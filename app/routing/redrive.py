"""``routeOrder``: route an order again, or hand over again what a fault left behind, or say why not.

A fault can leave an order with no job to move it on: e.g. Redis restarting empty loses the jobs the
outbox had just handed over, so an order stays ``reserved`` (its route job gone) or ``routed`` (the
release jobs of its fulfilment orders gone). Asking again re-drives exactly the step that is missing:

* lines not on a live fulfilment order that may be routed now (``reserved``/``presale``, or lines a
  location rejected; not lines waiting for presale stock, see ``presale.py``), or a ``reserved`` order
  whose hold ended: the route job (``service.route_order``);
* fulfilment orders still ``pending`` (never handed to their location): their release jobs.

A job counts as waiting while its outbox row is unsent; then nothing is added (asking twice has one
effect). A row handed to Redis but not done may be queued or lost there (the outbox lease hands a lost
one over again); asking does not wait for that: both jobs are idempotent, so re-driving next to a job
still queued or running has one effect too. The stuck-order sweep (``stuck.py``) re-drives through here
too. Anything else is refused with ``NOT_ROUTABLE`` and the
reason: a status routing does not apply to, presale stock still awaited, everything handed over.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import UserError
from app.fulfillment import open_lines
from app.orders import service as orders
from app.orders import timeline
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from app.routing import presale, service

ROUTE = "route"  # the route job was enqueued
HAND_OVER = "hand_over"  # release jobs were enqueued for fulfilment orders never handed over
WAITING = "waiting"  # a job that moves the order on is already waiting: nothing added
FIELD = "orderId"


async def request_routing(session: AsyncSession, order_id: int, *, actor: str) -> str:
    """Re-drive the order (see the module docstring); returns ROUTE, HAND_OVER or WAITING."""
    order = await orders.get_order(session, order_id)  # locked: two requests take turns
    status = OrderStatus(order.status)
    if status not in service.ROUTABLE:
        allowed = ", ".join(s.value for s in OrderStatus if s in service.ROUTABLE)
        raise UserError(
            "NOT_ROUTABLE", f"the order is {status.value}: only {allowed} orders are routed", FIELD
        )
    lines = await open_lines.open_lines(session, order.id)
    part = await presale.routable_part(session, order.id, lines)
    held = status in (OrderStatus.reserved, OrderStatus.presale)  # e.g. a hold ended: route it again
    if part.now or (held and (not part.waiting or await service.has_live_fulfilment(session, order.id))):
        if await _waiting(session, service.JOB, order_id=order.id):
            return WAITING
        timeline.record(session, order, "routing", actor=actor, message="routing requested")
        await outbox.enqueue(session, service.JOB, tenant_id=session_tenant(session).id, order_id=order.id)
        await session.flush()
        return ROUTE
    waits = f"waits for presale stock ({part.summary}): routed once it is in stock"
    if held:
        raise UserError("NOT_ROUTABLE", f"the order is {status.value} and {waits}", FIELD)
    pending = await service.not_handed_over(session, order.id)
    if not pending:
        done = "every line is on a fulfilment order already handed to its location"
        if part.waiting:
            done = f"every line in stock is on a fulfilment order already handed over; the rest {waits}"
        raise UserError("NOT_ROUTABLE", f"the order is {status.value}: {done}", FIELD)
    lost = [
        (fo_id, attempts)
        for fo_id, attempts in pending
        if not await _waiting(session, service.RELEASE_JOB, fulfillment_order_id=fo_id)
    ]
    if not lost:
        return WAITING
    for fo_id, attempts in lost:
        await service.hand_over_again(session, fo_id, attempts)
    ids = ", ".join(str(fo_id) for fo_id, _ in lost)
    timeline.record(
        session,
        order,
        "routing",
        actor=actor,
        message=f"hand-over requested again for fulfilment orders never handed over ({ids})",
        details={"fulfillment_orders": [fo_id for fo_id, _ in lost]},
    )
    await session.flush()
    return HAND_OVER


async def _waiting(session: AsyncSession, job: str, **kwargs: int) -> bool:
    """An unsent outbox row of this tenant runs ``job`` with these arguments (e.g. the order's id)."""
    query = select(OutboxMessage.id).where(
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.tenant_id == session_tenant(session).id,
        OutboxMessage.job == job,
        OutboxMessage.kwargs.contains(kwargs),
    )
    return await session.scalar(query.limit(1)) is not None
