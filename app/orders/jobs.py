"""arq jobs of the orders domain (thin: they open a tenant session and call the service)."""

from __future__ import annotations

import logging

from app.db import get_db
from app.orders import service
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
