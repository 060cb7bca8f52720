"""The ``orderEvents`` subscription over the GraphQL websocket (graphql-transport-ws), in process.

httpx-ws runs the real ASGI app in the test's event loop, so the subscription polls the same database
the HTTP mutations write to.
"""

from __future__ import annotations

import asyncio

from app.api.orders.subscriptions import GAP_WAIT_S, EventCursor
from tests.orders_api_support import api_key, close_code, ingest_one, make_shop, note, subscriber


async def test_streams_new_events_of_the_tenant(app, gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    first = await ingest_one(gql, tenant_a, shop)
    second = await ingest_one(gql, tenant_a, shop)
    async with subscriber(app, {"authorization": f"Bearer {tenant_a.token}"}) as (sub, ack):
        assert ack["type"] == "connection_ack"
        await sub.subscribe()
        await asyncio.sleep(0.2)  # the subscription has taken its starting point
        await note(gql, tenant_a, first["id"], "one")
        await note(gql, tenant_a, second["id"], "two")
        got = [await sub.event(), await sub.event()]
        assert [(e["kind"], e["message"], e["actor"]) for e in got] == [
            ("note", "one", tenant_a.email),
            ("note", "two", tenant_a.email),
        ]
        assert [e["order"]["id"] for e in got] == [first["id"], second["id"]]

        # A new order streams its whole arrival (received, then its status changes).
        third = await ingest_one(gql, tenant_a, shop)
        arrival = await sub.event()
        assert arrival["kind"] == "received" and arrival["order"]["number"] == third["number"]


async def test_one_order_and_api_key_auth(app, gql, tenant_a):
    shop = await make_shop(gql, tenant_a)
    watched = await ingest_one(gql, tenant_a, shop)
    other = await ingest_one(gql, tenant_a, shop)
    async with subscriber(app, {"apiKey": tenant_a.api_key}) as (sub, ack):
        assert ack["type"] == "connection_ack"
        await sub.subscribe(variables={"orderId": watched["id"]})
        await asyncio.sleep(0.2)
        await note(gql, tenant_a, other["id"], "not this one")
        await note(gql, tenant_a, watched["id"], "this one")
        event = await sub.event()
        assert (event["message"], event["order"]["id"]) == ("this one", watched["id"])
        # The order as it is now, not as the connection first saw it.
        cancel = "mutation($id: ID!) { cancelOrder(input: {id: $id}) { userErrors { code } } }"
        assert (await gql(cancel, {"id": watched["id"]}, token=tenant_a.token))["cancelOrder"][
            "userErrors"
        ] == []
        status = await sub.event()
        assert status["toStatus"] == "cancelled"
        await sub.nothing_for(1.2)


async def test_authentication_and_scopes(app, gql, tenant_a):
    assert await close_code(app, {"authorization": "Bearer not-a-token"}) == 4403
    assert await close_code(app, {"apiKey": "oms_nope"}) == 4403
    assert await close_code(app, {"authorization": f"Bearer {tenant_a.token}"}) is None

    assert await close_code(app, {}) == 4403  # no credential: nothing to subscribe to (test_websocket_limits)

    catalog_only = await api_key(gql, tenant_a, ["catalog:read"])
    async with subscriber(app, {"apiKey": catalog_only}) as (sub, _ack):
        await sub.subscribe()
        message = await sub.message()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"

    async with subscriber(app, {"authorization": f"Bearer {tenant_a.token}"}) as (sub, _ack):
        await sub.subscribe(variables={"orderId": "garbage"})
        message = await sub.message()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"


def test_event_cursor_waits_for_gaps_then_moves_on():
    cursor = EventCursor(10)
    assert [i for i in (11, 13) if cursor.is_new(i)] == [11, 13]
    cursor.advance(now=100.0)
    assert cursor.floor == 11  # 12 may still commit
    assert not cursor.is_new(13) and not cursor.is_new(11)
    assert cursor.is_new(12)  # the slow transaction committed: delivered late, not lost
    cursor.advance(now=101.0)
    assert (cursor.floor, cursor.seen) == (13, set())

    assert cursor.is_new(15)
    cursor.advance(now=200.0)
    assert cursor.floor == 13
    cursor.advance(now=200.0 + GAP_WAIT_S)  # 14 rolled back: given up after GAP_WAIT_S
    assert (cursor.floor, cursor.seen) == (15, set())
    assert not cursor.is_new(14)
