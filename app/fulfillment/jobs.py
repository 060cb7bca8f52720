"""arq jobs of fulfilment (thin). Reached only through the outbox, except the minute sweep (an arq
cron: it only calls the same idempotent functions the delayed jobs call, see ``sweep``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_db
from app.fulfillment import notices, outage, pickups, reroute, service, sweep, timeouts
from app.outbox import job_tenant

log = logging.getLogger(__name__)


async def _in_tenant(tenant_id: int, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run ``work`` in one transaction of the job's tenant (transient database errors: ``app.worker.job``
    retries the job)."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    async with get_db().tenant_session(tenant) as session:
        return await work(session)


async def release_fulfilment(
    ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int, attempt: int | None = None
) -> str:
    """Hand a fulfilment order to its location's connector; failures are retried through the outbox
    with backoff (``service.release``). Idempotent on the delivery row."""
    outcome = await _in_tenant(tenant_id, lambda s: service.release(s, fulfillment_order_id, attempt=attempt))
    log.info("release_fulfilment %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome


async def cancel_fulfilment(
    ctx, *, outbox_id: int, tenant_id: int, order_id: int, reason: str, actor: str = "system"
) -> int:
    """An order was cancelled (``orders.service.cancel_order``): cancel its fulfilment orders not
    shipped yet, the units back from their locations, the locations told (``service.cancel_open``).
    Idempotent: a second run finds none open."""
    cancelled = await _in_tenant(
        tenant_id, lambda session: service.cancel_cancelled_order(session, order_id, reason, actor)
    )
    log.info("cancel_fulfilment of order %s (outbox %s): %s", order_id, outbox_id, cancelled)
    return cancelled


async def fulfilment_accept_timeout(ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int) -> str:
    """A store's time to accept is up: take the fulfilment order away and route it again, unless it was
    accepted meanwhile (``timeouts.expire_acceptance``; idempotent under the order's lock)."""
    outcome = await _in_tenant(tenant_id, lambda s: timeouts.expire_acceptance(s, fulfillment_order_id))
    log.info("fulfilment_accept_timeout %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome


async def reroute_fulfilment(
    ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int, reason: str = "re-routed"
) -> str:
    """Take a not yet accepted fulfilment order from its location and route it again
    (``reroute.reroute``; a second run finds it closed and does nothing)."""
    outcome = await _in_tenant(tenant_id, lambda s: reroute.reroute(s, fulfillment_order_id, reason=reason))
    log.info("reroute_fulfilment %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome


async def location_outage(ctx, *, outbox_id: int, tenant_id: int, location_id: int, since: str) -> Any:
    """A location left ``active``: re-route what it has not accepted, warn about the rest (``outage``)."""
    outcome = await _in_tenant(tenant_id, lambda s: outage.handle(s, location_id, since))
    log.info("location_outage %s (outbox %s): %s", location_id, outbox_id, outcome)
    return outcome


async def pickup_expiry(ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int) -> str:
    """A pick-up's hold is over: cancel it unless it was collected (``pickups.expire``)."""
    outcome = await _in_tenant(tenant_id, lambda s: pickups.expire(s, fulfillment_order_id))
    log.info("pickup_expiry %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome


async def deliver_connector_message(
    ctx, *, outbox_id: int, tenant_id: int, delivery_id: int, attempt: int = 1
) -> str:
    """Send a queued connector message (``fulfillment_order.cancelled``); retried with backoff."""
    outcome = await _in_tenant(tenant_id, lambda s: notices.deliver(s, delivery_id, attempt=attempt))
    log.info("deliver_connector_message %s (outbox %s): %s", delivery_id, outbox_id, outcome)
    return outcome


async def fulfilment_sweep(ctx) -> dict[str, int]:
    """arq cron, every minute: act on overdue timeouts, pick-ups and SLAs of every tenant."""
    outcomes = await sweep.sweep(ctx.get("db") or get_db())
    if outcomes:
        log.info("fulfilment sweep: %s", dict(outcomes))
    return dict(outcomes)
