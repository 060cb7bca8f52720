"""Split approval, end to end through real arq workers: with at most one shipment allowed, an order that
only two locations can ship together is put on hold (``split_approval``) instead of being left
reserved; releasing that hold through ``releaseOrderHolds`` approves the split for that routing attempt
only, and the decision row says who approved it. Another tenant can neither see nor release the hold."""

from __future__ import annotations

from app.fulfillment.models import FulfillmentStatus
from app.orders.models import OrderStatus
from app.routing.split_approval import HOLD_CODE
from tests.factories import tenant_ref
from tests.merge_support import body, order_in, set_policy, two_channel_shop
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    SHANGHAI,
    assert_ledger,
    decisions,
    drain,
    events,
    fulfillment_orders,
    gid,
    order_of,
    run_delayed,
    warehouse,
)

RELEASE = f"""mutation($input: ReleaseOrderHoldsInput!) {{ releaseOrderHolds(input: $input) {{
  order {{ status holds {{ code }} }} {ERRORS} }} }}"""
HOLDS = """query($id: ID!) { node(id: $id) { ... on Order { status holds { code reason } } } }"""


async def _held_order(gql, tenant, ref, run_jobs, tag: str, *, rule: bool = False):
    """Chengdu holds scarves only, Shanghai gloves only: an order of both needs two shipments."""
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await two_channel_shop(ref, {chengdu: {"scarf": 5}, shanghai: {"gloves": 5}})
    if rule:  # the limit as a max_shipments rule instead of the policy field
        rules = [{"code": "one_parcel", "kind": "max_shipments", "params": {"max": 1}}]
        await gql(
            "mutation($i: RoutingPolicyInput!) { updateRoutingPolicy(input: $i) { userErrors { code } } }",
            {"i": {"rules": rules}},
            api_key=tenant.api_key,
        )
    else:
        await set_policy(gql, tenant, maxShipments=1)
    order_id = await order_in(shop, 0, body(f"{tag}-1", {"scarf": 1, "gloves": 2}))
    await drain(run_jobs)
    return chengdu, shanghai, order_id


async def test_an_order_needing_a_split_waits_for_approval_then_ships_in_two(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu, shanghai, order_id = await _held_order(gql, tenant_a, ref, run_jobs, "SPLIT")

    # On hold with the split_approval code and the engine's reason; nothing allocated.
    order = await order_of(ref, order_id)
    assert order.status is OrderStatus.on_hold
    data = await gql(HOLDS, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [hold] = data["node"]["holds"]
    assert hold["code"] == HOLD_CODE and "needs split approval" in hold["reason"]
    assert await fulfillment_orders(ref, order_id) == []
    [first] = await decisions(ref, order_id)
    assert first.status == "needs_split_approval" and "split_approval" not in first.policy

    # Approve: release the hold; the order is routed into two fulfilment orders.
    data = await gql(
        RELEASE,
        {"input": {"id": gid("Order", ref, order_id), "codes": [HOLD_CODE]}},
        api_key=tenant_a.api_key,
    )
    assert data["releaseOrderHolds"]["userErrors"] == []
    await drain(run_jobs)
    fos = await fulfillment_orders(ref, order_id)
    assert sorted(f.location_id for f in fos) == sorted([chengdu, shanghai])
    assert {f.status for f in fos} == {FulfillmentStatus.assigned}  # no connectors: assigned by hand
    assert (await order_of(ref, order_id)).status is OrderStatus.released
    _, second = await decisions(ref, order_id)
    assert second.status == "routed" and second.attempt == 2
    approval = second.policy["split_approval"]
    assert approval["approved_by"].startswith("api-key:") and approval["lifted_limit"] == 1
    assert second.policy["max_shipments"] is None  # lifted for this attempt
    kinds = [(e.kind, e.to_status) for e in await events(ref, order_id)]
    assert ("hold", None) in kinds and ("status", "on_hold") in kinds and ("status", "routed") in kinds
    await assert_ledger(ref)
    await run_delayed(ref, run_jobs)


async def test_an_approval_counts_for_one_attempt_and_a_limit_rule_is_lifted_too(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    _, _, order_id = await _held_order(gql, tenant_a, ref, run_jobs, "RULE", rule=True)
    assert (await order_of(ref, order_id)).status is OrderStatus.on_hold
    data = await gql(RELEASE, {"input": {"id": gid("Order", ref, order_id)}}, api_key=tenant_a.api_key)
    assert data["releaseOrderHolds"]["userErrors"] == []
    await drain(run_jobs)
    assert len(await fulfillment_orders(ref, order_id)) == 2
    _, approved = await decisions(ref, order_id)
    assert approved.status == "routed" and approved.policy["split_approval"]["lifted_limit"] == 1
    assert [r["kind"] for r in approved.policy["rules"]].count("max_shipments") == 0

    # The approval is used: the same hold does not approve another attempt.
    from app.db import tenant_session
    from app.routing import split_approval

    async with tenant_session(ref) as session:
        assert await split_approval.approval(session, order_id) is None
    await run_delayed(ref, run_jobs)


async def test_another_tenant_cannot_see_or_approve_the_split(gql, tenant_a, tenant_b, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    _, _, order_id = await _held_order(gql, tenant_a, ref, run_jobs, "XT")
    order_gid = gid("Order", ref, order_id)
    data = await gql(RELEASE, {"input": {"id": order_gid, "codes": [HOLD_CODE]}}, api_key=tenant_b.api_key)
    payload = data["releaseOrderHolds"]
    assert payload["order"] is None and [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    data = await gql(HOLDS, {"id": order_gid}, api_key=tenant_b.api_key)
    assert data["node"] is None
    await drain(run_jobs)
    assert (await order_of(ref, order_id)).status is OrderStatus.on_hold
    assert await fulfillment_orders(ref, order_id) == []
