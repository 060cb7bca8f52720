"""The engine's time budget through the doors a user has: set on the tenant's policy (GraphQL), used by
the worker when it routes an ingested order, and shown on each decision (``provenOptimal``, ``budgetMs``,
the explanation). The engine side (hard shapes, the flag turning false): test_routing_engine_budget.py.
"""

from __future__ import annotations

from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    SHANGHAI,
    decisions,
    drain,
    gid,
    ingest,
    make_shop,
    warehouse,
)

SET_BUDGET = f"""mutation($input: RoutingPolicyInput!) {{
  updateRoutingPolicy(input: $input) {{ policy {{ timeBudgetMs }} {ERRORS} }} }}"""
DECISIONS = """query($id: ID!) { orderRouting(orderId: $id) {
  decisions { status provenOptimal budgetMs explanation } } }"""


async def test_the_budget_is_set_on_the_policy_and_every_decision_shows_it(gql, tenant_a, tenant_b, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await make_shop(ref, {chengdu: 5, shanghai: 5})

    data = await gql(SET_BUDGET, {"input": {"timeBudgetMs": 120}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"] == {"policy": {"timeBudgetMs": 120.0}, "userErrors": []}
    for bad in (0, 4, 5001):
        data = await gql(SET_BUDGET, {"input": {"timeBudgetMs": bad}}, api_key=tenant_a.api_key)
        assert [(e["code"], e["field"]) for e in data["updateRoutingPolicy"]["userErrors"]] == [
            ("INVALID_POLICY", ["timeBudgetMs"])
        ], bad

    order_id = await ingest(shop, "BUDGET-1")
    await drain(run_jobs)
    [row] = await decisions(ref, order_id)
    assert row.decision["budget_ms"] == 120.0 and row.decision["proven_optimal"] is True
    data = await gql(DECISIONS, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [shown] = data["orderRouting"]["decisions"]
    assert shown["status"] == "routed" and shown["provenOptimal"] is True and shown["budgetMs"] == 120.0
    assert "Not proven optimal" not in shown["explanation"]

    # another tenant's policy is its own: still the default budget
    data = await gql("{ routingPolicy { timeBudgetMs } }", api_key=tenant_b.api_key)
    assert data["routingPolicy"]["timeBudgetMs"] == 50.0
