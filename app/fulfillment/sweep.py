"""The minute sweep: the safety net under the delayed lifecycle jobs.

Accept timeouts and pick-up expiries are delayed outbox jobs; SLA alerts have no job of their own.
Every minute (arq cron ``fulfilment_sweep``, see ``app.worker``) this looks, per active tenant, for
what is overdue: not accepted past ``accept_by``, not collected past ``pickup_by``, shipments never
scanned past ``sla_due_at``, and runs the same idempotent function the job would, each in its own
transaction. It runs them directly rather than enqueueing jobs: a job lost once may be lost again,
a sweep that enqueued would add an outbox row per overdue item every minute until a worker caught up,
and the functions lock and re-check everything themselves (a sweep racing the delayed job has one
effect). One failing item is logged and the sweep goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, TenantRef
from app.fulfillment import pickups, sla, timeouts
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus, Shipment

log = logging.getLogger(__name__)
BATCH = 500  # per kind and tenant and minute; the rest waits for the next minute


async def _overdue(session: AsyncSession, now) -> dict[str, list[int]]:
    accept = select(FulfillmentOrder.id).where(
        FulfillmentOrder.status.in_(timeouts.WAITING), FulfillmentOrder.accept_by <= now
    )
    pickup = select(FulfillmentOrder.id).where(
        FulfillmentOrder.status == FulfillmentStatus.packed, FulfillmentOrder.pickup_by <= now
    )
    unscanned = select(Shipment.id).where(
        Shipment.sla_due_at <= now,
        Shipment.delivered_at.is_(None),
        Shipment.last_scan_at.is_(None),
        Shipment.alerted_at.is_(None),
    )
    return {
        name: list((await session.scalars(query.order_by(query.selected_columns[0]).limit(BATCH))).all())
        for name, query in (("accept", accept), ("pickup", pickup), ("sla", unscanned))
    }


ACTIONS: dict[str, Callable[[AsyncSession, int], Awaitable[str]]] = {
    "accept": timeouts.expire_acceptance,
    "pickup": pickups.expire,
    "sla": sla.alert_unscanned,
}


async def sweep_tenant(db: Database, ref: TenantRef, *, now: datetime | None = None) -> Counter:
    """Act on one tenant's overdue items; counts outcomes as ``"<kind>:<outcome>"``."""
    async with db.tenant_session(ref) as session:
        due = await _overdue(session, now if now is not None else func.now())
    outcomes: Counter = Counter()
    for kind, ids in due.items():
        for row_id in ids:
            try:
                async with db.tenant_session(ref) as session:
                    outcomes[f"{kind}:{await ACTIONS[kind](session, row_id)}"] += 1
            except Exception:
                log.exception("fulfilment sweep: %s %s of tenant %s failed", kind, row_id, ref.id)
                outcomes[f"{kind}:error"] += 1
    return outcomes


async def active_tenants(db: Database) -> list[TenantRef]:
    """The tenants a sweep visits, in id order."""
    from tenants.models import Tenant, TenantStatus  # the control plane imports app

    async with db.control_session() as session:
        rows = await session.execute(
            select(Tenant.id, Tenant.schema_name)
            .where(Tenant.status == TenantStatus.active)
            .order_by(Tenant.id)
        )
        return [TenantRef(tenant_id, schema) for tenant_id, schema in rows.all()]


async def sweep(db: Database, *, now: datetime | None = None) -> Counter:
    """Every active tenant's overdue items (``now``: a test's clock; default the database's)."""
    total: Counter = Counter()
    for ref in await active_tenants(db):
        try:
            total += await sweep_tenant(db, ref, now=now)
        except Exception:  # e.g. a tenant whose schema is mid-migration: the others still get swept
            log.exception("fulfilment sweep of tenant %s failed", ref.id)
    return total
