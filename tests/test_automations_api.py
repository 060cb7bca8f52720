"""Order automations through GraphQL: created, changed, paused and deleted with the checks the job
expects, run by the real worker on the matching status change, scoped, and never across tenants."""

from __future__ import annotations

from app.orders.models import OrderStatus
from tests.factories import tenant_ref
from tests.routing_support import CHENGDU, ERRORS, drain, events, gid, ingest, make_shop, order_of, warehouse

AUTOMATION = "id name onStatus action afterMinutes holdCode enabled"
CREATE = f"""mutation($input: CreateAutomationInput!) {{
  createAutomation(input: $input) {{ automation {{ {AUTOMATION} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateAutomationInput!) {{
  updateAutomation(input: $input) {{ automation {{ {AUTOMATION} }} {ERRORS} }} }}"""
DELETE = f"""mutation($input: DeleteAutomationInput!) {{
  deleteAutomation(input: $input) {{ deletedId {ERRORS} }} }}"""
LIST = f"{{ automations {{ {AUTOMATION} }} }}"
HOLD = f"""mutation($input: HoldOrderInput!) {{
  holdOrder(input: $input) {{ order {{ status }} {ERRORS} }} }}"""
CANCEL_HELD = {"name": "cancel held", "onStatus": "on_hold", "action": "cancel", "afterMinutes": 0}


def _codes(payload: dict) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def _create(gql, tenant, **given) -> dict:
    data = await gql(CREATE, {"input": {**CANCEL_HELD, **given}}, api_key=tenant.api_key)
    return data["createAutomation"]


async def _two_orders(tenant, prefix: str):
    """(ref, one order put on hold through the API next, another left alone): both reserved, not routed."""
    ref = await tenant_ref(tenant.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    return ref, await ingest(shop, f"{prefix}-1"), await ingest(shop, f"{prefix}-2")


async def _hold(gql, tenant, ref, order_id: int) -> None:
    data = await gql(
        HOLD, {"input": {"id": gid("Order", ref, order_id), "reason": "check"}}, api_key=tenant.api_key
    )
    assert data["holdOrder"] == {"order": {"status": "on_hold"}, "userErrors": []}


async def test_an_automation_created_through_the_api_is_run_by_the_worker(gql, tenant_a, run_jobs):
    created = await _create(gql, tenant_a)
    assert created["userErrors"] == []
    assert {k: v for k, v in created["automation"].items() if k != "id"} == {
        **CANCEL_HELD,
        "holdCode": None,
        "enabled": True,
    }
    ref, held, other = await _two_orders(tenant_a, "AA")
    await _hold(gql, tenant_a, ref, held)  # entering on_hold schedules the automation
    await drain(run_jobs)
    assert (await order_of(ref, held)).status is OrderStatus.cancelled
    assert (await order_of(ref, other)).status is not OrderStatus.cancelled  # never on hold
    last = (await events(ref, held))[-1]
    assert last.to_status == "cancelled" and last.actor == "automation:cancel held"


async def test_a_paused_automation_does_nothing_and_a_deleted_one_is_gone(gql, tenant_a, run_jobs):
    automation = (await _create(gql, tenant_a))["automation"]
    paused = await gql(
        UPDATE, {"input": {"id": automation["id"], "enabled": False}}, api_key=tenant_a.api_key
    )
    assert paused["updateAutomation"]["userErrors"] == []
    assert paused["updateAutomation"]["automation"]["enabled"] is False
    ref, held, _ = await _two_orders(tenant_a, "AP")
    await _hold(gql, tenant_a, ref, held)
    await drain(run_jobs)
    assert (await order_of(ref, held)).status is OrderStatus.on_hold
    deleted = await gql(DELETE, {"input": {"id": automation["id"]}}, api_key=tenant_a.api_key)
    assert deleted["deleteAutomation"] == {"deletedId": automation["id"], "userErrors": []}
    assert (await gql(LIST, api_key=tenant_a.api_key))["automations"] == []
    again = await gql(DELETE, {"input": {"id": automation["id"]}}, api_key=tenant_a.api_key)
    assert _codes(again["deleteAutomation"]) == [("NOT_FOUND", ["id"])]


async def test_settings_are_checked_as_the_job_expects(gql, tenant_a):
    bad = [
        ({"name": "  "}, "INVALID_NAME", ["name"]),
        ({"onStatus": "shipped"}, "INVALID_STATUS", ["onStatus"]),  # a shipped order cannot be cancelled
        ({"onStatus": "reserved", "action": "release"}, "INVALID_STATUS", ["onStatus"]),
        ({"action": "explode"}, "INVALID_ACTION", ["action"]),
        ({"afterMinutes": -1}, "OUT_OF_RANGE", ["afterMinutes"]),  # the schema-wide bound
        ({"afterMinutes": 60 * 24 * 30 + 1}, "INVALID_DELAY", ["afterMinutes"]),
        ({"holdCode": "manual"}, "INVALID_HOLD_CODE", ["holdCode"]),  # only with release
    ]
    for given, code, field in bad:
        payload = await _create(gql, tenant_a, **given)
        assert payload["automation"] is None and _codes(payload) == [(code, field)], given
    row = (await _create(gql, tenant_a, name=" review ", action="release", holdCode="manual"))["automation"]
    assert row["name"] == "review" and row["holdCode"] == "manual"
    # An update is checked with the values it keeps: release cannot move off on_hold.
    moved = await gql(UPDATE, {"input": {"id": row["id"], "onStatus": "received"}}, api_key=tenant_a.api_key)
    assert _codes(moved["updateAutomation"]) == [("INVALID_STATUS", ["onStatus"])]
    unset = await gql(UPDATE, {"input": {"id": row["id"], "name": None}}, api_key=tenant_a.api_key)
    assert _codes(unset["updateAutomation"]) == [("INVALID_AUTOMATION", ["name"])]
    changed = await gql(
        UPDATE,
        {"input": {"id": row["id"], "action": "cancel", "holdCode": None, "afterMinutes": 30}},
        api_key=tenant_a.api_key,
    )
    assert changed["updateAutomation"]["userErrors"] == []
    automation = changed["updateAutomation"]["automation"]
    assert (automation["action"], automation["holdCode"], automation["afterMinutes"]) == ("cancel", None, 30)
    assert (await gql(LIST, api_key=tenant_a.api_key))["automations"] == [automation]


async def test_reading_needs_orders_read_and_changing_orders_write(gql, tenant_a):
    automation = (await _create(gql, tenant_a))["automation"]
    key = await gql(
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        {"input": {"name": "reader", "scopes": ["orders:read"]}},
        token=tenant_a.token,
    )
    reader = key["createApiKey"]["key"]
    assert (await gql(LIST, api_key=reader))["automations"] == [automation]
    for query, variables in (
        (CREATE, {"input": CANCEL_HELD}),
        (UPDATE, {"input": {"id": automation["id"], "enabled": False}}),
        (DELETE, {"input": {"id": automation["id"]}}),
    ):
        refused = await gql.raw(query, variables, api_key=reader)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql.raw(LIST)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_another_tenant_cannot_see_change_or_delete_an_automation(gql, tenant_a, tenant_b):
    automation = (await _create(gql, tenant_a))["automation"]
    assert (await gql(LIST, api_key=tenant_b.api_key))["automations"] == []
    seen = await gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": automation["id"]}, api_key=tenant_b.api_key
    )
    assert seen["node"] is None
    paused = await gql(
        UPDATE, {"input": {"id": automation["id"], "enabled": False}}, api_key=tenant_b.api_key
    )
    assert paused["updateAutomation"]["automation"] is None
    assert _codes(paused["updateAutomation"]) == [("NOT_FOUND", ["id"])]
    deleted = await gql(DELETE, {"input": {"id": automation["id"]}}, api_key=tenant_b.api_key)
    assert deleted["deleteAutomation"]["deletedId"] is None
    assert _codes(deleted["deleteAutomation"]) == [("NOT_FOUND", ["id"])]
    assert (await gql(LIST, api_key=tenant_a.api_key))["automations"] == [automation]  # untouched
