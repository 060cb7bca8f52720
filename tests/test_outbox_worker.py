"""Outbox -> arq -> idempotent job, and the inbox. Real PostgreSQL, real Redis, real arq worker."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy import func, select

from app.activity.models import ActivityEvent
from app.config import get_settings
from app.db import TenantRef
from app.inbox import InboxMessage, InboxStatus, mark, store
from app.outbox import OutboxMessage, enqueue, relay_once
from tenants.models import Tenant

ACTIVITY = "{ activity { edges { node { id kind data actor } } } viewer { tenant { readyAt } } }"


async def _tenant_row(db, slug: str) -> Tenant:
    async with db.control_session() as session:
        return await session.scalar(select(Tenant).where(Tenant.slug == slug))


async def test_signup_emits_tenant_provisioned_which_a_worker_records(gql, tenant_a, run_jobs):
    before = await gql(ACTIVITY, token=tenant_a.token)
    assert before["activity"]["edges"] == [] and before["viewer"]["tenant"]["readyAt"] is None
    await run_jobs()
    after = await gql(ACTIVITY, token=tenant_a.token)
    kinds = [e["node"]["kind"] for e in after["activity"]["edges"]]
    assert kinds == ["tenant.provisioned"]
    assert after["activity"]["edges"][0]["node"]["data"] == {"slug": tenant_a.slug}
    assert after["viewer"]["tenant"]["readyAt"] is not None


async def test_jobs_are_idempotent_when_delivered_twice(db, gql, tenant_a, run_jobs):
    await run_jobs()
    tenant = await _tenant_row(db, tenant_a.slug)
    # Deliver the same logical work again, as arq's at-least-once delivery may.
    async with db.tenant_session(TenantRef(tenant.id, tenant.schema_name)) as session:
        await enqueue(
            session,
            "tenant_provisioned",
            tenant_id=tenant.id,
            schema_name=tenant.schema_name,
            slug=tenant.slug,
        )
    await run_jobs()
    async with db.tenant_session(TenantRef(tenant.id, tenant.schema_name)) as session:
        count = await session.scalar(select(func.count()).select_from(ActivityEvent))
    assert count == 1


async def test_redis_outage_delays_but_loses_nothing(db, redis, tenant_a, run_jobs):
    queue = get_settings().queue_name
    dead = ArqRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    try:
        assert await relay_once(db, dead, queue_name=queue) == 0
    finally:
        await dead.aclose()
    async with db.control_session() as session:
        pending = (await session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))).all()
    assert pending, "the signup's outbox row must still be waiting"
    assert any(row.last_error for row in pending)
    await run_jobs()  # Redis is back
    async with db.control_session() as session:
        # Every row that is due went out; rows delayed on purpose (e.g. a store's accept timeout that an
        # earlier test scheduled) wait for their time.
        left = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.available_at <= func.now())
        )
    assert left == 0
    tenant = await _tenant_row(db, tenant_a.slug)
    assert tenant.ready_at is not None


async def test_enqueue_is_rolled_back_with_its_transaction(db):
    class Boom(Exception):
        pass

    try:
        async with db.control_session() as session:
            msg = await enqueue(session, "tenant_provisioned", note="never")
            outbox_id = msg.id
            raise Boom
    except Boom:
        pass
    async with db.control_session() as session:
        assert await session.get(OutboxMessage, outbox_id) is None


async def test_inbox_keeps_raw_payloads_and_failures(db):
    raw = b'{"id": 1, "broken": '
    async with db.control_session() as session:
        msg = await store(
            session,
            source="channel:test",
            body=raw,
            headers={"Content-Type": "application/json", "Authorization": "secret"},
        )
        inbox_id = msg.id
    async with db.control_session() as session:
        await mark(session, inbox_id, InboxStatus.failed, "JSONDecodeError: Expecting value")
    async with db.control_session() as session:
        row = await session.get(InboxMessage, inbox_id)
    assert row.body == raw
    assert row.status is InboxStatus.failed and "JSONDecodeError" in row.error
    assert row.headers == {"content-type": "application/json", "authorization": "<redacted>"}
    assert row.attempts == 1
