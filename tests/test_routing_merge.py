"""Merging orders of one buyer to one address, end to end through real arq workers: two orders placed
on two channels within the merge window are routed together (one location ships both when it can),
both timelines say so, and the connector payloads tell the WMS to pack them together; no merge outside
the window or once released; undo before release routes them apart again, after release it is refused;
routing twice gives one merge; another tenant sees and touches nothing."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from app.db import tenant_session
from app.fulfillment.models import FulfillmentStatus
from app.orders.models import Order, OrderStatus
from app.routing import jobs
from tests.factories import tenant_ref
from tests.merge_support import (
    ORDER_MERGE,
    UNMERGE,
    UPDATE_POLICY,
    body,
    live,
    merge_shop,
    merge_two,
    merges,
    order_in,
    set_policy,
    two_channel_shop,
)
from tests.routing_support import (
    CHENGDU,
    SHANGHAI,
    assert_ledger,
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


async def test_two_orders_of_one_buyer_on_two_channels_are_merged_and_ship_together(
    gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    _, shanghai, _, a, b, first = await merge_two(gql, tenant_a, ref, run_jobs, "MRG")
    secret = await connect(gql, tenant_a, ref, shanghai, connector_server.url)
    assert secret

    # A's first fulfilment order (Chengdu) is cancelled; one location, Shanghai, ships both orders.
    cancelled, fo_a = await fulfillment_orders(ref, a)
    assert cancelled.id == first.id and cancelled.status is FulfillmentStatus.cancelled
    [fo_b] = await fulfillment_orders(ref, b)
    assert fo_a.location_id == fo_b.location_id == shanghai
    assert {fo_a.status, fo_b.status} == {FulfillmentStatus.pending}
    order_a, order_b = await order_of(ref, a), await order_of(ref, b)
    assert order_a.channel_id != order_b.channel_id and order_a.fingerprint == order_b.fingerprint
    [group] = await merges(ref)
    assert order_a.merge_id == order_b.merge_id == group.id
    assert order_a.status is order_b.status is OrderStatus.routed
    # The reservation of each order moved: A's scarf off Chengdu onto Shanghai.
    await assert_ledger(ref)

    # Both timelines say so, naming the other order; B's decision explains the merge.
    for mine, other in ((order_a, order_b), (order_b, order_a)):
        [merged] = [e for e in await events(ref, mine.id) if e.kind == "merged"]
        assert other.number in merged.message and merged.details["merge_id"] == group.id
    latest_b = (await decisions(ref, b))[-1]
    assert latest_b.explanation.startswith(f"Merged: {order_b.number}, {order_a.number}")
    assert latest_b.policy["merge_id"] == group.id
    assert (await decisions(ref, a))[-1].status == "routed"

    # GraphQL: each order shows the merge with both orders.
    for mine in (order_a, order_b):
        data = await gql(ORDER_MERGE, {"id": gid("Order", ref, mine.id)}, api_key=tenant_a.api_key)
        merge = data["node"]["merge"]
        assert merge["id"] == gid("OrderMerge", ref, group.id) and merge["createdBy"] == "routing"
        assert [o["number"] for o in merge["orders"]] == [order_a.number, order_b.number]
        kinds = [e["node"]["kind"] for e in data["node"]["events"]["edges"]]
        assert "merged" in kinds

    # Released after the delay: each payload names the other fulfilment order to pack with.
    assert connector_server.requests == []
    await run_delayed(ref, run_jobs)
    sent = {json.loads(raw)["order"]["number"]: json.loads(raw) for _, raw in connector_server.requests}
    assert set(sent) == {order_a.number, order_b.number}
    assert sent[order_a.number]["merge"] == {
        "id": gid("OrderMerge", ref, group.id),
        "ship_with": [gid("FulfillmentOrder", ref, fo_b.id)],
        "orders": [order_b.number],
    }
    assert sent[order_b.number]["merge"]["ship_with"] == [gid("FulfillmentOrder", ref, fo_a.id)]
    assert (await order_of(ref, a)).status is (await order_of(ref, b)).status is OrderStatus.released
    await assert_ledger(ref)


async def test_no_merge_outside_the_window_or_once_released(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu, shanghai, shop = await merge_shop(gql, tenant_a, ref, delay=0)
    # Released at once (no delay, no connector: assigned by hand), then a second order 10 min later.
    a = await order_in(shop, 0, body("REL-A", {"scarf": 1}))
    await drain(run_jobs)
    [fo_a] = await fulfillment_orders(ref, a)
    assert fo_a.status is FulfillmentStatus.assigned
    b = await order_in(shop, 1, body("REL-B", {"gloves": 1}, minutes=10))
    await drain(run_jobs)
    assert [f.status for f in await fulfillment_orders(ref, a)] == [FulfillmentStatus.assigned]
    [fo_b] = await fulfillment_orders(ref, b)
    assert fo_b.location_id == shanghai

    # Delayed release, but placed 2 hours apart: outside the 30-minute window.
    await set_policy(gql, tenant_a, releaseDelayMinutes=10)
    c = await order_in(shop, 0, body("FAR-C", {"scarf": 1}, minutes=600, street="锦江区 红星路 88 号"))
    await drain(run_jobs)
    d = await order_in(shop, 1, body("FAR-D", {"gloves": 1}, minutes=720, street="锦江区 红星路 88 号"))
    await drain(run_jobs)
    [fo_c] = await fulfillment_orders(ref, c)
    assert fo_c.location_id == chengdu and fo_c.status is FulfillmentStatus.pending  # not cancelled
    assert len(await fulfillment_orders(ref, d)) == 1
    assert await merges(ref) == []
    for order_id in (a, b, c, d):
        assert (await order_of(ref, order_id)).merge_id is None
        assert not [e for e in await events(ref, order_id) if e.kind == "merged"]
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_a_merge_window_of_zero_turns_merging_off(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu, _, shop = await merge_shop(gql, tenant_a, ref)
    await set_policy(gql, tenant_a, mergeWindowMinutes=0)
    a = await order_in(shop, 0, body("OFF-A", {"scarf": 1}))
    await drain(run_jobs)
    b = await order_in(shop, 1, body("OFF-B", {"gloves": 1}, minutes=5))
    await drain(run_jobs)
    assert [f.location_id for f in await fulfillment_orders(ref, a)] == [chengdu]
    assert await merges(ref) == []
    assert (await order_of(ref, b)).merge_id is None
    await run_delayed(ref, run_jobs)


async def test_undo_before_release_routes_the_orders_apart_for_good(
    gql, tenant_a, run_jobs, connector_server
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu, shanghai, _, a, b, _ = await merge_two(gql, tenant_a, ref, run_jobs, "UNDO")
    await connect(gql, tenant_a, ref, shanghai, connector_server.url)
    [group] = await merges(ref)
    number_a, number_b = (await order_of(ref, a)).number, (await order_of(ref, b)).number

    data = await gql(UNMERGE, {"input": {"orderId": gid("Order", ref, a)}}, api_key=tenant_a.api_key)
    payload = data["unmergeOrder"]
    assert payload["userErrors"] == [] and payload["order"]["merge"] is None
    assert payload["order"]["number"] == number_a
    await drain(run_jobs)

    # Routed apart: A from Chengdu again, B from Shanghai; the merge is dissolved, nobody re-merged.
    live_a, live_b = await live(ref, a), await live(ref, b)
    assert [f.location_id for f in live_a] == [chengdu] and [f.location_id for f in live_b] == [shanghai]
    order_a, order_b = await order_of(ref, a), await order_of(ref, b)
    assert order_a.merge_id is None and order_b.merge_id is None and order_a.unmerged_at is not None
    assert order_a.status is order_b.status is OrderStatus.routed
    [group] = await merges(ref)
    assert group.dissolved_at is not None
    [undone_a] = [e for e in await events(ref, a) if e.kind == "unmerged"]
    [undone_b] = [e for e in await events(ref, b) if e.kind == "unmerged"]
    assert number_b in undone_a.message and number_a in undone_b.message
    await assert_ledger(ref)

    # Routing A again changes nothing; released payloads carry no merge.
    await run_delayed(ref, run_jobs)
    [(_, raw)] = connector_server.requests
    assert json.loads(raw)["order"]["number"] == number_b and "merge" not in json.loads(raw)

    # Undoing again: the order is no longer merged.
    data = await gql(UNMERGE, {"input": {"orderId": gid("Order", ref, b)}}, api_key=tenant_a.api_key)
    assert [e["code"] for e in data["unmergeOrder"]["userErrors"]] == ["NOT_MERGED"]
    await assert_ledger(ref)


async def test_undo_after_release_is_refused(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    *_, a, b, _ = await merge_two(gql, tenant_a, ref, run_jobs, "LATE")
    await run_delayed(ref, run_jobs)  # handed over (no connector: assigned by hand)
    assert (await order_of(ref, b)).status is OrderStatus.released
    data = await gql(UNMERGE, {"input": {"orderId": gid("Order", ref, a)}}, api_key=tenant_a.api_key)
    payload = data["unmergeOrder"]
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ALREADY_RELEASED", ["orderId"])]
    order_a = await order_of(ref, a)
    assert order_a.merge_id is not None and order_a.unmerged_at is None
    assert [f.status for f in await live(ref, a)] == [FulfillmentStatus.assigned]


async def test_route_order_run_twice_gives_one_merge(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    _, shanghai, shop = await merge_shop(gql, tenant_a, ref)
    a = await order_in(shop, 0, body("TWICE-A", {"scarf": 1}))
    await drain(run_jobs)
    b = await order_in(shop, 1, body("TWICE-B", {"gloves": 1}, minutes=3))
    job = await route_job(ref, b)
    # The same message twice at once, then other messages for either order.
    same = await asyncio.gather(
        *(jobs.route_order({}, outbox_id=job.id, tenant_id=ref.id, order_id=b) for _ in range(2))
    )
    assert sorted(same) == ["duplicate", "routed"]
    for order_id in (a, b):
        other = await jobs.route_order(
            {}, outbox_id=job.id + 10**9 + order_id, tenant_id=ref.id, order_id=order_id
        )
        assert other == "already_routed"
    await drain(run_jobs)
    [group] = await merges(ref)
    assert [f.location_id for f in await live(ref, a)] == [shanghai]
    assert [f.location_id for f in await live(ref, b)] == [shanghai]
    assert len([d for d in await decisions(ref, b) if d.status == "routed"]) == 1
    async with tenant_session(ref) as session:
        members = (await session.scalars(select(Order.id).where(Order.merge_id == group.id))).all()
    assert sorted(members) == sorted([a, b])
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_merge_policy_options_are_validated(gql, tenant_a):
    for value, code in ((-1, "OUT_OF_RANGE"), (24 * 60 + 1, "INVALID_POLICY")):
        data = await gql(UPDATE_POLICY, {"input": {"mergeWindowMinutes": value}}, api_key=tenant_a.api_key)
        [error] = data["updateRoutingPolicy"]["userErrors"]
        assert (error["code"], error["field"]) == (code, ["mergeWindowMinutes"])
    data = await gql(UPDATE_POLICY, {"input": {"releaseDelayMinutes": None}}, api_key=tenant_a.api_key)
    [error] = data["updateRoutingPolicy"]["userErrors"]
    assert error["field"] == ["releaseDelayMinutes"]
    # Defaults, and changing one keeps the other.
    policy = await set_policy(gql, tenant_a, maxShipments=3)
    assert (policy["mergeWindowMinutes"], policy["releaseDelayMinutes"]) == (30, 0)
    await set_policy(gql, tenant_a, releaseDelayMinutes=15)
    policy = await set_policy(gql, tenant_a, mergeWindowMinutes=45)
    assert (policy["mergeWindowMinutes"], policy["releaseDelayMinutes"], policy["maxShipments"]) == (
        45,
        15,
        3,
    )


async def test_another_tenant_cannot_see_or_undo_a_merge(gql, tenant_a, tenant_b, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    *_, a, _, _ = await merge_two(gql, tenant_a, ref, run_jobs, "XT")
    order_gid = gid("Order", ref, a)
    data = await gql(UNMERGE, {"input": {"orderId": order_gid}}, api_key=tenant_b.api_key)
    payload = data["unmergeOrder"]
    assert payload["order"] is None and [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    data = await gql(ORDER_MERGE, {"id": order_gid}, api_key=tenant_b.api_key)
    assert data["node"] is None
    # Tenant B's own order of the same row id (if any) is not merged, and A's merge is untouched.
    assert (await order_of(ref, a)).merge_id is not None
    assert len(await merges(ref)) == 1
    await run_delayed(ref, run_jobs)


async def test_two_orders_of_one_buyer_routed_at_once_make_one_merge(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    _, shanghai, shop = await merge_shop(gql, tenant_a, ref)
    a = await order_in(shop, 0, body("ONCE-A", {"scarf": 1}))
    b = await order_in(shop, 1, body("ONCE-B", {"gloves": 1}, minutes=1))
    # Both routing jobs at once (the advisory lock on the buyer makes them take turns).
    results = await asyncio.gather(
        *(
            jobs.route_order({}, outbox_id=10**9 + i, tenant_id=ref.id, order_id=order_id)
            for i, order_id in enumerate((a, b))
        )
    )
    assert sorted(results) == ["already_routed", "routed"]
    await drain(run_jobs)  # the original messages too: nothing changes
    [group] = await merges(ref)
    assert [f.location_id for f in await fulfillment_orders(ref, a)] == [shanghai]
    assert [f.location_id for f in await fulfillment_orders(ref, b)] == [shanghai]
    assert (await order_of(ref, a)).merge_id == (await order_of(ref, b)).merge_id == group.id
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)


async def test_orders_that_cannot_ship_whole_together_are_routed_apart(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await two_channel_shop(ref, {chengdu: {"scarf": 5}, shanghai: {"gloves": 5}})
    # Together they need two shipments, one too many: each is routed on its own, A left as it was.
    await set_policy(gql, tenant_a, maxShipments=1, releaseDelayMinutes=10)
    a = await order_in(shop, 0, body("APART-A", {"scarf": 1}))
    await drain(run_jobs)
    [fo_a] = await fulfillment_orders(ref, a)
    b = await order_in(shop, 1, body("APART-B", {"gloves": 1}, minutes=2))
    await drain(run_jobs)
    assert await merges(ref) == []
    assert [(f.id, f.status) for f in await fulfillment_orders(ref, a)] == [
        (fo_a.id, FulfillmentStatus.pending)
    ]
    [fo_b] = await fulfillment_orders(ref, b)
    assert fo_b.location_id == shanghai and (await order_of(ref, b)).status is OrderStatus.routed
    assert not [e for e in await events(ref, a) if e.kind in ("merged", "fulfilment")]
    await run_delayed(ref, run_jobs)
    await assert_ledger(ref)
