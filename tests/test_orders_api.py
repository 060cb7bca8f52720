"""Orders through GraphQL: ingest, read, list (filters, sorts, cursors), operator mutations, audit
settings, the inbox and replays, CSV import, channel webhook fields, and the statement count of a page.

Orders are created the way a back office would: ``ingestOrders`` with generic JSON (GENERIC.md).
The helpers at the top are shared by the cross-tenant and subscription tests.
"""

from __future__ import annotations

import json

from sqlalchemy import event
from strawberry.relay import GlobalID

from app.db import get_db
from app.signing import sign as oms_signature
from tests.catalog_ops import errors
from tests.orders_api_support import (
    AUDIT_RULES,
    BLACKLIST,
    BY_NUMBER,
    CANCEL,
    EDIT_ADDRESS,
    ERR,
    HOLD,
    IMPORT_CSV,
    INBOX,
    INGEST,
    NOTE,
    ORDER,
    ORDERS,
    RELEASE,
    REPLAY,
    SET_RULE,
    UPDATE_CHANNEL,
    api_key,
    ingest,
    ingest_one,
    make_shop,
    order_json,
    row_id,
)

EVENTS = """query($id: ID!, $first: Int, $after: String) { order(id: $id) {
  events(first: $first, after: $after) { edges { cursor node { kind actor message fromStatus toStatus } }
  pageInfo { hasNextPage endCursor } } } }"""


async def order_of(gql, tenant, order_id: str, **auth) -> dict | None:
    auth = auth or {"token": tenant.token}
    return (await gql(ORDER, {"id": order_id}, **auth))["order"]


def gql_codes(response) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]


# ---- ingest and read ---------------------------------------------------------------------------------


async def test_ingest_then_read_everything(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    payload = order_json(
        shop,
        "WEB-1",
        quantity=2,
        price="199.50",
        shipping="12.00",
        ship_by="2024-06-20T18:00:00+08:00",
        seller_note="VIP day",
        invoice={"title": "ACME Ltd", "tax_id": "91310000X", "type": "e-invoice"},
        buyer={"id": "u-1", "name": "Li Lei", "phone": "13800138000", "email": "Li.Lei@Example.com"},
    )
    [result] = await ingest(gql, tenant_a, shop, [payload])
    assert (result["index"], result["inboxStatus"], result["outcome"]) == (0, "processed", "created")
    assert result["inboxMessageId"] and result["number"] == result["order"]["number"]
    assert result["status"] == result["order"]["status"]

    order = await order_of(gql, tenant_a, result["order"]["id"])
    assert (order["externalId"], order["channelStatus"], order["businessModel"]) == ("WEB-1", "paid", "b2c")
    assert order["channel"] == {"id": shop.channel_id, "code": shop.code}
    assert order["amounts"] == {
        "currency": "CNY",
        "subtotal": "399.00",
        "shipping": "12.00",
        "discount": "0.00",
        "tax": "0.00",
        "total": "411.00",
        "paid": "411.00",
    }
    assert order["requestedCarrier"] == "SF"
    assert order["promisedShipBy"].startswith("2024-06-20T10:00:00")
    assert (order["buyerNote"], order["sellerNote"]) == ("gift wrap please", "VIP day")
    assert order["invoice"] == {"title": "ACME Ltd", "taxId": "91310000X", "type": "e-invoice"}
    assert order["buyer"]["name"] == "Li Lei"
    assert order["shippingAddress"]["city"] == "Shanghai"
    assert order["shippingAddress"]["street"] == "1 Nanjing Road"
    assert len(order["fingerprint"]) == 64
    customer = order["customer"]
    assert customer["name"] == "Li Lei" and customer["orderCount"] == 1 and not customer["blacklisted"]
    assert "13800138000" not in (customer["maskedPhone"] or "") and customer["maskedPhone"]
    assert "li.lei@example.com" not in (customer["maskedEmail"] or "")
    [line] = order["lines"]
    assert (line["externalLineId"], line["quantity"], line["unitPrice"], line["total"]) == (
        "1",
        2,
        "199.50",
        "399.00",
    )
    assert line["kind"] == "single" and line["product"]["id"] == _gid(
        "Product", tenant_a, shop.item.product_id
    )
    assert [m["quantity"] for m in line["materials"]] == [2]
    events = [e["node"] for e in order["events"]["edges"]]
    assert events and events[0]["kind"] == "received"
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), key=row_id)  # oldest first

    by_number = await gql(BY_NUMBER, {"n": order["number"]}, token=tenant_a.token)
    assert by_number["orderByNumber"]["id"] == order["id"]
    assert (await gql(BY_NUMBER, {"n": "NOPE"}, token=tenant_a.token))["orderByNumber"] is None
    node = await gql(
        "query($id: ID!) { node(id: $id) { __typename ... on Order { number } } }",
        {"id": order["id"]},
        token=tenant_a.token,
    )
    assert node["node"] == {"__typename": "Order", "number": order["number"]}
    customer_node = await gql(
        "query($id: ID!) { node(id: $id) { ... on Customer { name } } }",
        {"id": customer["id"]},
        token=tenant_a.token,
    )
    assert customer_node["node"] == {"name": "Li Lei"}

    # The same order delivered again is one order.
    [again] = await ingest(gql, tenant_a, shop, [payload])
    assert again["order"]["id"] == order["id"] and again["outcome"] in ("unchanged", "stale")


def _gid(type_name: str, tenant, row: int) -> str:
    from strawberry.relay import to_base64

    tenant_id = GlobalID.from_id(tenant.tenant_id).node_id
    return to_base64(type_name, f"{tenant_id}.{row}")


async def test_ingest_errors_are_per_order(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    too_many = [order_json(shop, f"X-{i}") for i in range(1001)]
    data = await gql(
        INGEST, {"input": {"channelId": shop.channel_id, "orders": too_many}}, token=tenant_a.token
    )
    assert errors(data["ingestOrders"]) == [("TOO_MANY", ["orders"])]

    bad_price = order_json(shop, "BAD-1")
    bad_price["lines"][0]["unit_price"] = "1.999"
    not_an_order = "this is not an order"
    good = order_json(shop, "GOOD-1")
    results = await ingest(gql, tenant_a, shop, [bad_price, good, not_an_order, {"format": "oms.order.v1"}])
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["inboxStatus"] for r in results] == ["failed", "processed", "failed", "failed"]
    assert "lines[0].unit_price" in results[0]["error"] and results[0]["order"] is None
    assert results[1]["outcome"] == "created" and results[1]["order"]
    assert results[2]["error"] and results[3]["error"]
    assert all(r["inboxMessageId"] for r in results)

    for bad_id in ("nope", shop.channel_id.replace("=", "") + "x", _gid("Channel", tenant_a, 999999)):
        data = await gql(INGEST, {"input": {"channelId": bad_id, "orders": [good]}}, token=tenant_a.token)
        assert errors(data["ingestOrders"]) == [("NOT_FOUND", ["channelId"])]
    empty = await gql(INGEST, {"input": {"channelId": shop.channel_id, "orders": []}}, token=tenant_a.token)
    assert empty["ingestOrders"] == {"results": [], "userErrors": []}


# ---- list ----------------------------------------------------------------------------------------------


async def _orders(gql, tenant, **variables) -> list[dict]:
    data = await gql(ORDERS, variables, token=tenant.token)
    return [e["node"] for e in data["orders"]["edges"]]


async def test_orders_filters(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    other = await make_shop(gql, tenant_a)
    a = await ingest_one(gql, tenant_a, shop, "F-A", name="Wang Fang", placed_at="2024-06-01T09:00:00+08:00")
    b = await ingest_one(gql, tenant_a, shop, "F-B", name="Zhao Xue", city="Chengdu")
    c = await ingest_one(gql, tenant_a, other, "F-C", phone="13912345678", placed_at="2024-07-01T09:00:00Z")
    held = await gql(HOLD, {"input": {"id": b["id"], "reason": "check address"}}, token=tenant_a.token)
    assert held["holdOrder"]["userErrors"] == []

    async def numbers(**flt) -> set[str]:
        return {o["number"] for o in await _orders(gql, tenant_a, filter=flt, first=100)}

    assert await numbers(number=a["number"]) == {a["number"]}
    assert await numbers(externalId="F-C") == {c["number"]}
    assert await numbers(channelId=[other.channel_id]) == {c["number"]}
    assert await numbers(channelId=[shop.channel_id, other.channel_id]) >= {a["number"], c["number"]}
    assert await numbers(channelId=["garbage"]) == set()
    assert await numbers(search="WANG fang") == {a["number"]}
    assert await numbers(search="chengdu") == {b["number"]}
    assert await numbers(search="1391234") == {c["number"]}
    assert await numbers(search="%") == set()
    assert await numbers(onHold=True) == {b["number"]}
    assert b["number"] not in await numbers(onHold=False)
    assert await numbers(status=["on_hold"]) == {b["number"]}
    assert await numbers(status=["cancelled"]) == set()
    assert await numbers(placedFrom="2024-06-18T00:00:00Z", placedTo="2024-06-30T00:00:00Z") == {b["number"]}
    assert await numbers(placedFrom="2024-06-30T00:00:00Z") == {c["number"]}
    assert await numbers(placedTo="2024-06-02T00:00:00Z") == {a["number"]}
    full_a = await order_of(gql, tenant_a, a["id"])
    assert await numbers(customerId=full_a["customer"]["id"]) == {a["number"]}
    assert await numbers(customerId="garbage") == set()
    r = await gql.raw(ORDERS, {"filter": {"search": "x" * 101}}, token=tenant_a.token)
    assert gql_codes(r) == ["INVALID_SEARCH"]


async def test_orders_sort_and_cursors_are_stable(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    created = []
    # Three orders share a placed time and two share a total: ties are broken by id, never repeated.
    for i, (placed, price) in enumerate(
        [
            ("2024-06-18T10:00:00Z", "10.00"),
            ("2024-06-18T10:00:00Z", "30.00"),
            ("2024-06-18T10:00:00Z", "30.00"),
            ("2024-06-17T10:00:00Z", "20.00"),
            ("2024-06-19T10:00:00Z", "5.00"),
        ]
    ):
        created.append(await ingest_one(gql, tenant_a, shop, f"S-{i}", placed_at=placed, price=price))
    ids = [o["id"] for o in created]

    async def walk(sort: dict | None) -> list[str]:
        seen, after = [], None
        while True:
            data = await gql(ORDERS, {"first": 2, "after": after, "sort": sort}, token=tenant_a.token)
            seen += [e["node"]["id"] for e in data["orders"]["edges"]]
            if not data["orders"]["pageInfo"]["hasNextPage"]:
                return seen
            after = data["orders"]["pageInfo"]["endCursor"]

    by_row = {i: row_id(i) for i in ids}
    default = await walk(None)  # placed at, newest first, then id descending
    assert default == [ids[4], ids[2], ids[1], ids[0], ids[3]]
    assert await walk({"field": "PLACED_AT", "direction": "ASC"}) == [ids[3], ids[0], ids[1], ids[2], ids[4]]
    assert await walk({"field": "TOTAL", "direction": "DESC"}) == [ids[2], ids[1], ids[3], ids[0], ids[4]]
    assert await walk({"field": "TOTAL", "direction": "ASC"}) == [ids[4], ids[0], ids[3], ids[1], ids[2]]
    assert await walk({"field": "CREATED_AT", "direction": "ASC"}) == sorted(ids, key=by_row.get)

    page = await gql(ORDERS, {"first": 2}, token=tenant_a.token)
    cursor = page["orders"]["pageInfo"]["endCursor"]
    wrong_sort = await gql.raw(ORDERS, {"after": cursor, "sort": {"field": "TOTAL"}}, token=tenant_a.token)
    assert gql_codes(wrong_sort) == ["INVALID_CURSOR"]
    garbage = await gql.raw(ORDERS, {"after": "bm9wZQ=="}, token=tenant_a.token)
    assert gql_codes(garbage) == ["INVALID_CURSOR"]
    too_big = await gql.raw(ORDERS, {"first": 101}, token=tenant_a.token)
    assert gql_codes(too_big) == ["INVALID_PAGE_SIZE"]


async def test_order_list_runs_a_constant_number_of_statements(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    orders = [order_json(shop, f"N-{i}", quantity=1 + i % 3) for i in range(30)]
    results = await ingest(gql, tenant_a, shop, orders)
    assert all(r["inboxStatus"] == "processed" for r in results)
    for r in results[:3]:
        await gql(HOLD, {"input": {"id": r["order"]["id"], "reason": "count me"}}, token=tenant_a.token)
    page = """query($first: Int) { orders(first: $first) { edges { node {
      id number status amounts { total } channel { code } customer { name }
      lines { title quantity product { code } materials { quantity material { code } } }
      holds { code reason }
      events(first: 3) { edges { node { kind actor } } }
    } } } }"""
    engine = get_db().engine.sync_engine
    counted: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        counted.append(statement)

    async def statements(first: int) -> int:
        counted.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            data = await gql(page, {"first": first}, token=tenant_a.token)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(data["orders"]["edges"]) == first
        assert all(e["node"]["lines"] and e["node"]["events"]["edges"] for e in data["orders"]["edges"])
        return len(counted)

    small, large = await statements(5), await statements(30)
    assert small == large, (small, large)
    assert large <= 12


# ---- operator mutations --------------------------------------------------------------------------------


async def test_hold_release_cancel(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    order = await ingest_one(gql, tenant_a, shop)
    start = order["status"]
    assert start in ("reserved", "routed", "received", "presale")

    held = (await gql(HOLD, {"input": {"id": order["id"], "reason": "call buyer"}}, token=tenant_a.token))[
        "holdOrder"
    ]
    assert held["userErrors"] == [] and held["order"]["status"] == "on_hold"
    assert held["order"]["holds"] == [{"code": "manual", "reason": "call buyer", "createdBy": tenant_a.email}]
    bad = (await gql(HOLD, {"input": {"id": order["id"], "reason": "  "}}, token=tenant_a.token))["holdOrder"]
    assert errors(bad) == [("INVALID_REASON", ["reason"])] and bad["order"] is None

    wrong_code = await gql(RELEASE, {"input": {"id": order["id"], "codes": ["nope"]}}, token=tenant_a.token)
    assert errors(wrong_code["releaseOrderHolds"]) == [("NO_SUCH_HOLD", ["codes"])]
    released = (
        await gql(RELEASE, {"input": {"id": order["id"], "codes": ["manual"]}}, api_key=tenant_a.api_key)
    )["releaseOrderHolds"]
    assert released["userErrors"] == [] and released["order"]["holds"] == []
    assert released["order"]["status"] not in ("on_hold", "cancelled")
    again = await gql(RELEASE, {"input": {"id": order["id"]}}, token=tenant_a.token)
    assert errors(again["releaseOrderHolds"]) == [("NOT_ON_HOLD", ["id"])]

    long_reason = await gql(CANCEL, {"input": {"id": order["id"], "reason": "x" * 501}}, token=tenant_a.token)
    assert errors(long_reason["cancelOrder"]) == [("INVALID_REASON", ["reason"])]
    cancelled = (
        await gql(CANCEL, {"input": {"id": order["id"], "reason": "buyer asked"}}, token=tenant_a.token)
    )["cancelOrder"]
    assert cancelled["userErrors"] == [] and cancelled["order"]["status"] == "cancelled"
    twice = await gql(CANCEL, {"input": {"id": order["id"]}}, token=tenant_a.token)
    assert errors(twice["cancelOrder"]) == [("ILLEGAL_TRANSITION", ["status"])]
    hold_cancelled = await gql(HOLD, {"input": {"id": order["id"], "reason": "x"}}, token=tenant_a.token)
    assert errors(hold_cancelled["holdOrder"]) == [("ILLEGAL_TRANSITION", ["status"])]
    missing = await gql(CANCEL, {"input": {"id": "garbage"}}, token=tenant_a.token)
    assert errors(missing["cancelOrder"]) == [("NOT_FOUND", ["id"])]

    events = (await gql(EVENTS, {"id": order["id"], "first": 100}, token=tenant_a.token))["order"]["events"]
    timeline = [e["node"] for e in events["edges"]]
    kinds = [e["kind"] for e in timeline]
    assert kinds.index("hold") < kinds.index("release") < len(kinds) - 1
    assert timeline[-1] == {
        "kind": "status",
        "actor": tenant_a.email,
        "message": "buyer asked",
        "fromStatus": released["order"]["status"],
        "toStatus": "cancelled",
    }
    release = next(e for e in timeline if e["kind"] == "release")
    assert release["actor"] == "api-key:back office"

    # The timeline pages oldest first with cursors.
    first = (await gql(EVENTS, {"id": order["id"], "first": 2}, token=tenant_a.token))["order"]["events"]
    assert [e["node"]["kind"] for e in first["edges"]] == kinds[:2] and first["pageInfo"]["hasNextPage"]
    rest = await gql(
        EVENTS,
        {"id": order["id"], "first": 100, "after": first["pageInfo"]["endCursor"]},
        token=tenant_a.token,
    )
    assert [e["node"]["kind"] for e in rest["order"]["events"]["edges"]] == kinds[2:]


async def test_edit_address_and_notes(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    order = await ingest_one(gql, tenant_a, shop)
    before = await order_of(gql, tenant_a, order["id"])

    edited = (
        await gql(
            EDIT_ADDRESS,
            {"input": {"id": order["id"], "address": {"city": "Hangzhou", "street": "28 Hubin Road"}}},
            token=tenant_a.token,
        )
    )["editOrderAddress"]
    assert edited["userErrors"] == []
    assert edited["order"]["shippingAddress"] == {
        "name": "Li Lei",
        "city": "Hangzhou",
        "street": "28 Hubin Road",
        "postcode": "200040",
    }
    assert edited["order"]["fingerprint"] != before["fingerprint"]
    found = await _orders(gql, tenant_a, filter={"search": "hubin"})
    assert [o["id"] for o in found] == [order["id"]]

    too_long = await gql(
        EDIT_ADDRESS, {"input": {"id": order["id"], "address": {"street": "x" * 301}}}, token=tenant_a.token
    )
    assert errors(too_long["editOrderAddress"]) == [("INVALID_ADDRESS", ["address", "street"])]
    no_street = await gql(
        EDIT_ADDRESS, {"input": {"id": order["id"], "address": {"street": ""}}}, token=tenant_a.token
    )
    assert errors(no_street["editOrderAddress"]) == [("INVALID_ADDRESS", ["address"])]
    after = await order_of(gql, tenant_a, order["id"])
    assert after["shippingAddress"]["street"] == "28 Hubin Road"  # the failed edits changed nothing

    noted = (await gql(NOTE, {"input": {"id": order["id"], "text": " called, OK "}}, token=tenant_a.token))[
        "addOrderNote"
    ]
    assert noted["userErrors"] == []
    for text in ("", "x" * 2001):
        bad = await gql(NOTE, {"input": {"id": order["id"], "text": text}}, token=tenant_a.token)
        assert errors(bad["addOrderNote"]) == [("INVALID_NOTE", ["text"])]
    events = (await gql(EVENTS, {"id": order["id"], "first": 100}, token=tenant_a.token))["order"]["events"]
    last_two = [e["node"] for e in events["edges"]][-2:]
    assert last_two[0]["kind"] == "address" and last_two[0]["actor"] == tenant_a.email
    assert last_two[1] == {
        "kind": "note",
        "actor": tenant_a.email,
        "message": "called, OK",
        "fromStatus": None,
        "toStatus": None,
    }

    await gql(CANCEL, {"input": {"id": order["id"]}}, token=tenant_a.token)
    locked = await gql(
        EDIT_ADDRESS, {"input": {"id": order["id"], "address": {"city": "Beijing"}}}, token=tenant_a.token
    )
    assert errors(locked["editOrderAddress"]) == [("ADDRESS_LOCKED", ["address"])]


async def test_scopes(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    order = await ingest_one(gql, tenant_a, shop)
    reader = await api_key(gql, tenant_a, ["orders:read", "catalog:read"])  # lines show their products
    nobody = await api_key(gql, tenant_a, ["catalog:read"])

    assert (await order_of(gql, tenant_a, order["id"], api_key=reader))["id"] == order["id"]
    r = await gql.raw(ORDER, {"id": order["id"]}, api_key=nobody)
    assert gql_codes(r) == ["FORBIDDEN"]
    r = await gql.raw(ORDER, {"id": order["id"]})
    assert gql_codes(r) == ["UNAUTHENTICATED"]
    for mutation, variables in (
        (HOLD, {"input": {"id": order["id"], "reason": "x"}}),
        (CANCEL, {"input": {"id": order["id"]}}),
        (NOTE, {"input": {"id": order["id"], "text": "x"}}),
        (INGEST, {"input": {"channelId": shop.channel_id, "orders": []}}),
    ):
        assert gql_codes(await gql.raw(mutation, variables, api_key=reader)) == ["FORBIDDEN"]
    r = await gql.raw(
        SET_RULE, {"input": {"code": "x"}}, api_key=await api_key(gql, tenant_a, ["orders:write"])
    )
    assert gql_codes(r) == ["FORBIDDEN"]
    node = await gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": order["id"]}, api_key=nobody
    )  # node() hides what the caller may not read
    assert node["node"] is None
    assert (await gql(INBOX, {}, api_key=reader))["inboxMessages"]["edges"] == []


# ---- audit settings ------------------------------------------------------------------------------------


async def test_audit_rules_and_blacklist(gql, tenant_a):
    rules = (await gql(AUDIT_RULES, token=tenant_a.token))["auditRules"]
    assert {"blacklist", "duplicate", "threshold"} <= {r["code"] for r in rules}
    rule = next(r for r in rules if r["code"] == "scalper")
    changed = (
        await gql(
            SET_RULE,
            {"input": {"code": rule["code"], "enabled": not rule["enabled"], "weight": 7}},
            token=tenant_a.token,
        )
    )["setAuditRule"]
    assert changed["userErrors"] == []
    assert (changed["rule"]["enabled"], changed["rule"]["weight"]) == (not rule["enabled"], 7)
    listed = {r["code"]: r for r in (await gql(AUDIT_RULES, token=tenant_a.token))["auditRules"]}
    assert listed[rule["code"]]["weight"] == 7
    unknown = await gql(SET_RULE, {"input": {"code": "no_such_rule"}}, token=tenant_a.token)
    assert errors(unknown["setAuditRule"]) == [("UNKNOWN_RULE", ["code"])]
    assert unknown["setAuditRule"]["rule"] is None
    bad_params = await gql(
        SET_RULE, {"input": {"code": "scalper", "params": {"max_orders": 0}}}, token=tenant_a.token
    )
    assert errors(bad_params["setAuditRule"]) == [("INVALID_PARAMS", ["params"])]

    shop = await make_shop(gql, tenant_a)
    added = (
        await gql(
            BLACKLIST,
            {"input": {"kind": "phone", "value": "+86 139 0000 0001", "reason": "chargebacks"}},
            token=tenant_a.token,
        )
    )["addToBlacklist"]
    assert added["userErrors"] == [] and added["entry"] == {"kind": "phone", "reason": "chargebacks"}
    bad_kind = await gql(BLACKLIST, {"input": {"kind": "shoe size", "value": "42"}}, token=tenant_a.token)
    assert errors(bad_kind["addToBlacklist"]) == [("INVALID_KIND", ["kind"])]
    assert bad_kind["addToBlacklist"]["entry"] is None
    order = await ingest_one(gql, tenant_a, shop, phone="13900000001")
    full = await order_of(gql, tenant_a, order["id"])
    assert full["status"] == "on_hold"
    assert [h["code"] for h in full["holds"]] == ["blacklist"] and full["holds"][0]["createdBy"]


# ---- inbox, replay, CSV -------------------------------------------------------------------------------


async def test_inbox_and_replay(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    off = await gql(UPDATE_CHANNEL, {"input": {"id": shop.channel_id, "active": False}}, token=tenant_a.token)
    assert off["updateChannel"]["userErrors"] == []
    [failed] = await ingest(gql, tenant_a, shop, [order_json(shop, "INBOX-1", name="Inbox Person")])
    assert failed["inboxStatus"] == "failed" and "inactive" in failed["error"]

    inbox = (await gql(INBOX, {}, token=tenant_a.token))["inboxMessages"]["edges"]
    message = next(e["node"] for e in inbox if e["node"]["id"] == failed["inboxMessageId"])
    assert message["status"] == "failed" and "inactive" in message["error"]
    assert message["source"] == f"channel:{shop.channel_row}" and message["attempts"] == 1
    assert "INBOX-1" in message["bodyPreview"] and message["bodySize"] >= len(message["bodyPreview"])
    node = await gql(
        "query($id: ID!) { node(id: $id) { ... on InboxMessage { status } } }",
        {"id": failed["inboxMessageId"]},
        token=tenant_a.token,
    )
    assert node["node"] == {"status": "failed"}

    await gql(UPDATE_CHANNEL, {"input": {"id": shop.channel_id, "active": True}}, token=tenant_a.token)
    replayed = (await gql(REPLAY, {"input": {"id": failed["inboxMessageId"]}}, token=tenant_a.token))[
        "replayInboxMessage"
    ]
    assert replayed["userErrors"] == []
    result = replayed["result"]
    assert (result["inboxStatus"], result["outcome"], result["index"]) == ("processed", "created", None)
    assert result["order"]["number"] == result["number"]
    again = await gql(REPLAY, {"input": {"id": failed["inboxMessageId"]}}, token=tenant_a.token)
    assert errors(again["replayInboxMessage"]) == [("ALREADY_PROCESSED", ["id"])]
    missing = await gql(REPLAY, {"input": {"id": "garbage"}}, token=tenant_a.token)
    assert errors(missing["replayInboxMessage"]) == [("NOT_FOUND", ["id"])]

    pending = {
        e["node"]["id"] for e in (await gql(INBOX, {}, token=tenant_a.token))["inboxMessages"]["edges"]
    }
    assert failed["inboxMessageId"] not in pending  # processed now: not in the default list
    done = await gql(INBOX, {"status": ["processed"], "first": 100}, token=tenant_a.token)
    assert failed["inboxMessageId"] in {e["node"]["id"] for e in done["inboxMessages"]["edges"]}


CSV = """order_id,placed_at,sku_id,item_id,title,quantity,unit_price,ship_name,ship_phone,city,street
CSV-1,2024-06-18 14:02:11,,{item},Scarf,1,99.00,Liu Yang,13911112222,Shanghai,1266 West Nanjing Road
CSV-2,2024-06-18 15:40:00,,{item},Scarf,2,99.00,Sun Yue,13600001111,Hangzhou,28 Hubin Road
CSV-3,2024-06-18 16:00:00,,{item},Scarf,lots,99.00,Zheng Kai,13700002222,Shenzhen,88 Fuhua Road
"""


async def test_import_orders_csv(gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    text = CSV.format(item=shop.item.listing_item_id)
    mapping = {"currency": "=CNY", "timezone": "=Asia/Shanghai"}
    for name in ("order_id", "placed_at", "sku_id", "item_id", "title", "quantity", "unit_price"):
        mapping[name] = name
    mapping |= {"ship_name": "ship_name", "ship_phone": "ship_phone", "city": "city", "street": "street"}
    variables = {"input": {"channelId": shop.channel_id, "csv": text, "mapping": mapping}}
    report = (await gql(IMPORT_CSV, variables, token=tenant_a.token))["importOrdersCsv"]
    assert report["userErrors"] == []
    assert (report["orders"], report["created"], report["failed"]) == (2, 2, 1), report
    [error] = report["errors"]
    assert error["line"] == 4 and "quantity" in (error["column"] or "") + error["message"]
    assert report["inboxMessageId"]
    numbers = {o["externalId"] for o in await _orders(gql, tenant_a, filter={"channelId": [shop.channel_id]})}
    assert numbers == {"CSV-1", "CSV-2"}

    again = (await gql(IMPORT_CSV, variables, token=tenant_a.token))["importOrdersCsv"]
    assert (again["created"], again["unchanged"]) == (0, 2)
    bad_mapping = {"input": {"channelId": shop.channel_id, "csv": text, "mapping": ["order_id"]}}
    bad = await gql(IMPORT_CSV, bad_mapping, token=tenant_a.token)
    assert errors(bad["importOrdersCsv"]) == [("INVALID_MAPPING", ["mapping"])]
    unreadable = {"input": {"channelId": shop.channel_id, "csv": text, "mapping": {"nope": "x"}}}
    unread = (await gql(IMPORT_CSV, unreadable, token=tenant_a.token))["importOrdersCsv"]
    assert unread["inboxStatus"] == "failed" and unread["errors"][0]["line"] is None
    missing = {"input": {"channelId": "garbage", "csv": text}}
    assert errors((await gql(IMPORT_CSV, missing, token=tenant_a.token))["importOrdersCsv"]) == [
        ("NOT_FOUND", ["channelId"])
    ]


# ---- channel webhook fields ---------------------------------------------------------------------------


async def test_channel_webhook_fields(gql, tenant_a):
    fields = "id timezone currency defaultCarrier webhookUrl webhookSecret"
    create = f"""mutation($input: CreateChannelInput!) {{ createChannel(input: $input) {{
      channel {{ {fields} }} {ERR} }} }}"""
    rotate = f"""mutation($input: RotateChannelWebhookSecretInput!) {{
      rotateChannelWebhookSecret(input: $input) {{ channel {{ {fields} }} {ERR} }} }}"""
    created = (
        await gql(
            create,
            {
                "input": {
                    "code": "JD-1",
                    "name": "JD",
                    "platform": "jd",
                    "timezone": "Asia/Hong_Kong",
                    "currency": "HKD",
                    "defaultCarrier": "SF",
                }
            },
            token=tenant_a.token,
        )
    )["createChannel"]
    assert created["userErrors"] == []
    channel = created["channel"]
    assert (channel["timezone"], channel["currency"], channel["defaultCarrier"]) == (
        "Asia/Hong_Kong",
        "HKD",
        "SF",
    )
    assert channel["webhookSecret"].startswith("whsec_")
    assert channel["webhookUrl"] == f"http://testserver/webhooks/channels/{channel['id']}"

    operator = await api_key(gql, tenant_a, ["catalog:read", "catalog:write"])
    seen = await gql(
        "query($id: ID!) { node(id: $id) { ... on Channel { webhookSecret webhookUrl } } }",
        {"id": channel["id"]},
        api_key=operator,
    )
    assert seen["node"]["webhookSecret"] is None and seen["node"]["webhookUrl"] == channel["webhookUrl"]
    r = await gql.raw(rotate, {"input": {"id": channel["id"]}}, api_key=operator)
    assert gql_codes(r) == ["FORBIDDEN"]

    rotated = (await gql(rotate, {"input": {"id": channel["id"]}}, token=tenant_a.token))[
        "rotateChannelWebhookSecret"
    ]
    assert rotated["userErrors"] == []
    assert rotated["channel"]["webhookSecret"].startswith("whsec_")
    assert rotated["channel"]["webhookSecret"] != channel["webhookSecret"]
    missing = await gql(rotate, {"input": {"id": "garbage"}}, token=tenant_a.token)
    assert errors(missing["rotateChannelWebhookSecret"]) == [("NOT_FOUND", ["id"])]

    for field, value, code in (
        ("timezone", "Mars/Olympus", "INVALID_TIMEZONE"),
        ("currency", "yuan", "INVALID_CURRENCY"),
        ("defaultCarrier", "x" * 61, "INVALID_CARRIER"),
    ):
        bad = await gql(UPDATE_CHANNEL, {"input": {"id": channel["id"], field: value}}, token=tenant_a.token)
        assert errors(bad["updateChannel"]) == [(code, [field])]
    cleared = await gql(
        UPDATE_CHANNEL,
        {"input": {"id": channel["id"], "defaultCarrier": None, "currency": "CNY"}},
        token=tenant_a.token,
    )
    assert cleared["updateChannel"]["channel"]["defaultCarrier"] is None
    assert cleared["updateChannel"]["channel"]["currency"] == "CNY"
    assert cleared["updateChannel"]["channel"]["timezone"] == "Asia/Hong_Kong"
    plain = await gql(
        create, {"input": {"code": "WEB-D", "name": "Web", "platform": "web"}}, token=tenant_a.token
    )
    assert (plain["createChannel"]["channel"]["timezone"], plain["createChannel"]["channel"]["currency"]) == (
        "Asia/Shanghai",
        "CNY",
    )


async def test_webhook_url_and_secret_take_orders(gql, client, tenant_a):
    """What a tenant admin copies into the sending system works, and a rotated secret stops working."""
    shop = await make_shop(gql, tenant_a)
    query = "query($id: ID!) { node(id: $id) { ... on Channel { webhookUrl webhookSecret } } }"
    channel = (await gql(query, {"id": shop.channel_id}, token=tenant_a.token))["node"]
    body = json.dumps(order_json(shop, "HOOK-1")).encode()

    async def post(secret: str):
        headers = {"X-OMS-Signature": oms_signature(secret, body), "content-type": "application/json"}
        return await client.post(channel["webhookUrl"], content=body, headers=headers)

    taken = await post(channel["webhookSecret"])
    assert taken.status_code == 200 and taken.json()["status"] == "processed", taken.json()
    found = await _orders(gql, tenant_a, filter={"externalId": "HOOK-1"})
    assert [o["id"] for o in found] == [taken.json()["order"]["id"]]

    rotate = """mutation($id: ID!) { rotateChannelWebhookSecret(input: {id: $id}) {
      channel { webhookSecret } userErrors { code } } }"""
    await gql(rotate, {"id": shop.channel_id}, token=tenant_a.token)
    refused = await post(channel["webhookSecret"])
    assert refused.status_code == 401
    rejected = await gql(INBOX, {"status": ["rejected"]}, token=tenant_a.token)
    assert [e["node"]["status"] for e in rejected["inboxMessages"]["edges"]] == ["rejected"]


def test_example_operations_match_the_schema():
    from app.api.schema import schema
    from app.config import PROJECT_ROOT
    from graphql import parse, validate

    document = parse((PROJECT_ROOT / "graphql" / "operations" / "orders.graphql").read_text())
    assert validate(schema._schema, document) == []
    names = {d.name.value for d in document.definitions if d.kind == "operation_definition"}
    assert {"OrderList", "OrderDetail", "IngestOrders", "ReplayInboxMessage", "OrderEvents"} <= names
