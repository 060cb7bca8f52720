"""arq jobs of routing (thin: a tenant session around the service). Reached only through the outbox."""

from __future__ import annotations

import logging

from arq import Retry
from sqlalchemy.exc import DBAPIError

from app.db import get_db, is_transient
from app.outbox import job_tenant
from app.routing import service

log = logging.getLogger(__name__)


async def route_order(ctx, *, outbox_id: int, tenant_id: int, order_id: int) -> str:
    """Route one order. Idempotent: see ``app.routing.service.route_order``."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    try:
        async with get_db().tenant_session(tenant) as session:
            outcome = await service.route_order(session, order_id, job_key=f"outbox:{outbox_id}")
    except DBAPIError as exc:
        if is_transient(exc):
            raise Retry(defer=2) from exc
        raise
    log.info("route_order %s (outbox %s): %s", order_id, outbox_id, outcome.status)
    return outcome.status
