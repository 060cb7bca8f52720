"""``routeOrder`` after a fault: an order whose job was lost (handed to a Redis that restarted empty) is
re-driven, exactly the missing step and once; an order with nothing left to do gets NOT_ROUTABLE and
the reason; another tenant cannot reach it. Real outbox, real arq worker, a real HTTP connector."""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.db import get_db, tenant_session
from app.fulfillment.models import FulfillmentStatus
from app.orders import service as orders
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from app.routing import jobs
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    assert_ledger,
    connect,
    drain,
    fulfillment_orders,
    gid,
    ingest,
    make_shop,
    order_of,
    warehouse,
)

ROUTE_ORDER = f"""mutation($input: RouteOrderInput!) {{
  routeOrder(input: $input) {{ requested action {ERRORS} }} }}"""


async def waiting(ref, job: str) -> list[OutboxMessage]:
    """The tenant's unsent outbox rows of ``job``."""
    async with get_db().control_session() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.tenant_id == ref.id, OutboxMessage.job == job, OutboxMessage.sent_at.is_(None)
        )
        return list((await session.scalars(query.order_by(OutboxMessage.id))).all())


async def lose(ref, job: str) -> None:
    """The relay handed these rows to Redis, which then restarted empty: marked sent, jobs gone."""
    async with get_db().control_session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id, OutboxMessage.job == job, OutboxMessage.sent_at.is_(None)
            )
            .values(sent_at=func.now())
        )


async def route_order(gql, tenant, ref, order_id: int) -> dict:
    data = await gql(ROUTE_ORDER, {"input": {"orderId": gid("Order", ref, order_id)}}, api_key=tenant.api_key)
    return data["routeOrder"]


async def routed_but_never_handed_over(gql, tenant, url: str, external_id: str):
    """An order routed to a location with a connector, whose release job was lost."""
    ref = await tenant_ref(tenant.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    await connect(gql, tenant, ref, chengdu, url)
    order_id = await ingest(shop, external_id)
    [job] = await waiting(ref, "route_order")
    await lose(ref, "route_order")
    assert await jobs.route_order({}, outbox_id=job.id, tenant_id=ref.id, order_id=order_id) == "routed"
    await lose(ref, "release_fulfilment")
    return ref, order_id


async def test_a_routed_order_whose_hand_over_was_lost_is_handed_over_again_once(
    gql, tenant_a, run_jobs, connector_server
):
    ref, order_id = await routed_but_never_handed_over(gql, tenant_a, connector_server.url, "STUCK-R1")
    await drain(run_jobs)  # nothing is left to run: the order is stuck
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.pending and connector_server.requests == []
    assert (await order_of(ref, order_id)).status is OrderStatus.routed

    assert await route_order(gql, tenant_a, ref, order_id) == {
        "requested": True,
        "action": "hand_over",
        "userErrors": [],
    }
    # Asked again before the worker came by: the hand-over is already waiting, nothing is added.
    again = await route_order(gql, tenant_a, ref, order_id)
    assert again == {"requested": True, "action": "waiting", "userErrors": []}
    assert [row.kwargs for row in await waiting(ref, "release_fulfilment")] == [
        {"fulfillment_order_id": fo.id}
    ]
    assert await waiting(ref, "route_order") == []
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.assigned and len(connector_server.requests) == 1
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    await assert_ledger(ref)

    # Now every line is with its location: nothing to do, and the answer says so.
    done = await route_order(gql, tenant_a, ref, order_id)
    assert done["requested"] is False and done["action"] is None
    [error] = done["userErrors"]
    assert error["code"] == "NOT_ROUTABLE" and error["field"] == ["orderId"]
    assert error["message"].startswith("the order is released: every line is on a fulfilment order already")
    await drain(run_jobs)
    assert len(connector_server.requests) == 1


async def test_a_reserved_order_whose_route_job_was_lost_is_routed_once(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "STUCK-A1")
    await lose(ref, "route_order")
    assert await route_order(gql, tenant_a, ref, order_id) == {
        "requested": True,
        "action": "route",
        "userErrors": [],
    }
    assert (await route_order(gql, tenant_a, ref, order_id))["action"] == "waiting"
    assert len(await waiting(ref, "route_order")) == 1
    await drain(run_jobs)
    assert len(await fulfillment_orders(ref, order_id)) == 1
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    await assert_ledger(ref)


async def test_a_cancelled_order_is_not_routed_and_the_answer_names_its_status(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "STUCK-C1")
    async with tenant_session(ref) as session:
        await orders.cancel(session, order_id, reason="buyer cancelled", actor="ops")
    await drain(run_jobs)
    answer = await route_order(gql, tenant_a, ref, order_id)
    assert answer["requested"] is False
    [error] = answer["userErrors"]
    assert error["code"] == "NOT_ROUTABLE" and error["message"].startswith("the order is cancelled: only ")
    assert await waiting(ref, "route_order") == []


async def test_tenant_b_cannot_re_drive_tenant_a_stuck_order(
    gql, tenant_a, tenant_b, run_jobs, connector_server
):
    a, order_id = await routed_but_never_handed_over(gql, tenant_a, connector_server.url, "STUCK-X1")
    b = await tenant_ref(tenant_b.slug)
    for order_gid in (gid("Order", a, order_id), gid("Order", b, order_id)):  # A's id, and rewritten to B
        data = await gql(ROUTE_ORDER, {"input": {"orderId": order_gid}}, api_key=tenant_b.api_key)
        answer = data["routeOrder"]
        assert answer["requested"] is False and answer["action"] is None
        assert [e["code"] for e in answer["userErrors"]] == ["NOT_FOUND"]
    assert await waiting(a, "release_fulfilment") == [] and await waiting(b, "release_fulfilment") == []
    await drain(run_jobs)
    [fo] = await fulfillment_orders(a, order_id)
    assert fo.status is FulfillmentStatus.pending and connector_server.requests == []  # still A's to re-drive
    assert (await route_order(gql, tenant_a, a, order_id))["action"] == "hand_over"
    await drain(run_jobs)
    assert len(connector_server.requests) == 1
