"""Orders the platform ships from its own warehouses (Amazon AFN) through the real webhook door: stored
and shown as shipped by the platform, without touching the brand's stock or routing; seller-fulfilled
(MFN) orders are reserved and routed as before. A single webhook takes the set-based path when it can,
so these tests hold for both ingest paths."""

from __future__ import annotations

import json
import secrets

from sqlalchemy import func, select
from strawberry.relay import GlobalID

from app.db import TenantRef, tenant_session
from app.inventory.models import NetworkStock, Reservation
from app.orders.models import Order, OrderEvent, OrderStatus
from tests.door_support import fixture, make_webhook_channel, oms_headers, post
from tests.factories import Sellable, make_sellable, tenant_ref
from tests.ingest_support import route_jobs

# The items of tests/fixtures/channels/amazon/order.json: (ASIN, SellerSKU, quantity ordered).
ITEMS = (("B0C1XK8Z2Q", "TEA-OOLONG-250", 2), ("B0C1XK9Q7W", "CUP-CELADON-2", 1))


def amazon_order(fulfillment_channel: str, *, status: str = "Unshipped", updated: str | None = None) -> bytes:
    """The Amazon sample with a fresh order id, buyer and street (so no audit rule holds it)."""
    envelope = json.loads(fixture("amazon", "order.json"))
    order = envelope["order"]["payload"]
    order_id = f"114-{secrets.randbelow(10**7):07d}-{secrets.randbelow(10**7):07d}"
    order.update(AmazonOrderId=order_id, FulfillmentChannel=fulfillment_channel, OrderStatus=status)
    if updated:
        order["LastUpdateDate"] = updated
    order["BuyerInfo"]["BuyerEmail"] = f"{secrets.token_hex(6)}@marketplace.amazon.com"
    order["ShippingAddress"]["AddressLine1"] = f"{secrets.randbelow(9000) + 100} Harbor Blvd"
    envelope["items"]["payload"]["AmazonOrderId"] = order_id
    return json.dumps(envelope).encode()


async def amazon_shop(gql, tenant) -> tuple[str, object, list[Sellable]]:
    """An Amazon channel (through GraphQL) whose two sample items are listed with 10 units each."""
    gid, channel = await make_webhook_channel(gql, tenant, "amazon")
    ref = await tenant_ref(tenant.slug)
    sellables = [
        await make_sellable(ref, channel.id, stock=10, item_id=asin, sku_id=sku) for asin, sku, _ in ITEMS
    ]
    return gid, channel, sellables


async def deliver(client, gid: str, channel, body: bytes) -> dict:
    response = await post(client, gid, body, oms_headers(channel.webhook_secret, body))
    assert response.status_code == 200, response.text
    return response.json()


async def stock_state(ref: TenantRef, order_id: int, sellables: list[Sellable]) -> tuple[int, list[int]]:
    """(reservation rows of the order, network units reserved per sample item)."""
    async with tenant_session(ref) as session:
        rows = await session.scalar(
            select(func.count()).select_from(Reservation).where(Reservation.reference == f"order:{order_id}")
        )
        reserved = [
            await session.scalar(
                select(NetworkStock.reserved).where(NetworkStock.material_id == s.material_id)
            )
            for s in sellables
        ]
    return rows, reserved


async def order_and_events(ref: TenantRef, order_id: int) -> tuple[Order, list[OrderEvent]]:
    async with tenant_session(ref) as session:
        order = await session.get(Order, order_id)
        events = (
            await session.scalars(
                select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
            )
        ).all()
    return order, list(events)


def order_id_of(answer: dict) -> int:
    return int(GlobalID.from_id(answer["order"]["id"]).node_id.split(".")[1])


async def test_an_amazon_fulfilled_order_is_stored_as_shipped_without_stock_or_routing(client, gql, tenant_a):
    gid, channel, sellables = await amazon_shop(gql, tenant_a)
    ref = await tenant_ref(tenant_a.slug)
    answer = await deliver(client, gid, channel, amazon_order("AFN"))
    assert (answer["outcome"], answer["order"]["status"]) == ("created", "shipped"), answer
    order_id = order_id_of(answer)

    order, events = await order_and_events(ref, order_id)
    assert order.status is OrderStatus.shipped
    assert order.extra["fulfillment_channel"] == "AFN"
    assert await stock_state(ref, order_id, sellables) == (0, [0, 0])  # nothing reserved, stock untouched
    assert await route_jobs(ref.id, order_id) == 0
    why = [e for e in events if e.to_status == "shipped"]
    assert len(why) == 1 and "fulfilled by" in why[0].message and "no stock reserved" in why[0].message
    assert why[0].details == {"fulfilled_by_platform": True}
    assert not [e for e in events if e.kind == "hold"]


async def test_a_seller_fulfilled_amazon_order_is_reserved_and_routed(client, gql, tenant_a):
    gid, channel, sellables = await amazon_shop(gql, tenant_a)
    ref = await tenant_ref(tenant_a.slug)
    answer = await deliver(client, gid, channel, amazon_order("MFN"))
    assert answer["outcome"] == "created", answer
    order_id = order_id_of(answer)

    order, _ = await order_and_events(ref, order_id)
    assert order.status is OrderStatus.reserved
    rows, reserved = await stock_state(ref, order_id, sellables)
    assert rows >= 1 and reserved == [quantity for _, _, quantity in ITEMS]
    assert await route_jobs(ref.id, order_id) == 1


async def test_an_amazon_fulfilled_order_paid_later_still_takes_no_stock(client, gql, tenant_a):
    """Pending first (stored, waiting for payment), then Unshipped: the update path decides the same."""
    gid, channel, sellables = await amazon_shop(gql, tenant_a)
    ref = await tenant_ref(tenant_a.slug)
    pending = amazon_order("AFN", status="Pending")
    answer = await deliver(client, gid, channel, pending)
    order_id = order_id_of(answer)
    assert answer["outcome"] == "created" and answer["order"]["status"] == "received", answer

    paid = json.loads(pending)
    paid["order"]["payload"].update(OrderStatus="Unshipped", LastUpdateDate="2024-06-18T15:00:00Z")
    answer = await deliver(client, gid, channel, json.dumps(paid).encode())
    assert answer["outcome"] == "updated", answer

    order, _ = await order_and_events(ref, order_id)
    assert order.status is OrderStatus.shipped
    assert await stock_state(ref, order_id, sellables) == (0, [0, 0])
    assert await route_jobs(ref.id, order_id) == 0
