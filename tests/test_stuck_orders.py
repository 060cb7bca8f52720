"""The stuck-order sweep (arq cron ``stuck_order_sweep``, ``app.routing.stuck``): an order left in a
waiting state with no job to move it on, whatever the reason, is re-driven once through the outbox,
with the try on its timeline; tries of an order that stays stuck are spaced and bounded."""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.db import get_db, tenant_session
from app.fulfillment.models import FulfillmentStatus
from app.orders.models import Order, OrderStatus
from app.outbox import OutboxMessage
from app.redis import get_redis
from app.routing import jobs
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    assert_ledger,
    decisions,
    drain,
    events,
    fulfillment_orders,
    ingest,
    make_shop,
    order_of,
    warehouse,
)


async def sweep() -> dict[str, int]:
    """What the worker's cron runs (with the worker's Redis, where it counts for /metrics)."""
    return await jobs.stuck_order_sweep({"db": get_db(), "redis": await get_redis()})


async def counted(client, event: str) -> int:
    """``oms_fault_events_total{event=...}`` as the API's /metrics shows it."""
    text = (await client.get("/metrics")).text
    prefix = f'oms_fault_events_total{{event="{event}"}} '
    return next((int(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0)


async def lose_for_good(ref, job: str) -> None:
    """The tenant's ``job`` rows are marked done without having run (a bug, a job that failed for good):
    no lease will bring them back."""
    async with get_db().control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id, OutboxMessage.job == job, OutboxMessage.done_at.is_(None)
            )
            .values(sent_at=func.now(), done_at=func.now())
        )


async def age(ref, order_id: int, seconds: int) -> None:
    """The order entered its status ``seconds`` ago (instead of waiting that long)."""
    async with tenant_session(ref) as session:
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(status_changed_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        )


async def pending(ref, job: str) -> int:
    async with get_db().control_session() as session:
        return await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id, OutboxMessage.job == job, OutboxMessage.done_at.is_(None)
            )
        )


async def stuck_events(ref, order_id: int) -> list[str]:
    return [e.message for e in await events(ref, order_id) if e.kind == "stuck"]


async def test_a_reserved_order_with_no_job_left_is_re_driven_once_and_routed_once(
    db, client, tenant_a, tenant_b, run_jobs, settings_env
):
    settings_env(STUCK_AFTER="reserved=60,routed=60")
    a, b = await tenant_ref(tenant_a.slug), await tenant_ref(tenant_b.slug)
    shops = {}
    for ref in (a, b):
        shops[ref.id] = await make_shop(ref, {await warehouse(ref, "WH Chengdu", CHENGDU): 5})
    stuck = {ref.id: await ingest(shops[ref.id], f"STUCK-{ref.id}") for ref in (a, b)}
    await lose_for_good(a, "route_order")
    await lose_for_good(b, "route_order")
    await drain(run_jobs)
    assert (await order_of(a, stuck[a.id])).status is OrderStatus.reserved

    await sweep()  # other tests' tenants may have stuck orders: only a's and b's are looked at here
    for ref in (a, b):
        assert await pending(ref, "route_order") == 0, "not stuck for 60 s yet"
        assert await stuck_events(ref, stuck[ref.id]) == []
    for ref in (a, b):
        await age(ref, stuck[ref.id], 61)
    before = await counted(client, "stuck_route")
    outcomes = await sweep()
    assert outcomes["route"] >= 2
    assert await counted(client, "stuck_route") == before + outcomes["route"]
    for ref in (a, b):  # each tenant's order re-driven in its own schema, through its own outbox row
        assert await pending(ref, "route_order") == 1
        [message] = await stuck_events(ref, stuck[ref.id])
        assert message.startswith("reserved for over 1.0 min with no job pending: re-driven (route)")
    await sweep()  # the job is waiting: nothing is added
    for ref in (a, b):
        assert await pending(ref, "route_order") == 1
        assert len(await stuck_events(ref, stuck[ref.id])) == 1

    await drain(run_jobs)
    for ref in (a, b):
        assert (await order_of(ref, stuck[ref.id])).status is OrderStatus.released
        assert len(await decisions(ref, stuck[ref.id])) == 1
        assert len(await fulfillment_orders(ref, stuck[ref.id])) == 1
        await assert_ledger(ref)
    await sweep()
    assert len(await stuck_events(a, stuck[a.id])) == 1, "a routed order is no longer swept"


async def test_a_routed_order_whose_release_never_ran_is_handed_over(db, tenant_a, run_jobs, settings_env):
    settings_env(STUCK_AFTER="routed=60")
    ref = await tenant_ref(tenant_a.slug)
    shop = await make_shop(ref, {await warehouse(ref, "WH Chengdu", CHENGDU): 5})
    order_id = await ingest(shop, "STUCK-R")
    async with get_db().control_session() as session:
        [route] = (
            await session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.tenant_id == ref.id, OutboxMessage.job == "route_order"
                )
            )
        ).all()
    await lose_for_good(ref, "route_order")
    assert await jobs.route_order({}, outbox_id=route, tenant_id=ref.id, order_id=order_id) == "routed"
    await lose_for_good(ref, "release_fulfilment")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.pending
    assert (await order_of(ref, order_id)).status is OrderStatus.routed

    await age(ref, order_id, 61)
    assert (await sweep())["hand_over"] >= 1
    assert await pending(ref, "release_fulfilment") == 1
    await drain(run_jobs)
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is not FulfillmentStatus.pending
    await assert_ledger(ref)


async def test_an_order_that_stays_stuck_is_tried_again_only_after_a_longer_wait(
    db, tenant_a, run_jobs, settings_env
):
    settings_env(STUCK_AFTER="reserved=60")
    ref = await tenant_ref(tenant_a.slug)
    shop = await make_shop(ref, {await warehouse(ref, "WH Chengdu", CHENGDU): 5})
    order_id = await ingest(shop, "STUCK-U", city="Atlantis", province="Mu")
    await drain(run_jobs)  # unlocated: stays reserved, waiting for an operator
    await age(ref, order_id, 61)
    assert (await sweep())["route"] >= 1
    await drain(run_jobs)
    assert [d.status for d in await decisions(ref, order_id)] == ["unlocated", "unlocated"]
    await sweep()
    assert len(await stuck_events(ref, order_id)) == 1, "the next try waits twice the threshold"
    async with tenant_session(ref) as session:  # the first try was 2 minutes ago
        from app.orders.models import OrderEvent

        await session.execute(
            update(OrderEvent)
            .where(OrderEvent.order_id == order_id, OrderEvent.kind == "stuck")
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 121))
        )
    assert (await sweep())["route"] >= 1
    assert len(await stuck_events(ref, order_id)) == 2
    await drain(run_jobs)
