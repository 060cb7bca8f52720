"""Faults with real processes, each ending with every order in its expected state, once (one routing
decision, one fulfilment order, its units reserved once, the ledger agreeing with the levels):

* ``oms worker`` killed with SIGKILL in the middle of routing a batch, then a new one started;
* a Redis the test started restarted empty after the outbox handed the jobs over (recovered by the
  outbox lease, or with the lease out of the way by the stuck-order sweep);
* ``oms serve`` killed with SIGKILL while webhooks and ``ingestOrders`` are sent concurrently;
* the app's database backends terminated (``pg_terminate_backend``) while the worker routes.

Thresholds are made short through ``OMS_*`` in the processes' environment, not by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess

import asyncpg
import httpx
import pytest
from arq.connections import RedisSettings, create_pool
from sqlalchemy import func, select

from app.channels.models import Channel
from app.config import get_settings
from app.db import TenantRef, get_db, plain_url, tenant_session
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus
from app.inventory.models import Reservation, ReservationStatus, StockLevel
from app.orders.models import Order, OrderEvent, OrderLineMaterial, OrderStatus
from app.outbox import relay_once
from app.routing.models import RoutingDecision
from tests.factories import tenant_ref
from tests.process_support import RedisServer, spawn_worker, stop, wait_until, worker_polls
from tests.routing_support import CHENGDU, assert_ledger, gid, ingest, make_shop, order_body, sign, warehouse
from tests.server_support import oms_serve

ROUTED = (OrderStatus.routed, OrderStatus.released)
FAST = {"OUTBOX_LEASE_S": "2", "SHORT_JOB_S": "5"}  # a lost job is looked at again after 2 s


async def shop_with_orders(tenant, count: int, prefix: str):
    """A shop stocked for ``count`` orders of the generic fixture (4 units each) and those orders, stored
    and reserved through the channel door with no worker running: their route jobs wait in the outbox."""
    ref = await tenant_ref(tenant.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 2 * count + 5})
    orders = []
    for i in range(count):
        orders.append(await ingest(shop, f"{prefix}-{i}-{secrets.token_hex(2)}"))
    return ref, shop, orders


async def routed(ref: TenantRef, order_ids: list[int]) -> int:
    async with tenant_session(ref) as session:
        return await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.id.in_(order_ids), Order.status.in_([s.value for s in ROUTED]))
        )


async def decided(ref: TenantRef) -> int:
    async with tenant_session(ref) as session:
        return await session.scalar(select(func.count()).select_from(RoutingDecision))


async def assert_each_routed_once(ref: TenantRef, order_ids: list[int]) -> None:
    async with tenant_session(ref) as session:
        statuses = dict(
            (await session.execute(select(Order.id, Order.status).where(Order.id.in_(order_ids)))).all()
        )
        assert {OrderStatus(s) for s in statuses.values()} <= set(ROUTED), statuses
        per_order = {
            order_id: n
            for order_id, n in (
                await session.execute(
                    select(RoutingDecision.order_id, func.count())
                    .where(RoutingDecision.status == "routed")
                    .group_by(RoutingDecision.order_id)
                )
            ).all()
        }
        assert per_order == dict.fromkeys(order_ids, 1), "one routing decision per order"
        fos = dict(
            (
                await session.execute(
                    select(FulfillmentOrder.order_id, func.count())
                    .where(FulfillmentOrder.status != FulfillmentStatus.cancelled)
                    .group_by(FulfillmentOrder.order_id)
                )
            ).all()
        )
        assert fos == dict.fromkeys(order_ids, 1), "one fulfilment order per order"
        ordered = await session.scalar(
            select(func.sum(OrderLineMaterial.quantity)).where(OrderLineMaterial.order_id.in_(order_ids))
        )
        held = await session.scalar(
            select(func.sum(Reservation.quantity)).where(Reservation.status == ReservationStatus.active)
        )
        at_locations = await session.scalar(select(func.sum(StockLevel.reserved)))
        assert ordered == held == at_locations == 4 * len(order_ids), (ordered, held, at_locations)
    await assert_ledger(ref)


@pytest.fixture
def worker_log(tmp_path):
    return tmp_path / "worker.log"


@pytest.fixture
def processes():
    """Processes a test starts; whatever is still running at the end is stopped."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        stop(process)


async def test_a_worker_killed_in_the_middle_of_a_batch_leaves_every_order_routed_once(
    db, tenant_a, worker_log, processes
):
    ref, _, orders = await shop_with_orders(tenant_a, 40, "KILL")
    redis_url = os.environ["OMS_REDIS_URL"]
    processes.append(first := spawn_worker(redis_url, worker_log, **FAST))

    await wait_until(lambda: decided_any(ref), "the first routing decisions", within_s=30, every_s=0.02)
    first.kill()  # SIGKILL: no shut-down, its jobs in flight and its done marks are lost
    first.wait(10)
    assert await routed(ref, orders) < len(orders), "killed too late to be in the middle of the batch"

    processes.append(spawn_worker(redis_url, worker_log, **FAST))

    async def all_routed() -> bool:
        return await routed(ref, orders) == len(orders)

    await wait_until(all_routed, "every order to be routed after the restart", within_s=120)
    await asyncio.sleep(1)  # a duplicate run would show up now
    await assert_each_routed_once(ref, orders)


async def decided_any(ref: TenantRef) -> bool:
    return await decided(ref) > 0


@pytest.mark.parametrize("recovered_by", ["outbox lease", "stuck-order sweep"])
async def test_jobs_lost_in_a_redis_that_restarted_empty_still_route_every_order_once(
    db, tenant_a, worker_log, processes, recovered_by
):
    ref, _, orders = await shop_with_orders(tenant_a, 8, "LOST")
    own = RedisServer()
    own.start()
    try:
        pool = await create_pool(RedisSettings.from_dsn(own.url))
        try:  # the relay hands the route jobs to Redis ...
            while await relay_once(db, pool, queue_name=get_settings().queue_name):
                pass
        finally:
            await pool.aclose()
        assert await get_db_queue_size(own.url) >= len(orders)
        own.kill()  # ... which restarts empty before any worker ran them
        own.start()
        env = (
            FAST
            if recovered_by == "outbox lease"
            else {
                "OUTBOX_LEASE_S": "3600",
                "STUCK_AFTER": "reserved=2,routed=2",
                "STUCK_SWEEP_EVERY_S": "1",
            }
        )
        processes.append(spawn_worker(own.url, worker_log, **env))
        await wait_until(lambda: worker_polls(own.url), "the worker's first poll", within_s=20)

        async def all_routed() -> bool:
            return await routed(ref, orders) == len(orders)

        await wait_until(all_routed, f"every order to be routed by the {recovered_by}", within_s=120)
        await asyncio.sleep(1)
        await assert_each_routed_once(ref, orders)
        async with tenant_session(ref) as session:
            swept = await session.scalar(
                select(func.count(func.distinct(OrderEvent.order_id))).where(
                    OrderEvent.kind == "stuck", OrderEvent.order_id.in_(orders)
                )
            )
        assert swept == (0 if recovered_by == "outbox lease" else len(orders))
    finally:
        for process in processes:
            stop(process)
        own.kill()


async def get_db_queue_size(url: str) -> int:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        return await pool.zcard(get_settings().queue_name)
    finally:
        await pool.aclose()


async def test_the_api_killed_mid_request_stores_each_answered_order_once_and_the_rest_on_resend(
    db, tenant_a
):
    ref = await tenant_ref(tenant_a.slug)
    shop = await make_shop(ref, {await warehouse(ref, "WH Chengdu", CHENGDU): 500})
    async with tenant_session(ref) as session:
        secret = (await session.get(Channel, shop.channel_id)).webhook_secret
    channel_gid = gid("Channel", ref, shop.channel_id)
    hooks = {f"HOOK-{i}-{secrets.token_hex(2)}": None for i in range(30)}
    batches = [[f"BATCH-{b}-{i}-{secrets.token_hex(2)}" for i in range(5)] for b in range(4)]
    ingest_orders = """mutation($input: IngestOrdersInput!) {
      ingestOrders(input: $input) { results { outcome error order { id } } userErrors { code } } }"""

    async def send_hook(http: httpx.AsyncClient, url: str, external_id: str) -> bool:
        body = order_body(external_id)
        try:
            r = await http.post(
                f"{url}/webhooks/channels/{channel_gid}", content=body, headers=sign(secret, body)
            )
        except httpx.TransportError:
            return False
        return 200 <= r.status_code < 300

    async def send_batch(http: httpx.AsyncClient, url: str, ids: list[str]) -> bool:
        variables = {
            "input": {"channelId": channel_gid, "orders": [json.loads(order_body(x)) for x in ids]},
        }
        try:
            r = await http.post(
                f"{url}/graphql",
                json={"query": ingest_orders, "variables": variables},
                headers={"x-api-key": tenant_a.api_key},
            )
        except httpx.TransportError:
            return False
        if r.status_code != 200 or r.json().get("errors"):
            return False
        payload = r.json()["data"]["ingestOrders"]
        return payload["userErrors"] == [] and all(x["order"] for x in payload["results"])

    async def send_all(url: str, hook_ids, batch_ids, *, kill=None) -> tuple[list[str], list[list[str]]]:
        """Send concurrently; ``kill`` (a process) is killed once a few answers came back. Returns what
        was answered 2xx."""
        async with httpx.AsyncClient(timeout=30) as http:
            tasks = {asyncio.ensure_future(send_hook(http, url, x)): [x] for x in hook_ids}
            tasks |= {asyncio.ensure_future(send_batch(http, url, ids)): ids for ids in batch_ids}
            if kill is not None:
                for answers, finished in enumerate(asyncio.as_completed(list(tasks)), 1):
                    await finished
                    if answers == 5:
                        kill.kill()  # SIGKILL, requests in flight
                        break
            await asyncio.gather(*tasks, return_exceptions=True)
        answered = [ids for task, ids in tasks.items() if task.result() is True]
        return answered

    with oms_serve() as (server, url):
        answered = await send_all(url, list(hooks), batches, kill=server)
        server.wait(10)
    answered_ids = [x for ids in answered for x in ids]
    assert 0 < len(answered_ids) < len(hooks) + 20, "the kill came too early or too late"
    assert await stored(ref, answered_ids) == dict.fromkeys(answered_ids, 1), "answered 2xx: stored once"

    with oms_serve() as (server, url):  # everything is sent again, answered or not
        again = await send_all(url, list(hooks), batches)
    assert sorted(x for ids in again for x in ids) == sorted([*hooks, *(x for b in batches for x in b)])
    everything = [*hooks, *(x for b in batches for x in b)]
    assert await stored(ref, everything) == dict.fromkeys(everything, 1)
    await assert_ledger(ref)


async def stored(ref: TenantRef, external_ids: list[str]) -> dict[str, int]:
    async with tenant_session(ref) as session:
        rows = await session.execute(
            select(Order.external_id, func.count())
            .where(Order.external_id.in_(external_ids))
            .group_by(Order.external_id)
        )
        return dict(rows.all())


async def test_database_backends_terminated_while_the_worker_routes_leave_every_order_routed_once(
    db, tenant_a, worker_log, processes
):
    ref, _, orders = await shop_with_orders(tenant_a, 30, "TERM")
    processes.append(worker := spawn_worker(os.environ["OMS_REDIS_URL"], worker_log, **FAST))
    await wait_until(lambda: decided_any(ref), "the first routing decisions", within_s=30, every_s=0.02)

    admin = await asyncpg.connect(plain_url(get_db().url), server_settings={"application_name": "fault-test"})
    try:
        terminated = 0
        for _ in range(6):  # the app's connections, the worker's among them, cut again and again
            terminated += await admin.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND application_name = 'order-hub'"""
            )
            await asyncio.sleep(0.3)
    finally:
        await admin.close()
    assert terminated > 0

    async def all_routed() -> bool:
        return await routed(ref, orders) == len(orders)

    await wait_until(all_routed, "every order to be routed", within_s=120)
    assert worker.poll() is None, "the worker must survive its connections being cut"
    await asyncio.sleep(1)
    await assert_each_routed_once(ref, orders)
