"""Orders mixing lines in stock with lines waiting for presale stock, from the ``ingestOrders`` door
through real arq workers, a real HTTP connector and signed callbacks: with the policy option
``shipInStockPartOfPresale`` (default on) the in-stock part ships now and the presale line when its
stock arrives, each line on exactly one fulfilment order however often the order is routed again; with
it off the whole order waits, as before the option. The option is per tenant."""

from __future__ import annotations

import secrets
from collections import Counter

from sqlalchemy import select
from strawberry.relay import GlobalID

from app.db import tenant_session
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, FulfillmentOrderLine, FulfillmentStatus
from app.inventory import service as inventory
from app.inventory.models import NetworkStock
from app.orders.models import OrderStatus
from app.routing import jobs
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    SHANGHAI,
    assert_ledger,
    callback,
    connect,
    decisions,
    drain,
    events,
    fulfillment_orders,
    gid,
    order_of,
    route_job,
    run_delayed,
    warehouse,
)
from tests.test_orders_ingest import make_presale

INGEST = f"""mutation($input: IngestOrdersInput!) {{
  ingestOrders(input: $input) {{ results {{ inboxStatus status order {{ id status }} }} {ERRORS} }} }}"""
POLICY = f"""mutation($input: RoutingPolicyInput!) {{
  updateRoutingPolicy(input: $input) {{ policy {{ shipInStockPartOfPresale }} {ERRORS} }} }}"""
READ_POLICY = "{ routingPolicy { shipInStockPartOfPresale } }"
ROUTE = f"""mutation($input: RouteOrderInput!) {{
  routeOrder(input: $input) {{ requested action {ERRORS} }} }}"""


async def presale_shop(ref, *, stocked_at: dict[int, int]):
    """A web channel, an in-stock product (units per location) and a presale product with no stock."""
    channel = await make_channel(ref, "web")
    (first, units), *others = stocked_at.items()
    item = await make_sellable(ref, channel.id, stock=units, location_id=first)
    async with tenant_session(ref) as session:
        for location, more in others:
            await inventory.receive(session, location, item.material_id, more, reason="test stock")
    presale = await make_presale(ref, channel.id)
    return channel, item, presale


def mixed_order(
    external_id: str,
    item,
    presale,
    *,
    presale_units: int = 2,
    buyer: str | None = None,
    city="成都市",
    province="四川省",
) -> dict:
    """A generic (oms.order.v1) paid order: 1 unit in stock and ``presale_units`` of the presale
    product (none: the in-stock line only). ``buyer`` names one buyer at one address (orders merge)."""
    phone = f"135{secrets.randbelow(10**8):08d}" if buyer is None else "13512345678"
    lines = [{"id": "1", "item_id": item.listing_item_id, "quantity": 1, "unit_price": "100.00"}]
    if presale_units:
        lines.append(
            {"id": "2", "item_id": presale.listing_item_id, "quantity": presale_units, "unit_price": "300.00"}
        )
    return {
        "format": "oms.order.v1",
        "id": external_id,
        "status": "paid",
        "placed_at": "2026-11-01T10:00:00+08:00",
        "paid_at": "2026-11-01T10:01:00+08:00",
        "currency": "CNY",
        "buyer": {"id": f"u-{buyer or external_id}", "name": "赵雪", "phone": phone},
        "shipping_address": {
            "name": "赵雪",
            "phone": phone,
            "country": "CN",
            "province": province,
            "city": city,
            "district": "武侯区",
            "street": f"天府大道北段 {buyer or external_id} 号",
        },
        "lines": lines,
    }


async def ingest(gql, tenant, ref, channel, body: dict, status: str = "presale") -> int:
    """Through ``ingestOrders``; returns the order's row id. The order is presale (units backordered)."""
    data = await gql(
        INGEST,
        {"input": {"channelId": gid("Channel", ref, channel.id), "orders": [body]}},
        api_key=tenant.api_key,
    )
    assert data["ingestOrders"]["userErrors"] == [], data
    [result] = data["ingestOrders"]["results"]
    assert result["inboxStatus"] == "processed" and result["order"]["status"] == status, result
    return int(GlobalID.from_id(result["order"]["id"]).node_id.split(".")[1])


async def routed_units(ref, order_id: int) -> Counter:
    """Units per material on the order's live fulfilment orders (not rejected or cancelled)."""
    live = [
        fo.id for fo in await fulfillment_orders(ref, order_id) if fo.status not in CLOSED_WITHOUT_SHIPPING
    ]
    async with tenant_session(ref) as session:
        rows = (
            await session.execute(
                select(FulfillmentOrderLine.material_id, FulfillmentOrderLine.quantity).where(
                    FulfillmentOrderLine.fulfillment_order_id.in_(live or [0])
                )
            )
        ).all()
    out: Counter = Counter()
    for material_id, qty in rows:
        out[material_id] += qty
    return out


async def receive(ref, location: int, material_id: int, units: int) -> None:
    async with tenant_session(ref) as session:
        await inventory.receive(session, location, material_id, units, reason="presale stock arrived")


async def test_the_in_stock_part_ships_now_and_the_presale_line_when_its_stock_arrives(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 5})
    secret = await connect(gql, tenant_a, ref, chengdu, connector_server.url)
    data = await gql(READ_POLICY, api_key=tenant_a.api_key)
    assert data["routingPolicy"]["shipInStockPartOfPresale"] is True  # the default

    order_id = await ingest(gql, tenant_a, ref, channel, mixed_order("MIX-1", item, presale))
    await drain(run_jobs)

    # The in-stock line is routed and handed over now; the presale line waits, on no fulfilment order.
    [first] = await fulfillment_orders(ref, order_id)
    assert first.location_id == chengdu and first.status is FulfillmentStatus.assigned
    assert await routed_units(ref, order_id) == Counter({item.material_id: 1})
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    [decision] = await decisions(ref, order_id)
    assert decision.status == "routed"
    assert "Waiting for presale stock, routed when it arrives: 2 x " in decision.explanation
    routed = next(e for e in await events(ref, order_id) if e.to_status == "routed")
    assert routed.from_status == "presale" and "in-stock part; waiting for presale stock" in routed.message
    assert len(connector_server.requests) == 1

    # The in-stock part ships: the order is partially shipped, not shipped (a line is still open).
    r = await callback(client, ref, chengdu, secret, first.id, "shipped", carrier="SF", tracking_number="SF1")
    assert r.status_code == 200, r.text
    assert (await order_of(ref, order_id)).status is OrderStatus.partially_shipped

    # Routing it again, by the route job or by an operator, ships nothing twice.
    job = await route_job(ref, order_id)
    again = await jobs.route_order({}, outbox_id=job.id + 10**9, tenant_id=ref.id, order_id=order_id)
    assert again == "awaiting_presale_stock"
    data = await gql(ROUTE, {"input": {"orderId": gid("Order", ref, order_id)}}, api_key=tenant_a.api_key)
    [error] = data["routeOrder"]["userErrors"]
    assert error["code"] == "NOT_ROUTABLE" and "waits for presale stock" in error["message"]
    await drain(run_jobs)
    assert len(await fulfillment_orders(ref, order_id)) == 1
    assert len(await decisions(ref, order_id)) == 1

    # The presale stock arrives: the backorder is filled and only the presale line is routed.
    await receive(ref, chengdu, presale.material_id, 3)
    await run_delayed(ref, run_jobs)
    first, second = await fulfillment_orders(ref, order_id)
    assert second.location_id == chengdu and second.status is FulfillmentStatus.assigned
    assert await routed_units(ref, order_id) == Counter({item.material_id: 1, presale.material_id: 2})
    assert [d.status for d in await decisions(ref, order_id)] == ["routed", "routed"]
    assert len(connector_server.requests) == 2
    messages = [e.message for e in await events(ref, order_id)]
    assert any(m.startswith("presale stock arrived: 2 backordered unit(s) now reserved") for m in messages)
    assert any(m.startswith("re-routed:") for m in messages)

    r = await callback(
        client, ref, chengdu, secret, second.id, "shipped", carrier="SF", tracking_number="SF2"
    )
    assert r.status_code == 200, r.text
    assert (await order_of(ref, order_id)).status is OrderStatus.shipped
    async with tenant_session(ref) as session:
        for material_id, on_hand in ((item.material_id, 4), (presale.material_id, 1)):
            stock = await session.get(NetworkStock, material_id)
            assert (stock.on_hand, stock.reserved) == (on_hand, 0)
    statuses = [e.to_status for e in await events(ref, order_id) if e.to_status]
    assert statuses[-4:] == ["routed", "released", "partially_shipped", "shipped"]
    await assert_ledger(ref)


async def test_with_the_option_off_the_whole_order_waits_for_the_presale_stock(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 5})
    data = await gql(POLICY, {"input": {"shipInStockPartOfPresale": False}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"] == {"policy": {"shipInStockPartOfPresale": False}, "userErrors": []}

    order_id = await ingest(gql, tenant_a, ref, channel, mixed_order("WHOLE-1", item, presale))
    await drain(run_jobs)
    assert await fulfillment_orders(ref, order_id) == []
    assert (await order_of(ref, order_id)).status is OrderStatus.presale
    assert any("routed once every unit is in stock" in e.message for e in await events(ref, order_id))
    data = await gql(ROUTE, {"input": {"orderId": gid("Order", ref, order_id)}}, api_key=tenant_a.api_key)
    assert data["routeOrder"]["userErrors"][0]["code"] == "NOT_ROUTABLE"

    await receive(ref, chengdu, presale.material_id, 2)
    await run_delayed(ref, run_jobs)
    assert await routed_units(ref, order_id) == Counter({item.material_id: 1, presale.material_id: 2})
    [decision] = await decisions(ref, order_id)
    assert decision.status == "routed" and "Waiting for presale stock" not in decision.explanation
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    await assert_ledger(ref)


async def test_a_rejected_in_stock_part_is_routed_again_alone_while_the_presale_line_waits(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 2, shanghai: 2})
    secret = await connect(gql, tenant_a, ref, chengdu, connector_server.url)
    order_id = await ingest(gql, tenant_a, ref, channel, mixed_order("REJ-MIX", item, presale))
    await drain(run_jobs)
    [first] = await fulfillment_orders(ref, order_id)
    assert first.location_id == chengdu

    r = await callback(client, ref, chengdu, secret, first.id, "rejected", reason="none left")
    assert r.status_code == 200, r.text
    await drain(run_jobs)
    rejected, second = await fulfillment_orders(ref, order_id)
    assert rejected.status is FulfillmentStatus.rejected and second.location_id == shanghai
    assert await routed_units(ref, order_id) == Counter({item.material_id: 1})  # the presale line waits
    assert [d.status for d in await decisions(ref, order_id)] == ["routed", "routed"]
    await assert_ledger(ref)


async def test_an_order_waiting_for_presale_stock_is_not_merged_with_its_buyer_next_order(
    gql, tenant_a, run_jobs
):
    """Merging would route every open line of both orders, the presale line too, from stock that
    another order holds at network level: sold twice. The waiting order keeps out of merges."""
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 5})
    await receive(ref, chengdu, presale.material_id, 1)
    data = await gql(
        POLICY.replace("shipInStockPartOfPresale }", "releaseDelayMinutes }"),
        {"input": {"releaseDelayMinutes": 30}},
        api_key=tenant_a.api_key,
    )
    assert data["updateRoutingPolicy"]["userErrors"] == []
    # Another buyer's order holds the one presale unit at network level (its address cannot be located).
    holder = await ingest(
        gql,
        tenant_a,
        ref,
        channel,
        mixed_order("HOLD-1", item, presale, presale_units=1, city="Atlantis", province="Nowhere"),
        status="reserved",
    )
    await drain(run_jobs)
    assert (await decisions(ref, holder))[-1].status == "unlocated"

    first = await ingest(
        gql, tenant_a, ref, channel, mixed_order("M-1", item, presale, presale_units=1, buyer="z")
    )
    await drain(run_jobs)
    [kept] = await fulfillment_orders(ref, first)
    assert await routed_units(ref, first) == Counter({item.material_id: 1})
    second = await ingest(
        gql,
        tenant_a,
        ref,
        channel,
        mixed_order("M-2", item, presale, presale_units=0, buyer="z"),
        status="reserved",
    )
    await drain(run_jobs)

    assert await routed_units(ref, first) == Counter({item.material_id: 1})  # the presale line still waits
    assert (await fulfillment_orders(ref, first))[0].status is kept.status  # not cancelled for a merge
    assert await routed_units(ref, second) == Counter({item.material_id: 1})
    assert (await order_of(ref, second)).merge_id is None
    async with tenant_session(ref) as session:
        stock = await session.get(NetworkStock, presale.material_id)
    assert (stock.on_hand, stock.reserved) == (1, 1)
    await assert_ledger(ref)


async def test_tenant_b_neither_sees_nor_changes_tenant_a_option(gql, tenant_a, tenant_b, run_jobs):
    data = await gql(POLICY, {"input": {"shipInStockPartOfPresale": False}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["userErrors"] == []
    data = await gql(READ_POLICY, api_key=tenant_b.api_key)
    assert data["routingPolicy"]["shipInStockPartOfPresale"] is True  # B's own policy, its default
    data = await gql(POLICY, {"input": {"shipInStockPartOfPresale": True}}, api_key=tenant_b.api_key)
    assert data["updateRoutingPolicy"] == {"policy": {"shipInStockPartOfPresale": True}, "userErrors": []}
    data = await gql(READ_POLICY, api_key=tenant_a.api_key)
    assert data["routingPolicy"]["shipInStockPartOfPresale"] is False  # B's change stayed in B

    # And A's orders follow A's option, whatever B set.
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 5})
    order_id = await ingest(gql, tenant_a, ref, channel, mixed_order("XT-1", item, presale))
    await drain(run_jobs)
    assert await fulfillment_orders(ref, order_id) == []


async def test_the_option_cannot_be_set_to_null(gql, tenant_a):
    data = await gql(POLICY, {"input": {"shipInStockPartOfPresale": None}}, api_key=tenant_a.api_key)
    [error] = data["updateRoutingPolicy"]["userErrors"]
    assert error["code"] == "INVALID_POLICY" and error["field"] == ["shipInStockPartOfPresale"]


HOLD = (
    f"""mutation($input: HoldOrderInput!) {{ holdOrder(input: $input) {{ order {{ status }} {ERRORS} }} }}"""
)
RELEASE_HOLDS = f"""mutation($input: ReleaseOrderHoldsInput!) {{
  releaseOrderHolds(input: $input) {{ order {{ status }} {ERRORS} }} }}"""


async def test_a_hold_after_the_in_stock_part_was_routed_keeps_that_part_and_the_presale_line_waiting(
    gql, tenant_a, run_jobs
):
    """Releasing the hold takes the order through reserving again (it becomes presale): routing then
    finds only the waiting line open and hands over the in-stock part it routed before, once."""
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    channel, item, presale = await presale_shop(ref, stocked_at={chengdu: 5})
    delay = POLICY.replace("shipInStockPartOfPresale }", "releaseDelayMinutes }")
    data = await gql(delay, {"input": {"releaseDelayMinutes": 30}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["userErrors"] == []
    order_id = await ingest(gql, tenant_a, ref, channel, mixed_order("HELD-1", item, presale))
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.pending  # not handed over yet: the release delay runs
    order = {"id": gid("Order", ref, order_id)}
    data = await gql(HOLD, {"input": {**order, "reason": "call the buyer"}}, api_key=tenant_a.api_key)
    assert data["holdOrder"] == {"order": {"status": "on_hold"}, "userErrors": []}
    data = await gql(RELEASE_HOLDS, {"input": order}, api_key=tenant_a.api_key)
    assert data["releaseOrderHolds"]["userErrors"] == []
    await drain(run_jobs)  # routed as before: handed over at once (the hold already made it wait)
    await run_delayed(ref, run_jobs)  # the delayed hand-over from the first routing changes nothing
    [again] = await fulfillment_orders(ref, order_id)
    assert again.id == fo.id and again.status is FulfillmentStatus.assigned
    assert await routed_units(ref, order_id) == Counter({item.material_id: 1})
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    assert len(await decisions(ref, order_id)) == 1
    messages = [e.message for e in await events(ref, order_id)]
    assert "routed as before (fulfilment orders kept)" in messages
    await assert_ledger(ref)
