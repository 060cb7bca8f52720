"""Faults under jobs and requests, injected for real: the database backend serving a job is terminated
(pg_terminate_backend) while the job waits on a row lock, every backend of the test database is cut
between requests, and a worker's in-progress mark is read from Redis. Each ends with every order in its
expected state, once."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import asyncpg
import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.jobs import Job
from arq.worker import Worker

from app.config import get_settings
from app.db import plain_url
from app.orders.models import OrderStatus
from app.redis import redis_settings
from app.routing import jobs as routing_jobs
from app.worker import FUNCTIONS, MAX_TRIES, SHORT_JOB_S, job, retry_delay
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    assert_ledger,
    decisions,
    drain,
    fulfillment_orders,
    ingest,
    make_shop,
    order_of,
    route_job,
    warehouse,
)

INJECTOR = "fault-injector"
# A backend of the app (pool connections carry this name) blocked by the test's own lock holder: the job
# under test, and not some other job of an earlier test that happens to wait on another lock.
WAITING_JOB_BACKEND = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'order-hub' AND $1 = ANY(pg_blocking_pids(pid))
"""


async def injector() -> asyncpg.Connection:
    """A connection of the test's own, outside the app's pool."""
    return await asyncpg.connect(
        plain_url(get_settings().database_url), server_settings={"application_name": INJECTOR}
    )


async def lock_order(conn: asyncpg.Connection, schema: str, order_id: int) -> None:
    """Hold the order's row lock, so route_order (which locks it first) waits where we can find it."""
    await conn.execute("BEGIN")
    await conn.execute(f'SELECT id FROM "{schema}".orders WHERE id = $1 FOR UPDATE', order_id)


async def terminate_waiting_job(
    conn: asyncpg.Connection, locker: asyncpg.Connection, done: set[int], within_s: float = 30.0
) -> None:
    """Wait for a job backend (not one in ``done``, which may linger a moment after its end) to queue on
    the lock, then terminate it. ``conn`` must not be in a transaction: pg_stat_activity is read once per
    transaction."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        blocker = locker.get_server_pid()
        pids = {row["pid"] for row in await conn.fetch(WAITING_JOB_BACKEND, blocker)} - done
        if pids:
            assert len(pids) == 1, pids
            pid = pids.pop()
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            done.add(pid)
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no job backend ever waited on the order's lock")


async def routed_once(ref, order_id: int) -> None:
    order = await order_of(ref, order_id)
    assert order.status in (OrderStatus.routed, OrderStatus.released), order.status
    assert len(await decisions(ref, order_id)) == 1
    assert len(await fulfillment_orders(ref, order_id)) == 1
    await assert_ledger(ref)


async def reserved_order(tenant, name: str):
    ref = await tenant_ref(tenant.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, f"{name}-{secrets.token_hex(3)}")
    return ref, order_id


# ---- a dropped connection is retried ------------------------------------------------------------------


async def test_a_job_whose_connection_is_terminated_is_retried_and_routes_the_order_once(
    tenant_a, run_jobs, redis
):
    ref, order_id = await reserved_order(tenant_a, "CUT")
    outbox = await route_job(ref, order_id)
    locker, watcher = await injector(), await injector()
    try:
        await lock_order(locker, ref.schema_name, order_id)
        worker = asyncio.create_task(drain(run_jobs))
        await terminate_waiting_job(watcher, locker, set())
        await locker.execute("ROLLBACK")
        await asyncio.wait_for(worker, 60)
    finally:
        await locker.close()
        await watcher.close()
    await routed_once(ref, order_id)
    from app.outbox import job_id

    info = await Job(job_id(outbox.id), redis, _queue_name=get_settings().queue_name).result_info()
    assert info is not None and info.success and info.job_try == 2, info


async def test_max_tries_bounds_the_retries_of_a_connection_that_keeps_dropping(tenant_a, run_jobs, redis):
    ref, order_id = await reserved_order(tenant_a, "CUTS")
    outbox = await route_job(ref, order_id)
    queue = f"{get_settings().queue_name}:faults:{secrets.token_hex(3)}"
    job_key = f"faults:{secrets.token_hex(4)}"
    kwargs = {"outbox_id": outbox.id, "tenant_id": ref.id, "order_id": order_id}
    assert await ArqRedis(connection_pool=redis.connection_pool).enqueue_job(
        "route_order", _job_id=job_key, _queue_name=queue, **kwargs
    )
    worker = Worker(
        functions=[job(routing_jobs.route_order, timeout_s=SHORT_JOB_S, max_tries=2)],
        redis_settings=redis_settings(),
        queue_name=queue,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    locker, watcher = await injector(), await injector()
    try:
        await lock_order(locker, ref.schema_name, order_id)
        running = asyncio.create_task(worker.main())
        terminated: set[int] = set()
        for _ in range(2):  # both tries lose their connection; a third is never started
            await terminate_waiting_job(watcher, locker, terminated)
        await asyncio.wait_for(running, 30)
        await locker.execute("ROLLBACK")
    finally:
        await worker.close()
        await locker.close()
        await watcher.close()
    info = await Job(job_key, redis, _queue_name=queue).result_info()
    assert info is not None and not info.success, info
    assert "max 2 retries exceeded" in str(info.result)
    assert (await order_of(ref, order_id)).status is OrderStatus.reserved  # untouched, nothing half done
    assert await decisions(ref, order_id) == []
    await drain(run_jobs)  # the outbox's own message still routes it, once
    await routed_once(ref, order_id)


def test_retries_back_off_and_the_order_path_jobs_have_short_timeouts():
    delays = [retry_delay(t) for t in range(1, MAX_TRIES)]
    assert delays[0] <= 1 and delays == sorted(delays) and delays[-1] <= 30
    assert 60 <= sum(delays) <= 300  # long enough to ride out a restart or failover, then give up
    by_name = {f.name: f for f in FUNCTIONS}
    order_path = (
        "route_order",
        "release_fulfilment",
        "fulfilment_accept_timeout",
        "reroute_fulfilment",
        "pickup_expiry",
        "run_order_automation",
        "deliver_connector_message",
        "tenant_provisioned",
    )
    for name in order_path:
        assert by_name[name].timeout_s is not None and by_name[name].timeout_s <= 30, name
    assert all(f.timeout_s is not None and f.timeout_s <= 120 and f.max_tries == MAX_TRIES for f in FUNCTIONS)


async def test_a_short_job_is_held_in_progress_only_for_its_own_timeout(redis):
    """arq marks a started job in progress for the longest timeout of the worker's functions + 10 s:
    that is how long a killed worker's job waits before another worker may run it."""

    async def in_progress_ms(ctx) -> int:
        return await ctx["redis"].pttl(in_progress_key_prefix + ctx["job_id"])

    queue, probe = f"{get_settings().queue_name}:hold:{secrets.token_hex(3)}", f"probe:{secrets.token_hex(4)}"
    assert await ArqRedis(connection_pool=redis.connection_pool).enqueue_job(
        "in_progress_ms", _job_id=probe, _queue_name=queue
    )
    worker = Worker(
        functions=[*FUNCTIONS, job(in_progress_ms, timeout_s=SHORT_JOB_S)],
        redis_settings=redis_settings(),
        queue_name=queue,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    assert worker.in_progress_timeout_s >= 120  # the long jobs set arq's one value
    try:
        await asyncio.wait_for(worker.main(), 30)
    finally:
        await worker.close()
    info = await Job(probe, redis, _queue_name=queue).result_info()
    assert info is not None and info.success, info
    assert 0 < info.result <= (SHORT_JOB_S + 10) * 1000


# ---- connections cut between requests -----------------------------------------------------------------


async def test_after_every_backend_is_terminated_readyz_and_graphql_answer_on_the_first_try(
    client, gql, tenant_a
):
    conn = await injector()
    try:
        await client.get("/readyz")  # the pool holds connections to cut
        pids = [
            row["pid"]
            for row in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        ]
        assert pids
        for pid in pids:
            await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(200):  # gone on the server's side before the app's next checkout
            left = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = any($1)", pids)
            if not left:
                break
            await asyncio.sleep(0.02)
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    data = await gql("{ materials(first: 1) { edges { node { id } } } }", token=tenant_a.token)
    assert data["materials"]["edges"] == []


# ---- which errors are worth another try ----------------------------------------------------------------


async def test_a_refused_connection_is_transient_and_a_broken_query_is_not(db):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.db import async_url, is_lost_connection, is_transient

    down = create_async_engine(async_url("postgresql://postgres@127.0.0.1:1/postgres"))
    try:
        with pytest.raises(Exception) as refused:
            async with down.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await down.dispose()
    assert is_transient(refused.value) and is_lost_connection(refused.value), repr(refused.value)

    with pytest.raises(Exception) as broken:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELEC 1"))
    assert not is_transient(broken.value)

    with pytest.raises(Exception) as twin:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TEMP TABLE twins (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO twins VALUES (1), (1)"))
    assert is_transient(twin.value) and not is_lost_connection(twin.value)
    try:
        raise ValueError("a domain error") from twin.value
    except ValueError as domain:
        assert not is_transient(domain)  # raised while handling a race, but not one itself


async def test_a_job_past_its_own_timeout_is_retried_not_failed_for_good(tenant_a, redis):
    """A route job blocked longer than its timeout (here a lock; in life a starved CPU) is cancelled,
    rolled back and retried, instead of failing for good and leaving its order for the stuck sweep."""
    ref, order_id = await reserved_order(tenant_a, "SLOW")
    outbox = await route_job(ref, order_id)
    queue = f"{get_settings().queue_name}:slow:{secrets.token_hex(3)}"
    job_key = f"slow:{secrets.token_hex(4)}"
    kwargs = {"outbox_id": outbox.id, "tenant_id": ref.id, "order_id": order_id}
    assert await ArqRedis(connection_pool=redis.connection_pool).enqueue_job(
        "route_order", _job_id=job_key, _queue_name=queue, **kwargs
    )
    worker = Worker(
        functions=[job(routing_jobs.route_order, timeout_s=2)],
        redis_settings=redis_settings(),
        queue_name=queue,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    locker = await injector()
    try:
        await lock_order(locker, ref.schema_name, order_id)
        running = asyncio.create_task(worker.main())
        await asyncio.sleep(2.5)  # past the first try's own timeout (1.6 s), inside arq's (2 s)
        await locker.execute("ROLLBACK")
        await asyncio.wait_for(running, 60)
    finally:
        await worker.close()
        await locker.close()
    info = await Job(job_key, redis, _queue_name=queue).result_info()
    assert info is not None and info.success and info.job_try >= 2, info
    await routed_once(ref, order_id)
