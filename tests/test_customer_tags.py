"""Customer tags through GraphQL: cleaned and bounded, only with orders:write, never across tenants, and
read by routing: tagging a customer ``vip`` sends their next order through the VIP lane."""

from __future__ import annotations

from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    SHANGHAI,
    UPDATE_POLICY,
    decisions,
    drain,
    gid,
    ingest,
    make_shop,
    order_of,
    warehouse,
)

SET_TAGS = f"""mutation($input: SetCustomerTagsInput!) {{
  setCustomerTags(input: $input) {{ customer {{ id tags }} {ERRORS} }} }}"""
CUSTOMER_OF = "query($id: ID!) { order(id: $id) { customer { id tags } } }"


async def _routed_order(gql, tenant, run_jobs, external_id: str):
    """(ref, shop, chengdu, shanghai, order id, customer global id) of an order routed to Chengdu."""
    ref = await tenant_ref(tenant.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {chengdu: 5, shanghai: 5})
    order_id = await ingest(shop, external_id)
    await drain(run_jobs)
    data = await gql(CUSTOMER_OF, {"id": gid("Order", ref, order_id)}, api_key=tenant.api_key)
    customer = data["order"]["customer"]
    assert customer["tags"] == []
    return ref, shop, chengdu, shanghai, order_id, customer["id"]


async def _set_tags(gql, tenant, customer_id: str, tags: list[str]) -> dict:
    data = await gql(SET_TAGS, {"input": {"customerId": customer_id, "tags": tags}}, api_key=tenant.api_key)
    return data["setCustomerTags"]


async def _shipped_from(ref, order_id: int) -> set[int]:
    [decision] = [d for d in await decisions(ref, order_id) if d.status == "routed"]
    return {s["location_id"] for s in decision.decision["shipments"]}


async def test_tagging_a_customer_vip_sends_their_next_order_through_the_vip_lane(gql, tenant_a, run_jobs):
    ref, shop, chengdu, shanghai, first, customer = await _routed_order(gql, tenant_a, run_jobs, "VIP-1")
    policy = await gql("{ routingPolicy { rules } }", api_key=tenant_a.api_key)
    lane = {"code": "vip", "kind": "vip_lane", "params": {"locations": [shanghai], "tags": ["vip"]}}
    rules = [*policy["routingPolicy"]["rules"], lane]
    changed = await gql(UPDATE_POLICY, {"input": {"rules": rules}}, api_key=tenant_a.api_key)
    assert changed["updateRoutingPolicy"]["userErrors"] == []
    assert await _shipped_from(ref, first) == {chengdu}  # nearest: the Chengdu buyer's own city

    untagged = await ingest(shop, "VIP-2")  # the same buyer, not tagged yet: still the nearest
    await drain(run_jobs)
    assert await _shipped_from(ref, untagged) == {chengdu}

    tagged = await _set_tags(gql, tenant_a, customer, ["  VIP "])
    assert tagged == {"customer": {"id": customer, "tags": ["vip"]}, "userErrors": []}
    following = await ingest(shop, "VIP-3")
    await drain(run_jobs)
    assert (await order_of(ref, following)).customer_id == (await order_of(ref, first)).customer_id
    assert await _shipped_from(ref, following) == {shanghai}
    [decision] = [d for d in await decisions(ref, following) if d.status == "routed"]
    assert "customer tag vip" in decision.explanation


async def test_tags_are_cleaned_and_bounded(gql, tenant_a, run_jobs):
    *_, customer = await _routed_order(gql, tenant_a, run_jobs, "TAG-1")
    done = await _set_tags(gql, tenant_a, customer, ["Gold", " vip", "GOLD", "vip "])
    assert done["userErrors"] == [] and done["customer"]["tags"] == ["gold", "vip"]
    bad = [
        (["ok", "   "], "INVALID_TAG", ["tags", "1"]),
        (["x" * 51], "INVALID_TAG", ["tags", "0"]),
        (["a\tb"], "INVALID_TAG", ["tags", "0"]),  # NUL is refused earlier (INVALID_CHARACTERS)
        ([f"t{i}" for i in range(21)], "TOO_MANY_TAGS", ["tags"]),
    ]
    for tags, code, field in bad:
        payload = await _set_tags(gql, tenant_a, customer, tags)
        assert payload["customer"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], tags
    twenty = await _set_tags(gql, tenant_a, customer, [f"T{i}" for i in range(20)] + ["t0"])
    assert twenty["userErrors"] == [] and len(twenty["customer"]["tags"]) == 20  # counted once deduplicated
    cleared = await _set_tags(gql, tenant_a, customer, [])
    assert cleared["customer"]["tags"] == []


async def test_setting_tags_needs_orders_write(gql, tenant_a, run_jobs):
    *_, customer = await _routed_order(gql, tenant_a, run_jobs, "TAG-2")
    key = await gql(
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        {"input": {"name": "reader", "scopes": ["orders:read"]}},
        token=tenant_a.token,
    )
    reader = await gql.raw(
        SET_TAGS, {"input": {"customerId": customer, "tags": ["vip"]}}, api_key=key["createApiKey"]["key"]
    )
    assert reader.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql.raw(SET_TAGS, {"input": {"customerId": customer, "tags": ["vip"]}})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_another_tenant_cannot_tag_or_see_the_customer(gql, tenant_a, tenant_b, run_jobs):
    ref, _, _, _, order_id, customer = await _routed_order(gql, tenant_a, run_jobs, "TAG-3")
    payload = await _set_tags(gql, tenant_b, customer, ["vip"])
    assert payload["customer"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["customerId"])]
    seen = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": customer}, api_key=tenant_b.api_key)
    assert seen["node"] is None
    mine = await gql(CUSTOMER_OF, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    assert mine["order"]["customer"]["tags"] == []
