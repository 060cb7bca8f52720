"""arq jobs of the orders domain (thin: they open a tenant session and call the service)."""

from __future__ import annotations

import logging
from datetime import datetime

from app.db import get_db
from app.orders import service, waiting
from app.outbox import job_tenant

log = logging.getLogger(__name__)


async def run_order_automation(
    ctx, *, outbox_id: int, tenant_id: int, order_id: int, automation_id: int, entered_at: str
) -> str:
    """Apply one scheduled automation. Idempotent: once applied, the order has moved on, and a second
    run finds it no longer in the status entry that scheduled it."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    async with get_db().tenant_session(tenant) as session:
        outcome = await service.run_automation(session, order_id, automation_id, entered_at)
    log.info("automation %s on order %s (outbox %s): %s", automation_id, order_id, outbox_id, outcome)
    return outcome


async def resume_waiting_orders(
    ctx,
    *,
    outbox_id: int,
    tenant_id: int,
    material_ids: list[int] | None = None,
    after: list | None = None,
    blocked: list[int] | None = None,
    blocked_channels: list[list[int]] | None = None,
) -> int:
    """Serve the tenant's orders waiting for stock (``app.orders.waiting``), one page of the queue;
    ``after`` and the blocked materials come from the page before. Idempotent: an order served once is
    no longer waiting, so a second run finds nothing more to do. Returns how many orders went on."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return 0
    cursor = (datetime.fromisoformat(after[0]), int(after[1])) if after else None
    async with get_db().tenant_session(tenant) as session:
        result = await waiting.resume_waiting(
            session,
            material_ids,
            after=cursor,
            blocked=waiting.blocked_from(blocked, blocked_channels),
        )
    log.info(
        "resume_waiting_orders (outbox %s): %d of %d examined went on%s",
        outbox_id,
        result.count,
        result.examined,
        "; more to follow" if result.follow_up else "",
    )
    return result.count
