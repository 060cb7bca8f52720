"""Store accept timeout, through real arq workers: a store that does not accept in time loses the
fulfilment order (units back to the network, re-routed elsewhere, the timeline says why); one that
accepts in time keeps it; the job run twice (or early, or for another tenant) has one effect."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.db import control_session, tenant_session
from app.fulfillment import jobs as fulfilment_jobs
from app.fulfillment import timeouts
from app.fulfillment.models import FulfillmentOrder, FulfillmentStatus
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.routing_support import (
    assert_ledger,
    callback,
    decisions,
    drain,
    events,
    fulfillment_orders,
    level,
    order_of,
    run_delayed,
    store_order,
)


async def _timeout_rows(ref, fo_id: int) -> list[OutboxMessage]:
    async with control_session() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.tenant_id == ref.id,
            OutboxMessage.job == timeouts.JOB,
            OutboxMessage.kwargs["fulfillment_order_id"].as_integer() == fo_id,
        )
        return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def _time_passes(ref, fo_id: int) -> None:
    """The store's deadline is past and its timeout job is due (what 30 minutes would do)."""
    async with tenant_session(ref) as session:
        await session.execute(
            update(FulfillmentOrder)
            .where(FulfillmentOrder.id == fo_id)
            .values(accept_by=func.now() - timedelta(seconds=1))
        )
    async with control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.job == timeouts.JOB,
                OutboxMessage.sent_at.is_(None),
            )
            .values(available_at=func.now())
        )


async def _run_job(ref, fo_id: int, outbox_id: int = 1) -> str:
    return await fulfilment_jobs.fulfilment_accept_timeout(
        {}, outbox_id=outbox_id, tenant_id=ref.id, fulfillment_order_id=fo_id
    )


async def test_a_store_that_does_not_accept_in_time_loses_the_order_to_another_location(
    client, gql, tenant_a, tenant_b, run_jobs, connector_server
):
    ref, store, shanghai, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "TIMEOUT-1"
    )
    [row] = await _timeout_rows(ref, fo.id)
    async with control_session() as session:
        wait = await session.scalar(
            select(OutboxMessage.available_at - func.now()).where(OutboxMessage.id == row.id)
        )
    assert timedelta(minutes=29) < wait <= timedelta(minutes=30)  # the default: 30 minutes
    assert fo.accept_by is not None

    await drain(run_jobs)  # not due yet: nothing happens
    [still] = await fulfillment_orders(ref, order_id)
    assert still.status is FulfillmentStatus.assigned

    await _time_passes(ref, fo.id)
    await drain(run_jobs)

    timed_out, second = await fulfillment_orders(ref, order_id)
    assert timed_out.status is FulfillmentStatus.rejected
    assert timed_out.reason == "did not accept within 30 minutes"
    assert second.location_id == shanghai and second.status is FulfillmentStatus.assigned
    assert second.accept_by is None and await _timeout_rows(ref, second.id) == []  # warehouses: no timer
    gloves = shop.materials["SKU-2002"]
    at_store = await level(ref, store, gloves)
    assert (at_store.on_hand, at_store.reserved) == (3, 0)  # a silent store's shelf is left as it is
    assert (await level(ref, shanghai, gloves)).reserved == 2
    _, two = await decisions(ref, order_id)
    assert two.status == "routed" and "Store Chengdu excluded by rule status: rejected" in two.explanation
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    messages = [e.message for e in await events(ref, order_id)]
    assert any(
        m.startswith("store Store Chengdu did not accept within 30 minutes") and m.endswith("re-routed")
        for m in messages
    )
    await assert_ledger(ref)

    # Run again (arq may): one effect. Nor does another tenant's id reach this tenant's row.
    assert await _run_job(ref, fo.id) == "not_waiting:rejected"
    other = await tenant_ref(tenant_b.slug)
    assert await _run_job(other, fo.id) == "no_fulfillment_order"
    await drain(run_jobs)
    assert len(await fulfillment_orders(ref, order_id)) == 2
    assert len(await decisions(ref, order_id)) == 2
    # The store accepting late is refused: the order is no longer its to ship.
    r = await callback(client, ref, store, secret, fo.id, "accepted")
    assert r.status_code == 422
    await assert_ledger(ref)
    await run_delayed(ref, run_jobs)


async def test_a_store_that_accepts_in_time_keeps_the_order(
    gql, client, tenant_a, run_jobs, connector_server
):
    ref, store, _, shop, secret, order_id, fo = await store_order(
        gql, tenant_a, run_jobs, connector_server, "TIMEOUT-2"
    )
    # Run before the deadline (clocks apart): it only looks again later.
    assert await _run_job(ref, fo.id) == "not_due"
    assert len(await _timeout_rows(ref, fo.id)) == 2
    r = await callback(client, ref, store, secret, fo.id, "accepted")
    assert r.status_code == 200, r.text

    await _time_passes(ref, fo.id)
    await drain(run_jobs)

    [kept] = await fulfillment_orders(ref, order_id)
    assert kept.status is FulfillmentStatus.accepted and kept.location_id == store
    assert (await level(ref, store, shop.materials["SKU-2002"])).reserved == 2
    assert len(await decisions(ref, order_id)) == 1
    assert not any("did not accept" in e.message for e in await events(ref, order_id))
    assert await _run_job(ref, fo.id) == "not_waiting:accepted"
    await assert_ledger(ref)
