"""A Redis outage under a real ``oms worker`` process: the test starts its own ``redis-server``, kills it
under the worker, and starts it again empty. The worker (and the outbox relay inside it) must wait,
log the outage once, and carry on: an order placed during the outage and one placed after it are both
routed, once."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from app.config import get_settings
from app.db import get_db
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.process_support import RedisServer, log_lines, spawn_worker, stop, wait_until, worker_polls
from tests.routing_support import (
    CHENGDU,
    assert_ledger,
    decisions,
    fulfillment_orders,
    ingest,
    make_shop,
    order_of,
    route_job,
    warehouse,
)

ROUTED = (OrderStatus.routed, OrderStatus.released)


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def worker_process(own_redis, tmp_path):
    process = spawn_worker(own_redis.url, tmp_path / "worker.log")
    try:
        yield process
    finally:
        stop(process)


async def quiet(ref, url: str) -> bool:
    """No outbox row of the tenant due and unsent, and the worker's queue empty."""
    async with get_db().control_session() as session:
        due = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.available_at <= func.now(),
            )
        )
    r = aioredis.from_url(url)
    try:
        return not due and not await r.zcard(get_settings().queue_name)
    finally:
        await r.aclose()


async def test_the_worker_waits_out_a_redis_restart_and_routes_every_order_once(
    db, tenant_a, own_redis, worker_process
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    await wait_until(lambda: worker_polls(own_redis.url), "the worker's first poll")
    await wait_until(lambda: quiet(ref, own_redis.url), "the shop's own jobs to run")

    own_redis.kill()
    during = await ingest(shop, f"DURING-{secrets.token_hex(3)}")  # its route job cannot be handed over
    await asyncio.sleep(3)
    assert worker_process.poll() is None, "oms worker exited when Redis went away"
    assert (await route_job(ref, during)).sent_at is None, "the relay must keep the row unsent"

    own_redis.start()  # same port, empty
    after = await ingest(shop, f"AFTER-{secrets.token_hex(3)}")

    async def both_routed() -> bool:
        return all([(await order_of(ref, o)).status in ROUTED for o in (during, after)])

    await wait_until(both_routed, "both orders to be routed")
    await wait_until(lambda: quiet(ref, own_redis.url), "the tenant's jobs to run")
    assert worker_process.poll() is None
    for order_id in (during, after):
        assert (await order_of(ref, order_id)).status in ROUTED
        assert len(await decisions(ref, order_id)) == 1
        assert len(await fulfillment_orders(ref, order_id)) == 1
    await assert_ledger(ref)

    lines = log_lines(worker_process.log)
    for logger in ("app.worker", "app.outbox"):
        down = [x for x in lines if x["logger"] == logger and "Redis unreachable" in x["msg"]]
        back = [x for x in lines if x["logger"] == logger and "Redis is back" in x["msg"]]
        assert len(down) == 1 and len(back) == 1, (logger, down, back)


async def test_a_worker_started_while_redis_is_down_waits_for_it_and_stops_cleanly_on_sigterm(
    db, own_redis, tmp_path
):
    own_redis.kill()
    process = spawn_worker(own_redis.url, tmp_path / "worker.log")
    try:
        await asyncio.sleep(3)
        assert process.poll() is None, "oms worker exited: Redis was not there at start"
        own_redis.start()
        await wait_until(lambda: worker_polls(own_redis.url), "the worker's first poll", within_s=30)
        own_redis.kill()  # and a supervisor stops it in the middle of the next outage
        await asyncio.sleep(1)
        assert process.poll() is None
    finally:
        code = stop(process)
    assert code == 0, code
    lines = log_lines(process.log)
    down = [x for x in lines if x["logger"] == "app.worker" and "Redis unreachable" in x["msg"]]
    assert len(down) == 2, down  # once per outage, not once per try
