"""arq jobs of routing (thin: a tenant session around the service). Reached only through the outbox."""

from __future__ import annotations

import logging

from app import fault_metrics
from app.db import get_db
from app.outbox import job_tenant
from app.routing import service

log = logging.getLogger(__name__)


async def route_order(ctx, *, outbox_id: int, tenant_id: int, order_id: int) -> str:
    """Route one order. Idempotent: see ``app.routing.service.route_order``. Transient database errors
    are retried by the worker (``app.worker.job``)."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    async with get_db().tenant_session(tenant) as session:
        outcome = await service.route_order(session, order_id, job_key=f"outbox:{outbox_id}")
    log.info("route_order %s (outbox %s): %s", order_id, outbox_id, outcome.status)
    return outcome.status


async def stuck_order_sweep(ctx) -> dict[str, int]:
    """arq cron: re-drive orders that sat in a waiting state too long (``app.routing.stuck``)."""
    from app.routing import stuck

    outcomes = await stuck.sweep(ctx.get("db") or get_db())
    await fault_metrics.count(ctx.get("redis"), "stuck", outcomes)
    if outcomes:
        log.info("stuck-order sweep: %s", dict(outcomes))
    return dict(outcomes)
