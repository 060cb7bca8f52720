"""The orders GraphQL API for tests: operations, a shop whose item is listed and stocked, ingest through
``ingestOrders``, limited API keys, and an ``orderEvents`` websocket subscriber.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from tests.catalog_ops import create_channel, row_id
from tests.conftest import CREATE_KEY
from tests.factories import Sellable, make_sellable, tenant_ref

ERR = "userErrors { field message code }"
RESULT = "index inboxStatus outcome status number error note inboxMessageId order { id number status }"
INGEST = f"""mutation($input: IngestOrdersInput!) {{
  ingestOrders(input: $input) {{ results {{ {RESULT} }} {ERR} }} }}"""
ORDER_FIELDS = """id number externalId status channelStatus businessModel fingerprint placedAt paidAt
  promisedShipBy requestedCarrier buyerNote sellerNote version
  channel { id code }
  customer { id name maskedPhone maskedEmail tags orderCount blacklisted }
  amounts { currency subtotal shipping discount tax total paid }
  buyer { name nick platformBuyerId }
  shippingAddress { name phone country province city district street postcode }
  invoice { title taxId type }
  lines { externalLineId title kind quantity unitPrice discount total isGift presale
          product { id code } materials { quantity material { id code } } }
  holds { code weight reason createdAt createdBy }
  events { edges { cursor node { id kind fromStatus toStatus actor message details createdAt } }
           pageInfo { hasNextPage endCursor } }"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
BY_NUMBER = "query($n: String!) { orderByNumber(number: $n) { id number } }"
ORDERS = """query($first: Int, $after: String, $filter: OrderFilter, $sort: OrderSort) {
  orders(first: $first, after: $after, filter: $filter, sort: $sort) {
    edges { cursor node { id number externalId status placedAt amounts { total } } }
    pageInfo { hasNextPage endCursor } } }"""
PAYLOAD = f"order {{ id status version holds {{ code reason createdBy }} }} {ERR}"
HOLD = f"mutation($input: HoldOrderInput!) {{ holdOrder(input: $input) {{ {PAYLOAD} }} }}"
RELEASE = f"mutation($input: ReleaseOrderHoldsInput!) {{ releaseOrderHolds(input: $input) {{ {PAYLOAD} }} }}"
CANCEL = f"mutation($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{ {PAYLOAD} }} }}"
EDIT_ADDRESS = f"""mutation($input: EditOrderAddressInput!) {{ editOrderAddress(input: $input) {{
  order {{ id fingerprint shippingAddress {{ name city street postcode }} }} {ERR} }} }}"""
NOTE = f"mutation($input: AddOrderNoteInput!) {{ addOrderNote(input: $input) {{ {PAYLOAD} }} }}"


AUDIT_RULES = "{ auditRules { code enabled weight params } }"
SET_RULE = f"""mutation($input: SetAuditRuleInput!) {{ setAuditRule(input: $input) {{
  rule {{ code enabled weight params }} {ERR} }} }}"""
BLACKLIST = f"""mutation($input: AddToBlacklistInput!) {{ addToBlacklist(input: $input) {{
  entry {{ kind reason }} {ERR} }} }}"""
INBOX = """query($status: [InboxStatus!], $first: Int, $after: String) {
  inboxMessages(status: $status, first: $first, after: $after) {
    edges { node { id source status error attempts receivedAt bodySize bodyPreview } }
    pageInfo { hasNextPage endCursor } } }"""
REPLAY = f"""mutation($input: ReplayInboxMessageInput!) {{ replayInboxMessage(input: $input) {{
  result {{ {RESULT} }} {ERR} }} }}"""
IMPORT_CSV = f"""mutation($input: ImportOrdersCsvInput!) {{ importOrdersCsv(input: $input) {{
  inboxStatus inboxMessageId orders created updated unchanged failed errors {{ line column message }}
  {ERR} }} }}"""
UPDATE_CHANNEL = f"""mutation($input: UpdateChannelInput!) {{ updateChannel(input: $input) {{
  channel {{ id active timezone currency defaultCarrier }} {ERR} }} }}"""


@dataclass
class Shop:
    """A tenant's web channel (generic JSON) with a listed, stocked product."""

    channel_id: str  # global id
    channel_row: int
    code: str
    item: Sellable


async def make_shop(gql, tenant, *, stock: int = 1000) -> Shop:
    code = f"WEB-{secrets.token_hex(3)}"
    channel = await create_channel(gql, tenant, code, "web")
    row = row_id(channel["id"])
    item = await make_sellable(await tenant_ref(tenant.slug), row, stock=stock, item_id=f"ITEM-{code}")
    return Shop(channel["id"], row, code, item)


def order_json(shop: Shop, external_id: str, **over) -> dict:
    """One generic (oms.order.v1) order of ``shop``'s product; keyword arguments override fields."""
    qty = over.pop("quantity", 1)
    price = over.pop("price", "100.00")
    name = over.pop("name", "Li Lei")
    phone = over.pop("phone", f"138{secrets.randbelow(10**8):08d}")  # a new buyer unless given
    city = over.pop("city", "Shanghai")
    street = over.pop("street", "1 Nanjing Road")
    body = {
        "format": "oms.order.v1",
        "id": external_id,
        "status": "paid",
        "placed_at": "2024-06-18T10:15:00+08:00",
        "paid_at": "2024-06-18T10:16:00+08:00",
        "currency": "CNY",
        "buyer": {"id": f"u-{name}", "name": name, "phone": phone, "nick": f"{name} nick"},
        "shipping_address": {
            "name": name,
            "phone": phone,
            "country": "CN",
            "province": "Shanghai",
            "city": city,
            "district": "Jing'an",
            "street": street,
            "postcode": "200040",
        },
        "lines": [
            {
                "id": "1",
                "item_id": shop.item.listing_item_id,
                "title": "Silk scarf",
                "quantity": qty,
                "unit_price": price,
            }
        ],
        "carrier": "SF",
        "buyer_note": "gift wrap please",
    }
    body.update(over)
    return body


async def ingest(gql, tenant, shop: Shop, orders: list[dict], **auth) -> list[dict]:
    auth = auth or {"token": tenant.token}
    data = await gql(INGEST, {"input": {"channelId": shop.channel_id, "orders": orders}}, **auth)
    assert data["ingestOrders"]["userErrors"] == [], data
    return data["ingestOrders"]["results"]


async def ingest_one(gql, tenant, shop: Shop, external_id: str | None = None, **over) -> dict:
    """Ingest one good order; returns its ``order { id number status }``."""
    external_id = external_id or f"EXT-{secrets.token_hex(4)}"
    [result] = await ingest(gql, tenant, shop, [order_json(shop, external_id, **over)])
    assert result["inboxStatus"] == "processed", result
    assert result["error"] is None, result
    return result["order"]


async def api_key(gql, tenant, scopes: list[str]) -> str:
    data = await gql(CREATE_KEY, {"input": {"name": "limited", "scopes": scopes}}, token=tenant.token)
    assert data["createApiKey"]["userErrors"] == []
    return data["createApiKey"]["key"]


SUBSCRIBE = """subscription($orderId: ID) { orderEvents(orderId: $orderId) {
  id kind actor message toStatus order { id number } } }"""


class Subscriber:
    """One graphql-transport-ws connection: init, subscribe, read ``next`` payloads."""

    def __init__(self, ws) -> None:
        self.ws = ws

    async def subscribe(self, query: str = SUBSCRIBE, variables: dict | None = None) -> str:
        sid = secrets.token_hex(4)
        await self.ws.send_json(
            {"id": sid, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        )
        return sid

    async def message(self, wait_s: float = 5.0) -> dict:
        return await self.ws.receive_json(timeout=wait_s)

    async def event(self, wait_s: float = 5.0) -> dict:
        message = await self.message(wait_s)
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]["orderEvents"]

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.ws.receive_json(timeout=seconds)


@asynccontextmanager
async def subscriber(app, params: dict | None) -> AsyncIterator[tuple[Subscriber, dict]]:
    """Connect, send connection_init with ``params``; yields the subscriber and the server's answer."""
    async with (
        ASGIWebSocketTransport(app=app) as transport,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": params or {}})
        answer = await ws.receive_json(timeout=5)
        yield Subscriber(ws), answer


async def note(gql, tenant, order_id: str, text: str) -> None:
    data = await gql(NOTE, {"input": {"id": order_id, "text": text}}, token=tenant.token)
    assert data["addOrderNote"]["userErrors"] == []


async def close_code(app, params: dict) -> int | None:
    """The code the server closes the connection with after connection_init (None: it acked)."""
    codes: list[int] = []
    try:
        async with subscriber(app, params):
            pass
    except* WebSocketDisconnect as group:
        codes = [exc.code for exc in _leaves(group)]
    return codes[0] if codes else None


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out
