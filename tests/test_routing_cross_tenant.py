"""Tenant isolation of routing and fulfilment: every new query, mutation and the callback webhook.

Tenant A routes an order to a location with a connector; tenant B, with its own location and
connector, tries to read or act on A's decisions, fulfilment orders, order and location, and to sign
callbacks for A's location with B's secret."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.db import control_session
from app.fulfillment.models import FulfillmentStatus
from app.inbox import InboxMessage
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    ORDER_ROUTING,
    SIMULATE,
    callback,
    connect,
    decisions,
    drain,
    fulfillment_orders,
    gid,
    ingest,
    make_shop,
    sign,
    warehouse,
)

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
FULFILMENT = "query($id: ID!) { fulfillmentOrders(orderId: $id) { id status location { id } } }"


async def test_tenant_b_cannot_see_or_touch_tenant_a_routing(
    client, gql, tenant_a, tenant_b, run_jobs, connector_server
):
    a = await tenant_ref(tenant_a.slug)
    b = await tenant_ref(tenant_b.slug)
    a_here = await warehouse(a, "A Chengdu", CHENGDU)
    b_here = await warehouse(b, "B Chengdu", CHENGDU)
    shop = await make_shop(a, {a_here: 5})
    a_secret = await connect(gql, tenant_a, a, a_here, connector_server.url)
    b_secret = await connect(gql, tenant_b, b, b_here, connector_server.url)
    order_id = await ingest(shop, "XT-1")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(a, order_id)
    [decision] = await decisions(a, order_id)
    order_gid, fo_gid = gid("Order", a, order_id), gid("FulfillmentOrder", a, fo.id)
    decision_gid = gid("RoutingDecision", a, decision.id)

    # A sees its own.
    mine = await gql(ORDER_ROUTING, {"id": order_gid}, api_key=tenant_a.api_key)
    assert len(mine["orderRouting"]["decisions"]) == 1
    assert (await gql(FULFILMENT, {"id": order_gid}, api_key=tenant_a.api_key))["fulfillmentOrders"][0][
        "id"
    ] == fo_gid
    for node_id, type_name in ((fo_gid, "FulfillmentOrder"), (decision_gid, "RoutingDecision")):
        assert (await gql(NODE, {"id": node_id}, api_key=tenant_a.api_key))["node"]["__typename"] == type_name

    # B sees nothing of A's, whichever way it asks (and its own row ids may well be the same numbers).
    assert (await gql(ORDER_ROUTING, {"id": order_gid}, api_key=tenant_b.api_key))["orderRouting"] is None
    assert (await gql(FULFILMENT, {"id": order_gid}, api_key=tenant_b.api_key))["fulfillmentOrders"] == []
    for node_id in (fo_gid, decision_gid):
        assert (await gql(NODE, {"id": node_id}, api_key=tenant_b.api_key))["node"] is None
    sim = await gql(SIMULATE, {"input": {"orderIds": [order_gid]}}, api_key=tenant_b.api_key)
    assert [e["code"] for e in sim["simulateRouting"]["userErrors"]] == ["NOT_FOUND"]
    everything = await gql(SIMULATE, {"input": {"last": 500}}, api_key=tenant_b.api_key)
    assert everything["simulateRouting"]["orders"] == []

    route = await gql(
        f"mutation($input: RouteOrderInput!) {{ routeOrder(input: $input) {{ requested {ERRORS} }} }}",
        {"input": {"orderId": order_gid}},
        api_key=tenant_b.api_key,
    )
    assert route["routeOrder"]["requested"] is False
    assert [e["code"] for e in route["routeOrder"]["userErrors"]] == ["NOT_FOUND"]
    taken = await gql(
        f"""mutation($input: SetLocationConnectorInput!) {{
          setLocationConnector(input: $input) {{ secret {ERRORS} }} }}""",
        {"input": {"locationId": gid("Location", a, a_here), "url": "https://evil.example.com"}},
        api_key=tenant_b.api_key,
    )
    assert taken["setLocationConnector"]["secret"] is None
    assert [e["code"] for e in taken["setLocationConnector"]["userErrors"]] == ["NOT_FOUND"]

    # Policies are per tenant.
    await gql(
        f"mutation($i: RoutingPolicyInput!) {{ updateRoutingPolicy(input: $i) {{ {ERRORS} }} }}",
        {"i": {"mode": "weighted"}},
        api_key=tenant_b.api_key,
    )
    assert (await gql("{ routingPolicy { mode } }", api_key=tenant_a.api_key))["routingPolicy"]["mode"] == (
        "lexicographic"
    )

    # Callbacks: A's location signed with B's secret is refused (and kept, as rejected, for A).
    forged = await callback(client, a, a_here, b_secret, fo.id, "shipped", carrier="SF")
    assert forged.status_code == 401 and forged.json()["status"] == "rejected"
    async with control_session() as session:
        kept = await session.scalar(select(InboxMessage).where(InboxMessage.id == forged.json()["inboxId"]))
    assert kept.tenant_id == a.id and kept.status.value == "rejected"
    # B's own location, B's secret, naming A's fulfilment order: not found there.
    body = json.dumps({"event": "shipped", "fulfillment_order_id": fo_gid}).encode()
    r = await client.post(
        f"/webhooks/fulfilment/{gid('Location', b, b_here)}", content=body, headers=sign(b_secret, body)
    )
    assert r.status_code == 404 and r.json()["status"] == "failed"
    # B's location id rewritten to name A's tenant, still signed by B: A's secret decides, so refused.
    r = await client.post(
        f"/webhooks/fulfilment/{gid('Location', a, b_here)}", content=body, headers=sign(b_secret, body)
    )
    assert r.status_code in (401, 404) and r.json()["status"] == "rejected"
    [fo] = await fulfillment_orders(a, order_id)
    assert fo.status is FulfillmentStatus.assigned  # untouched by all of the above

    ok = await callback(client, a, a_here, a_secret, fo.id, "accepted")
    assert ok.status_code == 200


async def test_anonymous_and_read_only_callers_are_refused(gql, tenant_a):
    for query in ("{ routingPolicy { mode } }",):
        r = await gql.raw(query)
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    create_key = """mutation($input: CreateApiKeyInput!) {
      createApiKey(input: $input) { key userErrors { code } } }"""
    reader = (
        await gql(create_key, {"input": {"name": "reader", "scopes": ["orders:read"]}}, token=tenant_a.token)
    )["createApiKey"]["key"]
    assert (await gql("{ routingPolicy { mode } }", api_key=reader))["routingPolicy"][
        "mode"
    ] == "lexicographic"
    r = await gql.raw(
        'mutation { updateRoutingPolicy(input: {mode: "weighted"}) { userErrors { code } } }', api_key=reader
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
