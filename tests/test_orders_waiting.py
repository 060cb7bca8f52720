"""Orders waiting for stock go on by themselves when it arrives (``app.orders.waiting``): through the
debounced ``resume_waiting_orders`` job and a real arq worker, first placed first served, presale
backorders filled and routed, no unit sold twice under concurrent runs, idempotent, per tenant; and the
operators' ``resumeWaitingOrders`` mutation."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from app.db import get_db, tenant_session
from app.inventory import ledger
from app.inventory import service as inventory
from app.inventory.models import NetworkStock, Reservation
from app.inventory.signals import RESUME_JOB
from app.orders import jobs, waiting
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.ingest_support import ingest_one, line_of, make_presale, route_jobs, web_order
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    assert_ledger,
    decisions,
    drain,
    events,
    gid,
    order_of,
    run_delayed,
    warehouse,
)

RESUME = f"""mutation($input: ResumeWaitingOrdersInput!) {{
  resumeWaitingOrders(input: $input) {{ resumed followUp {ERRORS} }} }}"""
CANCEL = f"""mutation($input: CancelOrderInput!) {{
  cancelOrder(input: $input) {{ order {{ status }} {ERRORS} }} }}"""
PLACED = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


async def place(ref, channel, external_id: str, lines: list[dict], *, minutes: int = 0) -> tuple[int, str]:
    """An order through ingest, placed ``minutes`` after PLACED; returns (order id, its status)."""
    order = dataclasses.replace(web_order(external_id, lines), placed_at=PLACED + timedelta(minutes=minutes))
    result = await ingest_one(ref, channel, order)
    return result.order_id, result.status


async def status(ref, order_id: int) -> OrderStatus:
    return (await order_of(ref, order_id)).status


async def receive(ref, location_id: int, material_id: int, units: int) -> None:
    async with tenant_session(ref) as session:
        await inventory.receive(session, location_id, material_id, units, reason="delivery")


async def resume(ref, **kw) -> waiting.Resumed:
    async with tenant_session(ref) as session:
        return await waiting.resume_waiting(session, **kw)


async def network(ref, material_id: int) -> NetworkStock:
    async with tenant_session(ref) as session:
        return await session.get(NetworkStock, material_id)


async def pending_resume_jobs(tenant_id: int, *, after_id: int = 0) -> int:
    async with get_db().control_session() as session:
        return await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.job == RESUME_JOB,
                OutboxMessage.tenant_id == tenant_id,
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.id > after_id,
            )
        )


async def last_outbox_id() -> int:
    async with get_db().control_session() as session:
        return await session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))


async def shop(ref, *, stock: int = 0):
    """A web channel, a located warehouse in Chengdu, one product with ``stock`` units there."""
    channel = await make_channel(ref, "web")
    location = await warehouse(ref, "WH Chengdu", CHENGDU)
    item = await make_sellable(ref, channel.id, stock=stock, location_id=location)
    return channel, location, item


# ---- end to end through the worker --------------------------------------------------------------------


async def test_an_order_awaiting_stock_is_reserved_and_routed_when_stock_is_received(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel, location, item = await shop(ref)
    order_id, first = await place(ref, channel, "W-1", [line_of(item, 2)])
    assert first == "awaiting_stock"
    await drain(run_jobs)
    assert await status(ref, order_id) is OrderStatus.awaiting_stock

    await receive(ref, location, item.material_id, 1)  # not enough yet: it keeps waiting
    await receive(ref, location, item.material_id, 1)
    assert await pending_resume_jobs(ref.id) == 1  # debounced: one job for both receipts
    await run_delayed(ref, run_jobs)

    assert await status(ref, order_id) in (OrderStatus.routed, OrderStatus.released)
    [decision] = await decisions(ref, order_id)
    assert decision.status == "routed"
    moves = [(e.from_status, e.to_status, e.actor) for e in await events(ref, order_id) if e.kind == "status"]
    assert ("awaiting_stock", "reserved", "stock") in moves
    assert ("reserved", "routed", "routing") in moves
    stock = await network(ref, item.material_id)
    assert (stock.on_hand, stock.reserved) == (2, 2)
    await assert_ledger(ref)


async def test_a_cancellation_that_gives_stock_back_resumes_a_waiting_order(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel, _, item = await shop(ref, stock=1)
    holder, first = await place(ref, channel, "C-1", [line_of(item)])
    waiter, second = await place(ref, channel, "C-2", [line_of(item)], minutes=1)
    assert (first, second) == ("reserved", "awaiting_stock")
    await run_delayed(ref, run_jobs)  # the stock's own receipt job, and routing: nothing left pending
    assert await pending_resume_jobs(ref.id) == 0
    assert await status(ref, waiter) is OrderStatus.awaiting_stock
    before = await last_outbox_id()
    data = await gql(
        CANCEL, {"input": {"id": gid("Order", ref, holder), "reason": "buyer"}}, api_key=tenant_a.api_key
    )
    assert data["cancelOrder"]["userErrors"] == []
    assert await pending_resume_jobs(ref.id, after_id=before) == 1
    await run_delayed(ref, run_jobs)
    assert await status(ref, waiter) in (OrderStatus.routed, OrderStatus.released)
    await assert_ledger(ref)


async def test_a_presale_order_is_filled_and_routed_once_stock_arrives(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel = await make_channel(ref, "web")
    location = await warehouse(ref, "WH Chengdu", CHENGDU)
    presale = await make_presale(ref, channel.id)
    order_id, first = await place(ref, channel, "P-1", [line_of(presale, 2)])
    assert first == "presale"
    await drain(run_jobs)
    assert await status(ref, order_id) is OrderStatus.presale
    assert any("waiting for presale stock" in e.message for e in await events(ref, order_id))

    await receive(ref, location, presale.material_id, 3)
    await run_delayed(ref, run_jobs)

    assert await status(ref, order_id) in (OrderStatus.routed, OrderStatus.released)
    assert [d.status for d in await decisions(ref, order_id)][-1] == "routed"
    async with tenant_session(ref) as session:
        row = await session.scalar(select(Reservation).where(Reservation.reference == f"order:{order_id}"))
    assert (row.quantity, row.backordered) == (2, 0)
    stock = await network(ref, presale.material_id)
    assert (stock.on_hand, stock.reserved) == (3, 2)
    moves = [(e.from_status, e.to_status) for e in await events(ref, order_id) if e.kind == "status"]
    assert ("presale", "reserved") in moves
    await assert_ledger(ref)


# ---- fairness -----------------------------------------------------------------------------------------


async def test_the_order_placed_first_is_served_first_and_not_leapfrogged(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel, location, item = await shop(ref)
    other = await make_sellable(ref, channel.id, stock=0)
    # Ingested newest first: ids go the other way from the placing times.
    newer, _ = await place(ref, channel, "F-3", [line_of(item, 1)], minutes=30)
    small, _ = await place(ref, channel, "F-2", [line_of(item, 1)], minutes=20)
    big, _ = await place(ref, channel, "F-1", [line_of(item, 2)], minutes=10)
    # The oldest of all waits for another material: it does not hold ``item`` back from the others.
    elsewhere, _ = await place(ref, channel, "F-0", [line_of(other), line_of(item)], minutes=0)

    await receive(ref, location, item.material_id, 1)
    result = await resume(ref)
    # F-1 (2 units) is short: nobody placed after it may take the one unit, though F-2 needs only one.
    assert result.order_ids == [] and result.blocked.materials == {other.material_id, item.material_id}
    assert {await status(ref, o) for o in (elsewhere, big, small, newer)} == {OrderStatus.awaiting_stock}

    await receive(ref, location, item.material_id, 2)  # three units now: F-1 takes 2, F-2 the last
    result = await resume(ref)
    assert result.order_ids == [big, small]
    assert [await status(ref, o) for o in (elsewhere, big, small, newer)] == [
        OrderStatus.awaiting_stock,
        OrderStatus.reserved,
        OrderStatus.reserved,
        OrderStatus.awaiting_stock,
    ]


async def test_a_long_queue_is_served_in_pages_with_a_follow_up_job(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    channel, location, item = await shop(ref)
    orders = [(await place(ref, channel, f"Q-{i}", [line_of(item)], minutes=i))[0] for i in range(3)]
    await receive(ref, location, item.material_id, 3)
    result = await resume(ref, page=1)
    assert result.order_ids == orders[:1] and result.follow_up
    async with get_db().control_session() as session:
        # The receipt's debounced job is dropped: the follow-up alone must serve the rest.
        debounced = (OutboxMessage.tenant_id == ref.id) & (OutboxMessage.job == RESUME_JOB)
        await session.execute(delete(OutboxMessage).where(debounced, ~OutboxMessage.kwargs.has_key("after")))
        [follow_up] = (await session.scalars(select(OutboxMessage).where(debounced))).all()
    assert follow_up.kwargs["after"][1] == orders[0] and follow_up.sent_at is None
    await drain(run_jobs)
    statuses = [await status(ref, o) for o in orders]  # reserved, then routed by the worker too
    assert OrderStatus.awaiting_stock not in statuses, statuses


# ---- safety -------------------------------------------------------------------------------------------


async def test_concurrent_runs_reserve_every_unit_once(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel, location, item = await shop(ref)
    presale = await make_presale(ref, channel.id)
    waiting_ids = [(await place(ref, channel, f"R-{i}", [line_of(item)], minutes=i))[0] for i in range(6)]
    presale_ids = [
        (await place(ref, channel, f"PR-{i}", [line_of(presale, 2)], minutes=10 + i))[0] for i in range(3)
    ]
    await receive(ref, location, item.material_id, 4)
    await receive(ref, location, presale.material_id, 5)  # two backorders of 2 fit, not the third

    first, second = await asyncio.gather(resume(ref), resume(ref))
    served = first.order_ids + second.order_ids
    assert len(served) == len(set(served)) == 6
    statuses = [await status(ref, o) for o in waiting_ids + presale_ids]
    assert statuses.count(OrderStatus.reserved) == 6
    # First placed, first served, even across the two runs.
    assert set(served) == set(waiting_ids[:4] + presale_ids[:2])
    stock, pre = await network(ref, item.material_id), await network(ref, presale.material_id)
    assert (stock.on_hand, stock.reserved) == (4, 4)
    assert (pre.on_hand, pre.reserved) == (5, 4)
    async with tenant_session(ref) as session:
        assert await ledger.check_ledger(session) == []
    for order_id in served:  # presale orders were sent to routing once when they came in
        assert await route_jobs(ref.id, order_id) == (2 if order_id in presale_ids else 1)


async def test_the_job_run_twice_has_one_effect(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    channel, location, item = await shop(ref)
    order_id, _ = await place(ref, channel, "J-1", [line_of(item)])
    await receive(ref, location, item.material_id, 5)
    assert await jobs.resume_waiting_orders({}, outbox_id=1, tenant_id=ref.id) == 1
    assert await jobs.resume_waiting_orders({}, outbox_id=1, tenant_id=ref.id) == 0
    assert await status(ref, order_id) is OrderStatus.reserved
    moves = [e for e in await events(ref, order_id) if e.kind == "status" and e.to_status == "reserved"]
    assert len(moves) == 1
    assert await route_jobs(ref.id, order_id) == 1
    assert (await network(ref, item.material_id)).reserved == 1
    await assert_ledger(ref)


# ---- tenants and the operators' mutation --------------------------------------------------------------


async def test_stock_in_one_tenant_never_resumes_another_and_the_mutation_stays_in_its_tenant(
    gql, tenant_a, tenant_b, run_jobs
):
    ref_a, ref_b = await tenant_ref(tenant_a.slug), await tenant_ref(tenant_b.slug)
    channel_a, location_a, item_a = await shop(ref_a)
    channel_b, location_b, item_b = await shop(ref_b)
    order_a, _ = await place(ref_a, channel_a, "X-1", [line_of(item_a)])
    order_b, _ = await place(ref_b, channel_b, "X-1", [line_of(item_b)])

    await receive(ref_a, location_a, item_a.material_id, 1)
    assert (await pending_resume_jobs(ref_a.id), await pending_resume_jobs(ref_b.id)) == (1, 0)
    await run_delayed(ref_a, run_jobs)
    assert await status(ref_a, order_a) is not OrderStatus.awaiting_stock
    assert await status(ref_b, order_b) is OrderStatus.awaiting_stock

    # B's stock arrives, but only A's job and A's operators act: B's order keeps waiting.
    await receive(ref_b, location_b, item_b.material_id, 1)
    assert await jobs.resume_waiting_orders({}, outbox_id=2, tenant_id=ref_a.id) == 0
    data = await gql(RESUME, {"input": {}}, api_key=tenant_a.api_key)
    assert data["resumeWaitingOrders"] == {"resumed": 0, "followUp": False, "userErrors": []}
    assert await status(ref_b, order_b) is OrderStatus.awaiting_stock

    data = await gql(RESUME, {"input": {}}, api_key=tenant_b.api_key)
    assert data["resumeWaitingOrders"] == {"resumed": 1, "followUp": False, "userErrors": []}
    assert await status(ref_b, order_b) is OrderStatus.reserved
    [event] = [e for e in await events(ref_b, order_b) if e.to_status == "reserved"]
    assert event.actor.startswith("api-key:")
    await run_delayed(ref_b, run_jobs)
    await assert_ledger(ref_a)
    await assert_ledger(ref_b)


async def test_the_mutation_needs_the_orders_write_scope_and_a_sane_limit(gql, tenant_a):
    anonymous = await gql.raw(RESUME, {"input": {}})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    key = await gql(
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        {"input": {"name": "reader", "scopes": ["orders:read"]}},
        token=tenant_a.token,
    )
    reader = await gql.raw(RESUME, {"input": {}}, api_key=key["createApiKey"]["key"])
    assert reader.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await gql(RESUME, {"input": {"limit": 0}}, api_key=tenant_a.api_key)
    assert [e["code"] for e in data["resumeWaitingOrders"]["userErrors"]] == ["INVALID_LIMIT"]


async def test_a_long_transaction_enqueues_one_resume_job_not_one_per_change(tenant_a):
    ref = await tenant_ref(tenant_a.slug)
    _, location, item = await shop(ref)
    before = await last_outbox_id()
    async with tenant_session(ref) as session:
        await inventory.receive(session, location, item.material_id, 1, reason="first pallet")
        await asyncio.sleep(1.7)  # past its own row's available_at (transaction start + 2 s) - margin
        await inventory.receive(session, location, item.material_id, 1, reason="second pallet")
        await inventory.receive(session, location, item.material_id, 1, reason="third pallet")
    assert await pending_resume_jobs(ref.id, after_id=before) == 1
