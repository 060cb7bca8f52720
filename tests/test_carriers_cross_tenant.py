"""Carriers across tenants: tenant B neither sees nor changes tenant A's carriers (A's global ids are
simply not found with B's key), codes are per tenant, and routing in A never uses B's carriers."""

from __future__ import annotations

from tests.carriers_support import CREATE, DEACTIVATE, LIST, NODE, ROUTING, UPDATE, create, rate
from tests.factories import tenant_ref
from tests.routing_support import CHENGDU, drain, fulfillment_orders, gid, ingest, make_shop, warehouse


async def test_another_tenants_carriers_are_invisible_and_untouchable(gql, tenant_a, tenant_b):
    sf = await create(gql, tenant_a, code="SF", name="SF", services={"std": {"rates": {"*": rate(12, 2)}}})

    listed = await gql(LIST, {}, api_key=tenant_b.api_key)
    assert listed["carriers"]["edges"] == []
    assert (await gql(NODE, {"id": sf["id"]}, api_key=tenant_b.api_key))["node"] is None
    nodes = await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [sf["id"]]}, api_key=tenant_b.api_key
    )
    assert nodes["nodes"] == [None]
    for query, name, given in (
        (UPDATE, "updateCarrier", {"id": sf["id"], "slaDays": 9, "active": False}),
        (DEACTIVATE, "deactivateCarrier", {"id": sf["id"]}),
    ):
        data = await gql(query, {"input": given}, api_key=tenant_b.api_key)
        assert data[name]["carrier"] is None
        assert data[name]["userErrors"] == [
            {"field": ["id"], "message": "carrier not found", "code": "NOT_FOUND"}
        ]

    # The same code in B is B's own carrier; A's row did not change.
    data = await gql(CREATE, {"input": {"code": "SF", "name": "B's SF"}}, api_key=tenant_b.api_key)
    assert data["createCarrier"]["userErrors"] == []
    b_sf = data["createCarrier"]["carrier"]
    assert b_sf["id"] != sf["id"]
    a_row = (await gql(NODE, {"id": sf["id"]}, api_key=tenant_a.api_key))["node"]
    assert (a_row["name"], a_row["slaDays"], a_row["active"]) == ("SF", 2.0, True)
    # And A cannot reach B's.
    data = await gql(DEACTIVATE, {"input": {"id": b_sf["id"]}}, api_key=tenant_a.api_key)
    assert data["deactivateCarrier"]["userErrors"][0]["code"] == "NOT_FOUND"
    listed = await gql(LIST, {}, api_key=tenant_a.api_key)
    assert [e["node"]["id"] for e in listed["carriers"]["edges"]] == [sf["id"]]


async def test_routing_uses_only_the_tenants_own_carriers(gql, tenant_a, tenant_b, run_jobs):
    # B has a carrier that would win; A has none: A's order keeps the requested SF, with no service.
    await create(gql, tenant_b, code="YTO", name="YTO", services={"eco": {"rates": {"*": rate(1, 0)}}})
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU, city="Chengdu", province="Sichuan")
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "XT-CARRIER")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.carrier == "SF"
    data = await gql(ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [shipment] = data["orderRouting"]["decisions"][0]["shipments"]
    assert (shipment["carrier"], shipment["carrierService"]) == ("SF", None)
    assert "YTO" not in shipment["carrierExplanation"]
    # B cannot read A's routing (and so its carrier choice).
    data = await gql(ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_b.api_key)
    assert data["orderRouting"] is None
