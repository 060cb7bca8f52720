"""The GraphQL websocket (graphql-transport-ws) under abuse: no or bad credentials, subscribing before
connection_init, never sending it, too many subscriptions on one connection, over-deep and oversized
messages, the legacy protocol. Each ends in a defined close code or a coded error, never in data."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from app.api.view import CONNECTION_INIT_TIMEOUT, MAX_OPERATIONS_PER_CONNECTION, MAX_WS_MESSAGE_BYTES
from tests.conftest import CREATE_KEY
from tests.orders_api_support import SUBSCRIBE, close_code
from tests.server_support import oms_serve

REVOKE = "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }"


@asynccontextmanager
async def raw_ws(app, subprotocol: str = "graphql-transport-ws") -> AsyncIterator:
    """A websocket to the in-process app; nothing sent yet."""
    async with (
        ASGIWebSocketTransport(app=app) as transport,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        aconnect_ws("/graphql", http, subprotocols=[subprotocol]) as ws,
    ):
        yield ws


async def closed_with(ws, wait_s: float = 5.0) -> int:
    """The close code the server ends ``ws`` with; fails if a message arrives instead."""
    with pytest.raises(WebSocketDisconnect) as closed:
        message = await ws.receive_json(timeout=wait_s)
        pytest.fail(f"expected the server to close the socket, got {message}")
    return closed.value.code


async def init(ws, params: dict) -> dict:
    await ws.send_json({"type": "connection_init", "payload": params})
    return await ws.receive_json(timeout=5)


async def subscribe(ws, sid: str) -> None:
    await ws.send_json({"id": sid, "type": "subscribe", "payload": {"query": SUBSCRIBE}})


async def answer_before_pong(ws) -> dict | None:
    """What the server answered to the messages sent so far: a ping's pong comes after them (messages are
    handled in order), so anything before it is their answer; None when there was none."""
    await ws.send_json({"type": "ping"})
    message = await ws.receive_json(timeout=5)
    if message["type"] == "pong":
        return None
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    return message


async def test_no_credentials_is_refused_at_connection_init(app):
    for params in ({}, {"authorization": ""}, {"authorization": 42}, {"apiKey": ["oms_x"]}):
        assert await close_code(app, params) == 4403, params


async def test_a_revoked_api_key_is_refused(app, gql, tenant_a):
    created = await gql(
        CREATE_KEY, {"input": {"name": "soon gone", "scopes": ["orders:read"]}}, token=tenant_a.token
    )
    key = created["createApiKey"]
    assert await close_code(app, {"apiKey": key["key"]}) is None
    revoked = await gql(REVOKE, {"id": key["apiKey"]["id"]}, token=tenant_a.token)
    assert revoked["revokeApiKey"]["userErrors"] == []
    assert await close_code(app, {"apiKey": key["key"]}) == 4403
    assert await close_code(app, {"authorization": f"Bearer {key['key']}"}) == 4403


async def test_subscribing_before_connection_init_is_unauthorized(app):
    async with raw_ws(app) as ws:
        await subscribe(ws, "early")
        assert await closed_with(ws) == 4401


async def test_a_silent_connection_is_closed_after_the_init_timeout(app):
    timeout = CONNECTION_INIT_TIMEOUT.total_seconds()
    assert timeout <= 10
    async with raw_ws(app) as ws:
        started = time.monotonic()
        assert await closed_with(ws, wait_s=timeout + 5) == 4408
        assert time.monotonic() - started >= timeout - 0.5


async def test_the_legacy_graphql_ws_protocol_is_refused(app, tenant_a):
    async with raw_ws(app, subprotocol="graphql-ws") as ws:
        assert await closed_with(ws) == 4406


async def test_subscriptions_per_connection_are_capped_and_the_connection_stays_usable(app, tenant_a):
    async with raw_ws(app) as ws:
        assert (await init(ws, {"authorization": f"Bearer {tenant_a.token}"}))["type"] == "connection_ack"
        for n in range(MAX_OPERATIONS_PER_CONNECTION):
            await subscribe(ws, f"s{n}")
        assert await answer_before_pong(ws) is None  # all of them running

        await subscribe(ws, "one too many")
        refused = await answer_before_pong(ws)
        assert refused is not None and refused["type"] == "error" and refused["id"] == "one too many"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        assert str(MAX_OPERATIONS_PER_CONNECTION) in refused["payload"][0]["message"]

        await ws.send_json({"id": "s0", "type": "complete"})  # room for one again
        await subscribe(ws, "in its place")
        assert await answer_before_pong(ws) is None


async def test_a_deeply_nested_message_closes_with_4400(app, tenant_a):
    async with raw_ws(app) as ws:
        assert (await init(ws, {"authorization": f"Bearer {tenant_a.token}"}))["type"] == "connection_ack"
        depth = 100_000
        await ws.send_text('{"type":"ping","payload":{"v":' + "[" * depth + "]" * depth + "}}")
        assert await closed_with(ws) == 4400


@pytest.fixture
def served(db):
    """``oms serve`` on a free port: the uvicorn settings the API really runs with."""
    with oms_serve() as (_, url):
        yield url


async def test_oms_serve_closes_a_websocket_on_an_oversized_message(served, tenant_a):
    pad = MAX_WS_MESSAGE_BYTES - 200
    async with (
        httpx.AsyncClient(base_url=served) as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        assert (await init(ws, {"authorization": f"Bearer {tenant_a.token}"}))["type"] == "connection_ack"
        await ws.send_json({"type": "ping", "payload": {"pad": "x" * pad}})  # just under: fine
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
        await ws.send_json({"type": "ping", "payload": {"pad": "x" * (MAX_WS_MESSAGE_BYTES + 1)}})
        assert await closed_with(ws) == 1009
