"""The stuck-order sweep: an order that has sat in a waiting state longer than it should, whatever the
reason, is re-driven.

The outbox lease (``app.outbox``) recovers a job Redis lost; this is the net under everything else (a
bug, a row an operator deleted, a job that failed for good). Every ``OMS_STUCK_SWEEP_EVERY_S`` (arq
cron ``stuck_order_sweep``, see ``app.worker``) it looks, per active tenant, for orders whose status
is one of ``OMS_STUCK_AFTER`` (default ``reserved=600,routed=900`` seconds) and has not changed for
that long, with no outbox row of theirs whose job has not run (``route_order`` for the order,
``release_fulfilment`` for its fulfilment orders), except rows handed to Redis that long ago and never
confirmed since (the lease check renews a row whose job is still queued): nothing will move them on.
Each is re-driven through ``redrive.request_routing`` (the ``routeOrder`` path: the missing step goes
through the outbox, and it refuses with a reason what routing does not apply to), with a ``stuck``
event on its timeline.

Idempotent and bounded: a re-drive adds an outbox row, so the next sweep skips the order until its job
ran; an order that stays stuck (say its address cannot be located) is tried again after its threshold
times 2, 4, 8 ... and at most MAX_TRIES times in one status, each try on its timeline.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import Database, TenantRef, session_tenant
from app.errors import UserError
from app.fulfillment.models import FulfillmentOrder
from app.fulfillment.sweep import active_tenants
from app.orders import service as orders
from app.orders import timeline
from app.orders.models import Order, OrderEvent, OrderStatus
from app.outbox import OutboxMessage
from app.routing import redrive, service

log = logging.getLogger(__name__)

ACTOR = "stuck_sweep"
KIND = "stuck"  # the timeline event of each try (also what spaces the tries)
MAX_TRIES = 5
BATCH = 200  # per tenant and sweep; the rest waits for the next sweep


def thresholds() -> dict[OrderStatus, float]:
    """Seconds an order may wait in each swept status (statuses routing does not apply to are left out)."""
    return {
        OrderStatus(status): seconds
        for status, seconds in get_settings().stuck_after_s.items()
        if status in OrderStatus.__members__ and OrderStatus(status) in service.ROUTABLE
    }


async def _candidates(session: AsyncSession, after: dict[OrderStatus, float]) -> list[int]:
    """Orders past their status's threshold, and past the back-off of earlier tries."""
    limit = case(*((Order.status == status, seconds) for status, seconds in after.items()))
    tries = (
        select(func.count().label("n"), func.max(OrderEvent.created_at).label("last"))
        .where(
            OrderEvent.order_id == Order.id,
            OrderEvent.kind == KIND,
            OrderEvent.created_at >= Order.status_changed_at,
        )
        .lateral()
    )
    waited = func.extract("epoch", func.now() - Order.status_changed_at)
    since_try = func.extract("epoch", func.now() - tries.c.last)
    query = (
        select(Order.id)
        .join(tries, literal(True))
        .where(
            Order.status.in_(list(after)),
            waited >= limit,
            tries.c.n < MAX_TRIES,
            or_(tries.c.last.is_(None), since_try >= limit * func.power(2, cast(tries.c.n, Float))),
        )
        .order_by(Order.status_changed_at)
        .limit(BATCH)
    )
    return list((await session.scalars(query)).all())


async def _job_pending(session: AsyncSession, order_id: int, within_s: float) -> bool:
    """An outbox row whose job has not run yet will move the order on: route_order for it, or the
    release of one of its fulfilment orders; unsent, or handed to Redis (or found still queued there by
    the lease check) within ``within_s``. One handed over longer ago and never confirmed is presumed
    lost: re-driving next to it is harmless, the jobs being idempotent."""
    tenant_id = session_tenant(session).id
    fos = select(FulfillmentOrder.id).where(FulfillmentOrder.order_id == order_id)
    fo_ids = [str(fo_id) for fo_id in (await session.scalars(fos)).all()]
    release = OutboxMessage.job == service.RELEASE_JOB
    if fo_ids:
        release = and_(release, OutboxMessage.kwargs["fulfillment_order_id"].astext.in_(fo_ids))
    else:
        release = literal(False)
    query = select(OutboxMessage.id).where(
        OutboxMessage.done_at.is_(None),
        or_(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.sent_at > func.now() - timedelta(seconds=within_s),
        ),
        OutboxMessage.tenant_id == tenant_id,
        or_(
            and_(OutboxMessage.job == service.JOB, OutboxMessage.kwargs.contains({"order_id": order_id})),
            release,
        ),
    )
    return await session.scalar(query.limit(1)) is not None


async def redrive_stuck(session: AsyncSession, order_id: int, after: dict[OrderStatus, float]) -> str:
    """Re-drive one order if it is still stuck (under its lock); the outcome: ``route``, ``hand_over``,
    ``refused``, or ``moved_on`` / ``job_pending`` when it needs nothing."""
    order = await orders.get_order(session, order_id)
    status = OrderStatus(order.status)
    if status not in after:
        return "moved_on"
    if await _job_pending(session, order.id, after[status]):
        return "job_pending"
    minutes = round(after[status] / 60, 1)
    try:
        action = await redrive.request_routing(session, order.id, actor=ACTOR)
    except UserError as refused:
        timeline.record(
            session,
            order,
            KIND,
            actor=ACTOR,
            message=f"{status.value} for over {minutes} min with no job pending; not re-driven: {refused}",
        )
        return "refused"
    if action == redrive.WAITING:
        return "job_pending"
    timeline.record(
        session,
        order,
        KIND,
        actor=ACTOR,
        message=f"{status.value} for over {minutes} min with no job pending: re-driven ({action})",
        details={"action": action},
    )
    return action


async def sweep_tenant(db: Database, ref: TenantRef, after: dict[OrderStatus, float]) -> Counter:
    async with db.tenant_session(ref) as session:
        ids = await _candidates(session, after)
    outcomes: Counter = Counter()
    for order_id in ids:
        try:
            async with db.tenant_session(ref) as session:
                outcome = await redrive_stuck(session, order_id, after)
            outcomes[outcome] += 1
            if outcome in (redrive.ROUTE, redrive.HAND_OVER):
                log.warning("stuck order %s of tenant %s re-driven (%s)", order_id, ref.id, outcome)
        except Exception:
            log.exception("stuck-order sweep: order %s of tenant %s failed", order_id, ref.id)
            outcomes["error"] += 1
    return outcomes


async def sweep(db: Database) -> Counter:
    """Every active tenant's stuck orders; counts outcomes."""
    after = thresholds()
    total: Counter = Counter()
    if not after:
        return total
    for ref in await active_tenants(db):
        try:
            total += await sweep_tenant(db, ref, after)
        except Exception:  # one tenant's failure (e.g. mid-migration) does not stop the others
            log.exception("stuck-order sweep of tenant %s failed", ref.id)
    return total
