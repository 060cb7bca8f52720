"""Every order door bounds what it is given, and says which field is out of bounds: a channel webhook,
``ingestOrders`` and a CSV import, each through its public surface. Before these bounds a quantity of
2**63, a 50-digit price, 1e308, a NUL byte or a 100,000-deep body ended as "internal error while
processing" (or, for a CSV, as an internal GraphQL error)."""

from __future__ import annotations

import json
import secrets

from app.channels.normalized import MAX_LINES
from tests.door_support import bearer, fixture, inbox_row, make_webhook_channel, oms_headers, post, upload
from tests.factories import tenant_ref
from tests.orders_api_support import INGEST
from tests.routing_support import connect, gid, sign, warehouse


def order(**over) -> dict:
    """The generic fixture order under a new id, without the totals a bound test would have to redo."""
    body = json.loads(fixture("generic", "order.json"))
    for key in ("total", "order_discount"):
        body.pop(key)
    body["id"] = f"BOUND-{secrets.token_hex(4)}"
    body.update(over)
    return body


def line(**over) -> dict:
    return {
        "id": "1",
        "sku_id": "SKU-2002",
        "title": "羊绒手套",
        "quantity": 1,
        "unit_price": "159.50",
        **over,
    }


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# (the order, the error every door gives for it); each names the field it is about
CASES = [
    (
        order(lines=[line(id=str(i)) for i in range(MAX_LINES + 1)]),
        f"lines: {MAX_LINES + 1} lines, at most {MAX_LINES} per order",
    ),
    (
        order(lines=[line(quantity=2**63)]),
        "lines[0].quantity: 9223372036854775808 is not between 1 and 100000",
    ),
    (order(lines=[line(quantity=100_001)]), "lines[0].quantity: 100001 is not between 1 and 100000"),
    (order(lines=[line(quantity=0)]), "lines[0].quantity: 0 is not between 1 and 100000"),
    (
        order(lines=[line(unit_price="9" * 50)]),
        f"lines[0].unit_price: '{'9' * 50}' is over the largest amount 10000000000",
    ),
    (
        order(lines=[line(unit_price=1e308)]),
        "lines[0].unit_price: 1E+308 is over the largest amount 10000000000",
    ),
    (order(shipping="-1.00"), "shipping: '-1.00' is negative"),
    (order(id="X" * 10_240), "id: is 10240 characters long, at most 120 are allowed"),
    (
        order(lines=[line(sku_id="S" * 121)]),
        "lines[0].sku_id: is 121 characters long, at most 120 are allowed",
    ),
    (order(lines=[line(title="T" * 301)]), "lines[0].title: is 301 characters long, at most 300 are allowed"),
    (order(buyer_note="n" * 2001), "buyer_note: is 2001 characters long, at most 2000 are allowed"),
    (
        order(shipping_address={"street": "s" * 501}),
        "shipping_address.street: is 501 characters long, at most 500 are allowed",
    ),
    (order(buyer={"name": "Li\x00Lei"}), "buyer.name: contains the control character U+0000"),
    (order(seller_note="ok\x07"), "seller_note: contains the control character U+0007"),
    (order(extra=json.loads(deep(70))), "$: payload is nested deeper than 64 levels"),
]


def as_json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, default=str)


async def test_webhook_bounds_name_the_field_and_keep_the_payload(client, gql, tenant_a):
    gid, channel = await make_webhook_channel(gql, tenant_a)
    bodies = [(as_json(payload).encode(), error) for payload, error in CASES]
    bodies += [
        (deep(100_000).encode(), "$: payload is nested deeper than 64 levels"),
        (b'{"format": "oms.order.v1", "id": NaN}', "$: payload is not valid JSON: NaN is not a number"),
        (
            b'{"format": "oms.order.v1", "id": ' + b"7" * 5000 + b"}",
            "$: payload is not valid JSON: a number is too long",
        ),
    ]
    for body, error in bodies:
        answer = await post(client, gid, body, oms_headers(channel.webhook_secret, body))
        assert (answer.status_code, answer.json()["error"]) == (202, error), answer.text[:300]
        stored = await inbox_row(answer.json()["inboxId"])  # kept raw, failed with the same words
        assert (stored.status.value, stored.error, stored.body) == ("failed", error, body)


async def test_ingest_orders_bounds_name_the_field_per_order(gql, tenant_a):
    gid, _ = await make_webhook_channel(gql, tenant_a)
    # A payload nested past 64 levels never reaches this door: the /graphql body around it is refused
    # whole (tests/test_security_http.py), so that case goes alone and the others together.
    shallow = [(payload, error) for payload, error in CASES if "nested deeper" not in error]
    payloads = [json.loads(as_json(payload)) for payload, _ in shallow]
    data = await gql(INGEST, {"input": {"channelId": gid, "orders": payloads}}, token=tenant_a.token)
    assert data["ingestOrders"]["userErrors"] == []
    results = data["ingestOrders"]["results"]
    assert [(r["inboxStatus"], r["error"]) for r in results] == [("failed", error) for _, error in shallow]
    (deep_payload, _) = next(c for c in CASES if "nested deeper" in c[1])
    orders = [json.loads(as_json(deep_payload))]
    refused = await gql.raw(INGEST, {"input": {"channelId": gid, "orders": orders}}, token=tenant_a.token)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_csv_bounds_are_row_errors_naming_line_and_column(client, gql, tenant_a):
    gid, _ = await make_webhook_channel(gql, tenant_a, "pos")
    at = "2024-06-18T10:15:00+08:00"
    rows = [
        f"C-1,{at},CNY,S1,ok,1,1e308",
        f"C-2,{at},CNY,S1,ok,1,-5.00",
        f"C-3,{at},CNY,S1,ok,9223372036854775808,1.00",
        f"C-4,{at},CNY,S1,bad\x00title,1,1.00",
        f"{'O' * 121},{at},CNY,S1,ok,1,1.00",
        f"C-6,{at},CNY,{'S' * 121},ok,1,1.00",
    ]
    rows += [f"C-7,{at},CNY,S{i},ok,1,1.00" for i in range(MAX_LINES + 1)]
    columns = ["order_id", "placed_at", "currency", "sku_id", "title", "quantity", "unit_price"]
    text = "\n".join([",".join(columns), *rows]) + "\n"
    mapping = {name: name for name in columns}
    answer = await upload(client, gid, text.encode(), headers=bearer(tenant_a), mapping=mapping)
    report = answer.json()["data"]["importOrdersCsv"]
    assert report["userErrors"] == [] and report["orders"] == 0, report
    errors = [(e["line"], e["column"], e["message"]) for e in report["errors"]]
    assert errors == [
        (2, "unit_price", "'1e308' is over the largest amount 10000000000 (order C-1 skipped)"),
        (3, "unit_price", "'-5.00' is negative (order C-2 skipped)"),
        (4, "quantity", "9223372036854775808 is not between 1 and 100000 (order C-3 skipped)"),
        (5, "title", "contains the control character U+0000 (order C-4 skipped)"),
        (6, "order_id", f"is 121 characters long, at most 120 are allowed (order {'O' * 121} skipped)"),
        (7, "sku_id", "is 121 characters long, at most 120 are allowed (order C-6 skipped)"),
        (8, "lines", f"{MAX_LINES + 1} lines, at most {MAX_LINES} per order (order C-7 skipped)"),
    ]


async def test_fulfilment_callbacks_refuse_deep_bodies_and_control_characters(client, gql, tenant_a):
    """A connector's signed callback: a 100,000-deep body was an internal error (500), a NUL reached
    PostgreSQL; both are now the sender's mistake (422), naming what is wrong."""
    ref = await tenant_ref(tenant_a.slug)
    here = await warehouse(ref, "WH", None)
    secret = await connect(gql, tenant_a, ref, here, "https://wms.example.com/hook")
    url = f"/webhooks/fulfilment/{gid('Location', ref, here)}"
    fo = gid("FulfillmentOrder", ref, 1)
    for body, error in (
        (deep(100_000).encode(), "the body is nested deeper than 64 levels"),
        (
            json.dumps(
                {"event": "shipped", "fulfillment_order_id": fo, "tracking_number": "SF\x00"}
            ).encode(),
            "tracking_number: contains the control character U+0000",
        ),
        (
            json.dumps(
                {"event": "shipped", "fulfillment_order_id": fo, "parcels": [{"no": "\x00"}]}
            ).encode(),
            "parcels: contains the control character U+0000",
        ),
    ):
        answer = await client.post(url, content=body, headers=sign(secret, body))
        assert (answer.status_code, answer.json()["error"]) == (422, error), answer.text[:300]
        assert (await inbox_row(answer.json()["inboxId"])).status.value == "failed"  # kept, authentic
