"""Routing end to end, through real arq workers, real Redis and a real HTTP connector: an order comes
in through the channel door, is routed (decision stored and explained), released to the location's
connector (signed), shipped and delivered through signed callbacks; the ledger check holds throughout.
Also: running route_order twice, a store rejecting (re-routed elsewhere), an address that cannot be
located, the policy API and simulation (GraphQL and CLI)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.catalog.models import Material
from app.db import get_db, tenant_session
from app.fulfillment.models import FulfillmentStatus
from app.inventory import service as inventory
from app.inventory.models import LocationKind, NetworkStock, Reservation
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from app.routing import geo, jobs
from tests.factories import make_channel, make_sellable, tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    ORDER_ROUTING,
    POLICY,
    SHANGHAI,
    SIMULATE,
    UPDATE_POLICY,
    assert_ledger,
    callback,
    connect,
    decisions,
    drain,
    events,
    fulfillment_orders,
    gid,
    ingest,
    level,
    make_shop,
    order_of,
    route_job,
    run_delayed,
    sign,
    warehouse,
)

# ---- the whole flow ----------------------------------------------------------------------------------


async def test_an_ingested_order_is_routed_released_shipped_and_delivered(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {shanghai: 5, chengdu: 5})
    secret = await connect(gql, tenant_a, ref, chengdu, connector_server.url)

    order_id = await ingest(shop, "E2E-1")
    await drain(run_jobs)

    # Routed: one decision, explained, the nearest complete location wins.
    [decision] = await decisions(ref, order_id)
    assert decision.status == "routed" and decision.attempt == 1
    assert "Shipped whole from WH Chengdu" in decision.explanation
    assert "next: WH Shanghai" in decision.explanation
    data = await gql(ORDER_ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [shown] = data["orderRouting"]["decisions"]
    assert shown["explanation"] == decision.explanation and shown["carrier"] is None
    [shipment] = shown["shipments"]
    assert (
        shipment["locationId"] == gid("Location", ref, chengdu) and shipment["distanceKm"] < 10
    )  # 武侯区 to the city centre
    assert sorted(x["quantity"] for x in shipment["lines"]) == [1, 1, 2]
    by_name = {c["name"]: c for c in shown["candidates"]}
    assert by_name["WH Chengdu"]["chosen"] and not by_name["WH Shanghai"]["chosen"]
    assert by_name["WH Shanghai"]["factors"]["distance_km"] > 1500

    # Released: the connector got one signed request with the documented payload.
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.location_id == chengdu and fo.status is FulfillmentStatus.assigned
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    async with tenant_session(ref) as session:
        gloves_code = (await session.get(Material, shop.materials["SKU-2002"])).code
    [(headers, body)] = connector_server.requests
    assert headers["x-oms-signature"] == sign(secret, body)["X-OMS-Signature"]
    sent = json.loads(body)
    assert sent["event"] == "fulfillment_order.released"
    assert sent["fulfillment_order"]["id"] == gid("FulfillmentOrder", ref, fo.id)
    assert sent["order"]["number"] == (await order_of(ref, order_id)).number
    assert sent["address"]["city"] == "成都市"
    async with tenant_session(ref) as session:
        codes = (
            await session.scalars(select(Material.code).where(Material.id.in_(shop.materials.values())))
        ).all()
    assert sorted((x["material_code"], x["quantity"]) for x in sent["lines"]) == sorted(
        (code, 2 if code == gloves_code else 1) for code in codes
    )

    # The reservation moved from the network onto the location; availability did not change.
    scarf, gloves = shop.materials["SKU-1001-RED-M"], shop.materials["SKU-2002"]
    assert (await level(ref, chengdu, gloves)).reserved == 2
    assert (await level(ref, shanghai, gloves)).reserved == 0
    async with tenant_session(ref) as session:
        network = await session.get(NetworkStock, gloves)
    assert (network.on_hand, network.reserved) == (10, 2)
    await assert_ledger(ref)

    # Callbacks: accepted, shipped (twice: the second changes nothing), delivered.
    r = await callback(client, ref, chengdu, secret, fo.id, "accepted")
    assert r.status_code == 200 and r.json()["fulfillmentOrder"]["status"] == "accepted", r.text
    for _ in range(2):
        r = await callback(
            client, ref, chengdu, secret, fo.id, "shipped", carrier="SF", tracking_number="SF100"
        )
        assert r.status_code == 200, r.text
    assert (await order_of(ref, order_id)).status is OrderStatus.shipped
    gloves_level = await level(ref, chengdu, gloves)
    assert (gloves_level.on_hand, gloves_level.reserved) == (3, 0)
    assert (await level(ref, chengdu, scarf)).on_hand == 4
    async with tenant_session(ref) as session:
        statuses = (
            await session.scalars(
                select(Reservation.status).where(Reservation.reference == f"order:{order_id}")
            )
        ).all()
    assert {s.value for s in statuses} == {"consumed"}
    await assert_ledger(ref)

    r = await callback(client, ref, chengdu, secret, fo.id, "delivered")
    assert r.status_code == 200 and r.json()["fulfillmentOrder"]["status"] == "delivered"
    assert (await order_of(ref, order_id)).status is OrderStatus.delivered
    await assert_ledger(ref)

    timeline = [(e.kind, e.to_status, e.message) for e in await events(ref, order_id)]
    statuses_seen = [to for _, to, _ in timeline if to]
    assert statuses_seen[-5:] == ["reserved", "routed", "released", "shipped", "delivered"]
    assert any(kind == "shipment" and "SF SF100" in message for kind, _, message in timeline)
    routed = next(message for _, to, message in timeline if to == "routed")
    assert "WH Chengdu" in routed


async def test_route_order_run_twice_or_at_once_gives_one_decision(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "TWICE-1")
    job = await route_job(ref, order_id)
    # The same outbox message delivered twice, at once; then another message for the same order.
    same = await asyncio.gather(
        *(jobs.route_order({}, outbox_id=job.id, tenant_id=ref.id, order_id=order_id) for _ in range(2))
    )
    assert sorted(same) == ["duplicate", "routed"]
    other = await jobs.route_order({}, outbox_id=job.id + 10**9, tenant_id=ref.id, order_id=order_id)
    assert other == "already_routed"
    await drain(run_jobs)  # the relay hands the original message over too: still one result
    assert len(await decisions(ref, order_id)) == 1
    assert len(await fulfillment_orders(ref, order_id)) == 1
    assert (await level(ref, chengdu, shop.materials["SKU-2002"])).reserved == 2
    await assert_ledger(ref)


async def test_a_store_rejects_and_the_order_is_routed_elsewhere(
    client, gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    store = await warehouse(ref, "Store Chengdu", CHENGDU, kind=LocationKind.store)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {store: 3, shanghai: 5})
    secret = await connect(gql, tenant_a, ref, store, connector_server.url)
    order_id = await ingest(shop, "REJ-1")
    await drain(run_jobs)
    [first] = await fulfillment_orders(ref, order_id)
    assert first.location_id == store and first.accept_by is not None  # stores must accept in time

    r = await callback(client, ref, store, secret, first.id, "rejected", reason="shelf is empty")
    assert r.status_code == 200 and r.json()["fulfillmentOrder"]["status"] == "rejected", r.text
    gloves = shop.materials["SKU-2002"]
    at_store = await level(ref, store, gloves)
    assert (at_store.on_hand, at_store.reserved) == (1, 0)  # not there: on hand lowered by what it rejected
    await drain(run_jobs)

    rejected, second = await fulfillment_orders(ref, order_id)
    assert rejected.status is FulfillmentStatus.rejected and rejected.reason == "shelf is empty"
    assert second.location_id == shanghai and second.status is FulfillmentStatus.assigned  # no connector
    assert (await level(ref, shanghai, gloves)).reserved == 2
    _, two = await decisions(ref, order_id)
    assert two.attempt == 2 and two.status == "routed"
    assert "Store Chengdu excluded by rule status: rejected (rejected fulfilment order" in two.explanation
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    messages = [e.message for e in await events(ref, order_id)]
    assert any("rejected fulfilment order" in m and "shelf is empty" in m for m in messages)
    assert any("no connector" in m for m in messages)
    await assert_ledger(ref)

    # The rejected fulfilment order takes no further callbacks.
    r = await callback(client, ref, store, secret, first.id, "shipped")
    assert r.status_code == 422 and r.json()["status"] == "failed"


async def test_an_address_that_cannot_be_located_keeps_the_order_reserved(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "LOST-1", city="Atlantis", province="Mu")
    await drain(run_jobs)
    [decision] = await decisions(ref, order_id)
    assert decision.status == "unlocated" and "Atlantis" in decision.explanation
    assert (await order_of(ref, order_id)).status is OrderStatus.reserved
    assert any(e.message.startswith("address could not be located") for e in await events(ref, order_id))
    assert await fulfillment_orders(ref, order_id) == []

    # An operator corrects the address and asks again.
    async with tenant_session(ref) as session:
        from app.orders import service as orders

        await orders.edit_address(session, order_id, {"city": "重庆市", "province": "重庆市"}, actor="ops")
    data = await gql(
        f"mutation($input: RouteOrderInput!) {{ routeOrder(input: $input) {{ requested {ERRORS} }} }}",
        {"input": {"orderId": gid("Order", ref, order_id)}},
        api_key=tenant_a.api_key,
    )
    assert data["routeOrder"] == {"requested": True, "userErrors": []}
    await drain(run_jobs)
    assert [d.status for d in await decisions(ref, order_id)] == ["unlocated", "routed"]
    assert (await order_of(ref, order_id)).status is OrderStatus.released


async def test_not_enough_stock_anywhere_for_one_shipment_keeps_the_order_reserved(tenant_a, run_jobs):
    """Stock split so that no location holds a whole line: unfillable, nothing allocated."""
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {chengdu: 1, shanghai: 1})  # gloves: 2 wanted, 1 + 1 held
    order_id = await ingest(shop, "SHORT-1")
    await drain(run_jobs)
    [decision] = await decisions(ref, order_id)
    assert decision.status == "partial"
    assert "unfilled" in decision.explanation
    assert (await order_of(ref, order_id)).status is OrderStatus.reserved
    assert await fulfillment_orders(ref, order_id) == []
    assert any(e.message.startswith("not routed (partial)") for e in await events(ref, order_id))
    await assert_ledger(ref)


# ---- policy and simulation ---------------------------------------------------------------------------


async def test_the_policy_is_read_and_changed_at_run_time_with_validation(gql, tenant_a):
    data = await gql(f"{{ routingPolicy {{ {POLICY} }} }}", api_key=tenant_a.api_key)
    policy = data["routingPolicy"]
    assert policy["mode"] == "lexicographic" and policy["maxShipments"] is None
    assert [r["kind"] for r in policy["rules"]][:2] == ["status", "capability"]
    assert "sla" in policy["factors"]

    data = await gql(
        UPDATE_POLICY,
        {"input": {"mode": "weighted", "weights": {"sla": 0.75}, "maxShipments": 2}},
        api_key=tenant_a.api_key,
    )
    changed = data["updateRoutingPolicy"]
    assert changed["userErrors"] == []
    assert changed["policy"]["mode"] == "weighted" and changed["policy"]["weights"]["sla"] == 0.75
    assert changed["policy"]["weights"]["distance"] == 0.4  # merged, not replaced
    assert changed["policy"]["updatedBy"] == "api-key:back office"

    bad = [
        ({"weights": {"speed": 1}}, "INVALID_POLICY", ["weights", "speed"]),
        ({"weights": {"sla": -1}}, "INVALID_POLICY", ["weights.sla"]),
        ({"mode": "random"}, "INVALID_POLICY", ["mode"]),
        ({"maxShipments": 0}, "INVALID_POLICY", ["maxShipments"]),
        ({"rules": [{"code": "x", "kind": "teleport"}]}, "INVALID_POLICY", ["rules", "0"]),
        ({"rules": [{"code": "v", "kind": "vip_lane"}]}, "INVALID_POLICY", ["rules", "0"]),
        ({"storeRadiusKm": None}, "INVALID_POLICY", ["storeRadiusKm"]),
    ]
    for given, code, where in bad:
        data = await gql(UPDATE_POLICY, {"input": given}, api_key=tenant_a.api_key)
        assert [(e["code"], e["field"]) for e in data["updateRoutingPolicy"]["userErrors"]] == [
            (code, where)
        ], given
    data = await gql(f"{{ routingPolicy {{ {POLICY} }} }}", api_key=tenant_a.api_key)
    assert data["routingPolicy"]["weights"]["sla"] == 0.75 and data["routingPolicy"]["maxShipments"] == 2


async def test_simulating_another_policy_on_past_decisions(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    store = await warehouse(ref, "Store Shanghai", SHANGHAI, kind=LocationKind.store)
    shop = await make_shop(ref, {chengdu: 5, store: 5})
    order_id = await ingest(shop, "SIM-1")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.location_id == chengdu

    stores_first = {
        "mode": "weighted",
        "weights": {"distance": 0, "preference": 1},
        "kindBonus": {"store": 1},
    }
    data = await gql(SIMULATE, {"input": {"policy": stores_first, "last": 10}}, api_key=tenant_a.api_key)
    sim = data["simulateRouting"]
    assert sim["userErrors"] == []
    [row] = sim["orders"]
    assert row["orderId"] == gid("Order", ref, order_id) and row["changed"]
    assert row["locationsBefore"] == [gid("Location", ref, chengdu)]
    assert row["locationsAfter"] == [gid("Location", ref, store)]
    assert sim["totals"]["orders"] == 1 and sim["totals"]["changed"] == 1
    assert sim["totals"]["distanceKmAfter"] > sim["totals"]["distanceKmBefore"] + 1000
    # Nothing was saved.
    data = await gql("{ routingPolicy { mode } }", api_key=tenant_a.api_key)
    assert data["routingPolicy"]["mode"] == "lexicographic"

    same = await gql(
        SIMULATE, {"input": {"orderIds": [gid("Order", ref, order_id)]}}, api_key=tenant_a.api_key
    )
    assert [r["changed"] for r in same["simulateRouting"]["orders"]] == [False]
    bad = await gql(SIMULATE, {"input": {"policy": {"mode": "x"}}}, api_key=tenant_a.api_key)
    assert bad["simulateRouting"]["userErrors"][0]["code"] == "INVALID_POLICY"

    from tests.cli_support import oms

    out = await asyncio.to_thread(
        oms, "routing", "simulate", "--tenant", tenant_a.slug, "--weights", "sla=0.75"
    )
    assert out.returncode == 0, out.stderr
    number = (await order_of(ref, order_id)).number
    assert number in out.stdout and "1 orders, 0 changed" in out.stdout
    bad_cli = await asyncio.to_thread(
        oms, "routing", "simulate", "--tenant", tenant_a.slug, "--weights", "sla"
    )
    assert bad_cli.returncode == 2 and "factor=weight" in bad_cli.stderr


# ---- units -------------------------------------------------------------------------------------------


def test_cities_are_located_by_chinese_or_english_name_with_province_fallback():
    assert geo.locate("成都市", "四川省").name == "Chengdu"
    assert geo.locate("chengdu shi").name == "Chengdu"
    assert geo.locate("Xian").name == "Xi'an"
    guess = geo.locate("珠海市", "广东省")
    assert guess.matched == "province" and guess.name == "Guangdong"
    assert geo.locate("黄浦区", "上海市").name == "Shanghai"
    assert geo.locate("Atlantis", "Mu") is None and geo.locate(None, None) is None
    assert geo.locate_address({"city": 42, "province": "广西壮族自治区"}).name == "广西壮族自治区"


def test_the_city_table_is_package_data_and_matches_the_test_fixture():
    fixture = Path(__file__).parent / "fixtures" / "cn_cities.csv"
    assert geo.DATA.read_text(encoding="utf-8") == fixture.read_text(encoding="utf-8")


async def test_allocating_to_a_location_refuses_stock_it_no_longer_has(tenant_a):
    from app.errors import UserError
    from app.inventory import placement, reservations

    ref = await tenant_ref(tenant_a.slug)
    here = await warehouse(ref, "WH", CHENGDU)
    channel = await make_channel(ref, "web")
    s = await make_sellable(ref, channel.id, stock=3, location_id=here)
    async with tenant_session(ref) as session:
        await reservations.reserve(session, [reservations.ReserveLine(s.product_id, 3)], reference="t:1")
        await placement.allocate_to_location(session, "t:1", s.material_id, here, 2)
        with pytest.raises(UserError) as refused:
            await placement.allocate_to_location(session, "t:1", s.material_id, here, 2)
        assert refused.value.code == "INSUFFICIENT_STOCK"
        await placement.allocate_to_location(session, "t:1", s.material_id, here, 1)
        await placement.return_to_network(session, "t:1", s.material_id, here, 1, reason="test")
    at = await level(ref, here, s.material_id)
    assert (at.on_hand, at.reserved) == (3, 2)
    async with tenant_session(ref) as session:
        network = await session.get(NetworkStock, s.material_id)
    assert (network.on_hand, network.reserved) == (3, 3)
    await assert_ledger(ref)


async def test_stock_taken_while_routing_is_decided_again(tenant_a, run_jobs, monkeypatch):
    """The engine saw stock another order has taken since: the allocation refuses, the savepoint
    rolls back, and the order is decided again on fresh stock (after three such rounds it is retried
    through the outbox a minute later)."""
    from dataclasses import replace

    from app.routing import inputs

    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {chengdu: 1, shanghai: 5})  # Chengdu cannot ship the 2 gloves
    real_build, stale_rounds = inputs.build, []

    async def build(*args, **kw):
        built = await real_build(*args, **kw)
        if len(stale_rounds) < stale_for:
            stale_rounds.append(1)
            built.candidates = [
                replace(c, stock={m: 99 for m in c.stock}) if c.location_id == chengdu else c
                for c in built.candidates
            ]
        return built

    monkeypatch.setattr(inputs, "build", build)
    stale_for = 1
    order_id = await ingest(shop, "STALE-1")
    assert await jobs.route_order({}, outbox_id=10**9 + 1, tenant_id=ref.id, order_id=order_id) == "routed"
    [decision] = await decisions(ref, order_id)
    assert decision.attempt == 1 and "Shipped whole from WH Shanghai" in decision.explanation
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.location_id == shanghai
    assert (await level(ref, chengdu, shop.materials["SKU-1001-RED-M"])).reserved == 0  # rolled back
    await assert_ledger(ref)

    stale_rounds.clear()
    stale_for = 3
    other = await ingest(shop, "STALE-2")
    assert await jobs.route_order({}, outbox_id=10**9 + 2, tenant_id=ref.id, order_id=other) == "stock_moved"
    [moved] = await decisions(ref, other)
    assert moved.status == "stock_moved" and await fulfillment_orders(ref, other) == []
    assert (await order_of(ref, other)).status is OrderStatus.reserved
    async with get_db().control_session() as session:
        retry = await session.scalar(
            select(OutboxMessage.available_at - func.now()).where(
                OutboxMessage.job == "route_order",
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.kwargs["order_id"].as_integer() == other,
                OutboxMessage.available_at > func.now(),
            )
        )
    assert retry is not None and retry.total_seconds() > 50
    await assert_ledger(ref)
    await run_delayed(ref, run_jobs)  # the retry, once due, routes it on fresh stock
    assert [d.status for d in await decisions(ref, other)] == ["stock_moved", "routed"]
    await assert_ledger(ref)


@pytest.mark.parametrize("first", ["cancel_job", "release_job"])
async def test_an_order_cancelled_before_release_is_never_sent(gql, tenant_a, connector_server, first):
    """Orders ask fulfilment to cancel through the outbox (``cancel_fulfilment``): the network's units
    are free at once, the location's when the job runs; a release job that comes first sends nothing
    either, and whichever runs second finds nothing left to do."""
    from app.fulfillment import jobs as fulfilment_jobs
    from app.orders import service as orders

    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    await connect(gql, tenant_a, ref, chengdu, connector_server.url)
    order_id = await ingest(shop, "CXL-1")
    assert await jobs.route_order({}, outbox_id=10**9 + 3, tenant_id=ref.id, order_id=order_id) == "routed"
    [fo] = await fulfillment_orders(ref, order_id)
    async with tenant_session(ref) as session:
        await orders.cancel(session, order_id, reason="buyer cancelled", actor="ops")
    gloves = shop.materials["SKU-2002"]
    async with tenant_session(ref) as session:
        assert (await session.get(NetworkStock, gloves)).reserved == 0, "the network's units are free at once"
    async with get_db().control_session() as session:
        [cancel_row] = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.tenant_id == ref.id, OutboxMessage.job == "cancel_fulfilment"
                )
            )
        ).all()
    assert cancel_row.kwargs["order_id"] == order_id
    await assert_ledger(ref)

    async def cancel_job() -> int:
        return await fulfilment_jobs.cancel_fulfilment(
            {}, outbox_id=cancel_row.id, **cancel_row.kwargs, tenant_id=ref.id
        )

    async def release_job() -> str:
        return await fulfilment_jobs.release_fulfilment(
            {}, outbox_id=10**9 + 4, tenant_id=ref.id, fulfillment_order_id=fo.id
        )

    if first == "cancel_job":
        assert await cancel_job() == 1
        assert await release_job() == "closed"
    else:
        assert await release_job() == "order_cancelled"
        assert await cancel_job() == 0
    assert connector_server.requests == []
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.status is FulfillmentStatus.cancelled
    assert (await level(ref, chengdu, gloves)).reserved == 0
    async with tenant_session(ref) as session:
        assert (await session.get(NetworkStock, gloves)).reserved == 0
    await assert_ledger(ref)


async def test_an_order_held_after_routing_is_released_to_its_location_when_the_hold_ends(
    gql, tenant_a, run_jobs, connector_server
):
    from app.fulfillment import jobs as fulfilment_jobs
    from app.fulfillment.models import ConnectorDelivery
    from app.orders import service as orders

    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    await connect(gql, tenant_a, ref, chengdu, connector_server.url)
    order_id = await ingest(shop, "HOLD-1")
    assert await jobs.route_order({}, outbox_id=10**9 + 5, tenant_id=ref.id, order_id=order_id) == "routed"
    [fo] = await fulfillment_orders(ref, order_id)
    connector_server.status = 503  # the first hand-over fails (a retry is scheduled) ...
    release = fulfilment_jobs.release_fulfilment
    assert await release({}, outbox_id=10**9 + 6, tenant_id=ref.id, fulfillment_order_id=fo.id) == "failed"
    async with tenant_session(ref) as session:  # ... then an operator holds the order
        await orders.hold(session, order_id, reason="call the buyer first", actor="ops")
    held = await release({}, outbox_id=10**9 + 7, tenant_id=ref.id, fulfillment_order_id=fo.id, attempt=2)
    assert held == "order_on_hold" and len(connector_server.requests) == 1
    connector_server.status = 200
    async with tenant_session(ref) as session:
        await orders.release_holds(session, order_id, actor="ops")
    await drain(run_jobs)
    assert len(connector_server.requests) == 2
    async with tenant_session(ref) as session:
        delivery = await session.scalar(
            select(ConnectorDelivery).where(ConnectorDelivery.fulfillment_order_id == fo.id)
        )
    assert (delivery.status.value, delivery.attempts) == ("sent", 2)
    await run_delayed(ref, run_jobs)  # the retry scheduled before the hold finds it sent
    assert len(connector_server.requests) == 2
    assert [f.id for f in await fulfillment_orders(ref, order_id)] == [fo.id]  # the same fulfilment order
    assert len(await decisions(ref, order_id)) == 1
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    assert (await level(ref, chengdu, shop.materials["SKU-2002"])).reserved == 2
    await assert_ledger(ref)


async def test_shipping_from_a_location_paused_after_routing_keeps_the_ledger(
    client, gql, tenant_a, connector_server
):
    """Reserved units count at network level whatever the location's status, so a shipment from a
    location paused mid-flight (an outage) must take them off the network too."""
    from app.inventory.models import LocationStatus

    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    secret = await connect(gql, tenant_a, ref, chengdu, connector_server.url)
    order_id = await ingest(shop, "PAUSED-1")
    assert await jobs.route_order({}, outbox_id=10**9 + 7, tenant_id=ref.id, order_id=order_id) == "routed"
    [fo] = await fulfillment_orders(ref, order_id)
    async with tenant_session(ref) as session:
        await inventory.set_location_status(session, chengdu, LocationStatus.paused, "power outage")
    r = await callback(client, ref, chengdu, secret, fo.id, "shipped", carrier="SF", tracking_number="SF1")
    assert r.status_code == 200, r.text
    gloves = shop.materials["SKU-2002"]
    async with tenant_session(ref) as session:
        assert (await session.get(NetworkStock, gloves)).reserved == 0
    await assert_ledger(ref)


async def test_a_route_order_job_killed_mid_way_leaves_nothing_and_its_rerun_gives_one_result(
    tenant_a, run_jobs, monkeypatch
):
    """arq cancels a job's task on timeout or shutdown: cancelled while it waits on the database after
    deciding, route_order leaves no trace, and running the job again routes the order once."""
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "KILLED-1")
    job = await route_job(ref, order_id)
    from app.routing import service as routing_service

    real_fulfil, reached = routing_service._fulfil, asyncio.Event()

    async def stuck(*args, **kwargs):
        reached.set()
        await asyncio.Event().wait()  # the worker dies here: the decision row is flushed, not committed

    monkeypatch.setattr(routing_service, "_fulfil", stuck)
    task = asyncio.create_task(jobs.route_order({}, outbox_id=job.id, tenant_id=ref.id, order_id=order_id))
    await asyncio.wait_for(reached.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await decisions(ref, order_id) == [] and await fulfillment_orders(ref, order_id) == []
    assert (await order_of(ref, order_id)).status is OrderStatus.reserved

    monkeypatch.setattr(routing_service, "_fulfil", real_fulfil)
    assert await jobs.route_order({}, outbox_id=job.id, tenant_id=ref.id, order_id=order_id) == "routed"
    await drain(run_jobs)  # the relay hands the same message over too: still one result
    assert len(await decisions(ref, order_id)) == 1
    assert len(await fulfillment_orders(ref, order_id)) == 1
    await assert_ledger(ref)
