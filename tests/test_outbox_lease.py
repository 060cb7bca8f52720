"""An outbox row is done when its job has run, not when Redis accepted it: a job Redis lost is handed
over again once its lease is over, one still queued is left alone, one that ran is not run again.
Real PostgreSQL, real Redis, real arq worker (burst)."""

from __future__ import annotations

from arq.constants import job_key_prefix
from sqlalchemy import func, select, update

from app.activity.models import ActivityEvent
from app.config import get_settings
from app.db import TenantRef
from app.outbox import OutboxMessage, enqueue, job_id, relay_expired, relay_once
from tenants.models import Tenant


async def _provisioning(db, slug: str) -> tuple[Tenant, OutboxMessage]:
    """The tenant and the outbox row of its ``tenant_provisioned`` job."""
    async with db.control_session() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        row = await session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.tenant_id == tenant.id, OutboxMessage.job == "tenant_provisioned"
            )
        )
        return tenant, row


async def _row(db, row_id: int) -> OutboxMessage:
    async with db.control_session() as session:
        return await session.get(OutboxMessage, row_id)


async def _relay_all(db, redis) -> None:
    while await relay_once(db, redis, queue_name=get_settings().queue_name):
        pass


async def _activity(db, tenant: Tenant) -> int:
    async with db.tenant_session(TenantRef(tenant.id, tenant.schema_name)) as session:
        return await session.scalar(select(func.count()).select_from(ActivityEvent))


async def _only_this_tenant_unfinished(db, tenant: Tenant) -> None:
    """Earlier tests leave rows handed over whose jobs never ran; the lease check takes the oldest
    first, so they are settled here to make its counts this tenant's."""
    async with db.control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.tenant_id.is_distinct_from(tenant.id), OutboxMessage.done_at.is_(None))
            .values(done_at=func.now())
        )


async def test_a_job_redis_lost_after_the_hand_over_runs_once_its_lease_is_over(
    db, redis, client, tenant_a, run_jobs
):
    tenant, row = await _provisioning(db, tenant_a.slug)
    await _only_this_tenant_unfinished(db, tenant)
    await _relay_all(db, redis)
    handed = await _row(db, row.id)
    assert handed.sent_at is not None and handed.done_at is None, "accepted by Redis is not done"

    # Still queued: the lease check leaves it there and renews the lease.
    outcomes = await relay_expired(db, redis, queue_name=get_settings().queue_name, lease_s=0)
    assert outcomes["again"] == 0 and outcomes["waiting"] >= 1
    assert (await _row(db, row.id)).sent_at > handed.sent_at

    # Redis restarts empty: the job is gone, the row says sent.
    await redis.delete(job_key_prefix + job_id(row.id))
    await redis.zrem(get_settings().queue_name, job_id(row.id))
    metrics = (await client.get("/metrics")).text
    assert 'oms_outbox_rows{state="unfinished"}' in metrics
    outcomes = await relay_expired(db, redis, queue_name=get_settings().queue_name, lease_s=0)
    assert outcomes["again"] >= 1
    assert 'oms_fault_events_total{event="outbox_again"}' in (await client.get("/metrics")).text
    assert (await _row(db, row.id)).attempts == 2
    await run_jobs()
    assert (await _row(db, row.id)).done_at is not None
    assert await _activity(db, tenant) == 1


async def test_a_job_that_ran_is_done_and_a_lost_done_mark_does_not_run_it_again(
    db, redis, tenant_a, run_jobs
):
    tenant, row = await _provisioning(db, tenant_a.slug)
    await run_jobs()
    assert (await _row(db, row.id)).done_at is not None, "the worker marks the rows of the jobs it ran"

    # The worker died before writing its mark: arq still keeps the result, so the row is done.
    async with db.control_session() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(done_at=None))
    await _only_this_tenant_unfinished(db, tenant)
    outcomes = await relay_expired(db, redis, queue_name=get_settings().queue_name, lease_s=0)
    assert outcomes["done"] >= 1
    assert (await _row(db, row.id)).done_at is not None
    await run_jobs()
    assert await _activity(db, tenant) == 1


async def test_a_job_that_failed_for_good_is_done(db, redis, tenant_a, run_jobs):
    tenant, _ = await _provisioning(db, tenant_a.slug)
    ref = TenantRef(tenant.id, tenant.schema_name)
    async with db.tenant_session(ref) as session:  # an order that does not exist: the job raises
        row = await enqueue(session, "route_order", tenant_id=tenant.id, order_id=987654321)
    await run_jobs()
    failed = await _row(db, row.id)
    assert failed.sent_at is not None and failed.done_at is not None, "arq will not run it again"
