"""Invariant 1 for orders: tenant B reads, changes, replays and subscribes to nothing of tenant A's.

Every order query, mutation and the subscription is tried by B with A's ids (and with ids forged to
carry B's tenant around A's row numbers): NOT_FOUND, null or empty, and A's data unchanged.
"""

from __future__ import annotations

import asyncio

import pytest
from strawberry.relay import GlobalID, to_base64

from tests.catalog_ops import errors
from tests.orders_api_support import (
    AUDIT_RULES,
    BLACKLIST,
    BY_NUMBER,
    CANCEL,
    EDIT_ADDRESS,
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
    SUBSCRIBE,
    UPDATE_CHANNEL,
    ingest,
    ingest_one,
    make_shop,
    note,
    order_json,
    subscriber,
)

NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
ROTATE = """mutation($input: RotateChannelWebhookSecretInput!) {
  rotateChannelWebhookSecret(input: $input) { channel { id webhookSecret } userErrors { field code } } }"""


def forged(gid: str, tenant) -> str:
    """A's global id re-wrapped with B's tenant id: names B's row of the same number (if any)."""
    parsed = GlobalID.from_id(gid)
    row = parsed.node_id.split(".")[1]
    return to_base64(parsed.type_name, f"{GlobalID.from_id(tenant.tenant_id).node_id}.{row}")


@pytest.fixture
async def a_world(gql, tenant_a):
    """Tenant A: a channel, an order (with a customer and a timeline) and a failed inbox message."""
    shop = await make_shop(gql, tenant_a)
    order = await ingest_one(gql, tenant_a, shop, "A-1", name="Alice A", city="Suzhou")
    bad = order_json(shop, "A-BAD")
    bad["lines"][0]["quantity"] = 0
    [failed] = await ingest(gql, tenant_a, shop, [bad])
    assert failed["inboxStatus"] == "failed"
    full = (await gql(ORDER, {"id": order["id"]}, token=tenant_a.token))["order"]
    return {
        "shop": shop,
        "order": full,
        "event": full["events"]["edges"][0]["node"]["id"],
        "customer": full["customer"]["id"],
        "inbox": failed["inboxMessageId"],
    }


async def _a_unchanged(gql, tenant_a, world) -> None:
    now = (await gql(ORDER, {"id": world["order"]["id"]}, token=tenant_a.token))["order"]
    before = world["order"]
    for key in ("status", "version", "holds", "shippingAddress", "events", "fingerprint"):
        assert now[key] == before[key], key


@pytest.mark.parametrize("credential", ["token", "api_key"])
async def test_b_reads_nothing_of_a(gql, tenant_a, tenant_b, a_world, credential):
    auth = {credential: getattr(tenant_b, credential)}
    world = a_world
    b_shop = await make_shop(gql, tenant_b)
    b_order = await ingest_one(gql, tenant_b, b_shop, "B-1")

    a_ids = [world["order"]["id"], world["event"], world["customer"], world["inbox"]]
    assert (await gql(NODES, {"ids": a_ids}, **auth))["nodes"] == [None] * len(a_ids)
    assert (await gql(ORDER, {"id": world["order"]["id"]}, **auth))["order"] is None
    # A's row numbers under B's tenant name B's own rows, never A's.
    own = (await gql(ORDER, {"id": forged(world["order"]["id"], tenant_b)}, **auth))["order"]
    assert own is None or own["id"] == b_order["id"]

    listed = await gql(ORDERS, {"first": 100}, **auth)
    assert [e["node"]["id"] for e in listed["orders"]["edges"]] == [b_order["id"]]
    for flt in (
        {"channelId": [world["shop"].channel_id]},
        {"customerId": world["customer"]},
        {"externalId": "A-1"},
        {"search": "alice"},
        {"search": "suzhou"},
    ):
        found = await gql(ORDERS, {"filter": flt}, **auth)
        assert found["orders"]["edges"] == [], flt

    # Order numbers restart per tenant: B asking for A's number gets B's own order or nothing.
    by_number = (await gql(BY_NUMBER, {"n": world["order"]["number"]}, **auth))["orderByNumber"]
    assert by_number is None or by_number["id"] == b_order["id"]

    inbox = await gql(
        INBOX, {"status": ["received", "processed", "failed", "rejected"], "first": 100}, **auth
    )
    ids = {e["node"]["id"] for e in inbox["inboxMessages"]["edges"]}
    assert world["inbox"] not in ids
    assert not any("A-BAD" in e["node"]["bodyPreview"] for e in inbox["inboxMessages"]["edges"])


async def test_b_changes_nothing_of_a(gql, tenant_a, tenant_b, a_world):
    world, auth = a_world, {"token": tenant_b.token}
    order_id = world["order"]["id"]
    for gid in (order_id, forged(order_id, tenant_b)):  # B has no orders: its forged id names nothing
        for mutation, name, extra in (
            (HOLD, "holdOrder", {"reason": "mine now"}),
            (RELEASE, "releaseOrderHolds", {}),
            (CANCEL, "cancelOrder", {"reason": "x"}),
            (EDIT_ADDRESS, "editOrderAddress", {"address": {"city": "Elsewhere"}}),
            (NOTE, "addOrderNote", {"text": "hello from B"}),
        ):
            data = await gql(mutation, {"input": {"id": gid, **extra}}, **auth)
            assert errors(data[name]) == [("NOT_FOUND", ["id"])], name
            assert data[name]["order"] is None
    await _a_unchanged(gql, tenant_a, world)

    channel = world["shop"].channel_id
    ingest_data = await gql(INGEST, {"input": {"channelId": channel, "orders": [{"x": 1}]}}, **auth)
    assert errors(ingest_data["ingestOrders"]) == [("NOT_FOUND", ["channelId"])]
    forged_channel = forged(channel, tenant_b)
    ingest_data = await gql(INGEST, {"input": {"channelId": forged_channel, "orders": [{"x": 1}]}}, **auth)
    assert errors(ingest_data["ingestOrders"]) == [("NOT_FOUND", ["channelId"])]
    csv = await gql(IMPORT_CSV, {"input": {"channelId": channel, "csv": "order_id\nX\n"}}, **auth)
    assert errors(csv["importOrdersCsv"]) == [("NOT_FOUND", ["channelId"])]
    rotate = await gql(ROTATE, {"input": {"id": channel}}, **auth)
    assert errors(rotate["rotateChannelWebhookSecret"]) == [("NOT_FOUND", ["id"])]
    update = await gql(UPDATE_CHANNEL, {"input": {"id": channel, "timezone": "UTC"}}, **auth)
    assert errors(update["updateChannel"]) == [("NOT_FOUND", ["id"])]

    replay = await gql(REPLAY, {"input": {"id": world["inbox"]}}, **auth)
    assert errors(replay["replayInboxMessage"]) == [("NOT_FOUND", ["id"])]
    a_inbox = await gql(INBOX, {}, token=tenant_a.token)
    message = next(e["node"] for e in a_inbox["inboxMessages"]["edges"] if e["node"]["id"] == world["inbox"])
    assert (message["status"], message["attempts"]) == ("failed", 1)  # never replayed by B

    # A's inbox count, channel secret and rules are as A left them.
    node = "query($id: ID!) { node(id: $id) { ... on Channel { webhookSecret timezone } } }"
    seen = (await gql(node, {"id": channel}, token=tenant_a.token))["node"]
    assert seen["timezone"] == "Asia/Shanghai" and seen["webhookSecret"]


async def test_audit_settings_and_blacklists_are_per_tenant(gql, tenant_a, tenant_b, a_world):
    world = a_world
    before = (await gql(AUDIT_RULES, token=tenant_a.token))["auditRules"]
    off = await gql(SET_RULE, {"input": {"code": "blacklist", "enabled": False}}, token=tenant_b.token)
    assert off["setAuditRule"]["userErrors"] == []
    assert (await gql(AUDIT_RULES, token=tenant_a.token))["auditRules"] == before

    # B blacklists A's buyer's phone and address: A's next order from that phone is not held by it.
    phone = "13700001111"
    for kind, value in (("phone", phone), ("address", "Suzhou")):
        added = await gql(BLACKLIST, {"input": {"kind": kind, "value": value}}, token=tenant_b.token)
        assert added["addToBlacklist"]["userErrors"] == []
    order = await ingest_one(gql, tenant_a, world["shop"], "A-2", phone=phone)
    full = (await gql(ORDER, {"id": order["id"]}, token=tenant_a.token))["order"]
    assert "blacklist" not in [h["code"] for h in full["holds"]]


async def test_b_subscribes_to_nothing_of_a(app, gql, tenant_a, tenant_b, a_world):
    world = a_world
    b_shop = await make_shop(gql, tenant_b)
    b_order = await ingest_one(gql, tenant_b, b_shop, "B-1")
    async with subscriber(app, {"authorization": f"Bearer {tenant_b.token}"}) as (sub, ack):
        assert ack["type"] == "connection_ack"
        await sub.subscribe(variables={"orderId": world["order"]["id"]})
        message = await sub.message()
        errors_ = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors_[0]["extensions"]["code"] == "NOT_FOUND"

    async with subscriber(app, {"authorization": f"Bearer {tenant_b.token}"}) as (sub, ack):
        await sub.subscribe(SUBSCRIBE)
        await asyncio.sleep(0.2)
        await note(gql, tenant_a, world["order"]["id"], "A's secret")
        await ingest_one(gql, tenant_a, world["shop"], "A-3")
        await sub.nothing_for(1.5)
        await note(gql, tenant_b, b_order["id"], "B's own")
        event = await sub.event()
        assert (event["message"], event["order"]["id"]) == ("B's own", b_order["id"])
