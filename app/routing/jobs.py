"""arq jobs of routing (thin: a tenant session around the service). Reached only through the outbox."""

from __future__ import annotations

import logging

from arq import Retry
from sqlalchemy.exc import DBAPIError

from app.db import TenantRef, get_db
from app.routing import service

log = logging.getLogger(__name__)

# Deadlock, serialization failure, unique violation (a concurrent twin won): run again shortly. arq does
# not retry a job that raised, so these are turned into ``Retry``; anything else fails the job (logged).
TRANSIENT = {"40P01", "40001", "23505"}


def transient(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    codes = {getattr(orig, "sqlstate", None), getattr(getattr(orig, "__cause__", None), "sqlstate", None)}
    return isinstance(exc, DBAPIError) and bool(codes & TRANSIENT)


async def tenant_ref(tenant_id: int) -> TenantRef | None:
    """The tenant's schema from the control plane (outbox rows carry only the tenant id)."""
    from tenants.models import Tenant  # control plane; imported here to keep module import light

    async with get_db().control_session() as session:
        tenant = await session.get(Tenant, tenant_id)
        return TenantRef(tenant.id, tenant.schema_name) if tenant is not None else None


async def route_order(ctx, *, outbox_id: int, tenant_id: int, order_id: int) -> str:
    """Route one order. Idempotent: see ``app.routing.service.route_order``."""
    tenant = await tenant_ref(tenant_id)
    if tenant is None:
        return "no_tenant"
    try:
        async with get_db().tenant_session(tenant) as session:
            outcome = await service.route_order(session, order_id, job_key=f"outbox:{outbox_id}")
    except DBAPIError as exc:
        if transient(exc):
            raise Retry(defer=2) from exc
        raise
    log.info("route_order %s (outbox %s): %s", order_id, outbox_id, outcome.status)
    return outcome.status
