"""Issue #11: each candidate location's shipping cost and SLA come from the carriers' rate tables
(``routing.inputs``), so the weighted policy's cost factor changes a live decision, and a simulation
reports what the shipments cost."""

from __future__ import annotations

from app.db import tenant_session
from app.inventory import service as inventory
from tests.carriers_support import create, rate
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    UPDATE_POLICY,
    decisions,
    drain,
    fulfillment_orders,
    ingest,
    level,
    make_shop,
    warehouse,
)

SIMULATE_COSTS = f"""query($input: SimulateRoutingInput!) {{ simulateRouting(input: $input) {{
  totals {{ orders costBefore costAfter }} {ERRORS} }} }}"""


async def test_the_cheaper_location_to_ship_from_wins_under_the_weighted_policy(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    # Two warehouses on the same spot with the same priority; only the carrier's rate from each
    # differs: one is in the delivery province (the "local" rate), the other is registered in Shanghai.
    far_rate = await warehouse(ref, "WH registered in Shanghai", CHENGDU, city="上海市", province="上海市")
    local_rate = await warehouse(ref, "WH Chengdu", CHENGDU, city="成都市", province="四川省")
    shop = await make_shop(ref, {far_rate: 5, local_rate: 5})
    data = await gql(UPDATE_POLICY, {"input": {"mode": "weighted"}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["userErrors"] == []

    # No carriers: nothing tells the two apart, and the stable order of ids picks the first.
    before = await ingest(shop, "COST-0")
    await drain(run_jobs)
    assert [fo.location_id for fo in await fulfillment_orders(ref, before)] == [far_rate]
    [row] = await decisions(ref, before)
    assert {c["cost_per_shipment"] for c in row.inputs["candidates"]} == {0.0}

    # Give the first warehouse back what that order took, so stock depth ties again.
    def available(s) -> int:
        return s.on_hand - s.reserved - s.safety_stock

    taken = {
        m: available(await level(ref, local_rate, m)) - available(await level(ref, far_rate, m))
        for m in shop.materials.values()
    }
    async with tenant_session(ref) as session:
        for material_id, units in taken.items():
            if units:
                await inventory.receive(session, far_rate, material_id, units, reason="test top-up")

    await create(
        gql,
        tenant_a,
        code="SF",
        name="SF",
        services={"std": {"rates": {"local": rate(6, 1), "*": rate(21, 1)}, "sla_days": 1.5}},
    )
    order_id = await ingest(shop, "COST-1")
    await drain(run_jobs)
    assert [fo.location_id for fo in await fulfillment_orders(ref, order_id)] == [local_rate]
    [row] = await decisions(ref, order_id)
    priced = {c["location_id"]: c for c in row.inputs["candidates"]}
    assert priced[far_rate]["cost_per_shipment"] - priced[local_rate]["cost_per_shipment"] == 15
    assert priced[local_rate]["sla_days"] == priced[far_rate]["sla_days"] == 1.5
    assert priced[local_rate]["cost_per_km"] == 0  # the rate tables price by weight only
    [shipment] = row.decision["shipments"]
    assert shipment["cost"] == priced[local_rate]["cost_per_shipment"] > 0

    # A simulation reports what the shipments cost, before and under another policy.
    data = await gql(
        SIMULATE_COSTS,
        {"input": {"policy": {"mode": "lexicographic"}, "last": 1}},
        api_key=tenant_a.api_key,
    )
    totals = data["simulateRouting"]["totals"]
    assert totals["orders"] == 1
    assert totals["costBefore"] == shipment["cost"]
    # Lexicographic ignores cost: the tie goes to the first id again, the dearer one.
    assert totals["costAfter"] == priced[far_rate]["cost_per_shipment"]
