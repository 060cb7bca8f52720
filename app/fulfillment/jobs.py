"""arq jobs of fulfilment (thin). Reached only through the outbox."""

from __future__ import annotations

import logging

from arq import Retry
from sqlalchemy.exc import DBAPIError

from app.db import get_db, is_transient
from app.fulfillment import service, timeouts
from app.outbox import job_tenant

log = logging.getLogger(__name__)


async def release_fulfilment(
    ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int, attempt: int | None = None
) -> str:
    """Hand a fulfilment order to its location's connector; failures are retried through the outbox
    with backoff (``service.release``). Idempotent on the delivery row."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    try:
        async with get_db().tenant_session(tenant) as session:
            outcome = await service.release(session, fulfillment_order_id, attempt=attempt)
    except DBAPIError as exc:
        if is_transient(exc):
            raise Retry(defer=2) from exc
        raise
    log.info("release_fulfilment %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome


async def fulfilment_accept_timeout(ctx, *, outbox_id: int, tenant_id: int, fulfillment_order_id: int) -> str:
    """A store's time to accept is up: take the fulfilment order away and route it again, unless it was
    accepted meanwhile (``timeouts.expire_acceptance``; idempotent under the order's lock)."""
    tenant = await job_tenant(tenant_id)
    if tenant is None:
        return "no_tenant"
    try:
        async with get_db().tenant_session(tenant) as session:
            outcome = await timeouts.expire_acceptance(session, fulfillment_order_id)
    except DBAPIError as exc:
        if is_transient(exc):
            raise Retry(defer=2) from exc
        raise
    log.info("fulfilment_accept_timeout %s (outbox %s): %s", fulfillment_order_id, outbox_id, outcome)
    return outcome
