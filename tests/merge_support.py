"""Helpers for merge and split-approval tests: a shop with two channels selling the same products,
stock per location and SKU, and orders of one buyer (same phone, same address) through the channel
door with chosen lines and placing time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.catalog import listings
from app.db import TenantRef, get_db, tenant_session
from app.fulfillment.models import FulfillmentStatus
from app.inventory import service as inventory
from app.orders import doors
from app.orders.models import OrderMerge
from tests.factories import make_channel, make_sellable
from tests.routing_support import (
    CHENGDU,
    ERRORS,
    FIXTURE,
    SHANGHAI,
    drain,
    fulfillment_orders,
    warehouse,
)

SKUS = {"scarf": ("SPU-1001", "SKU-1001-RED-M"), "gloves": ("", "SKU-2002"), "bag": ("", "GIFT-BAG")}
T0 = datetime.fromisoformat("2024-06-18T10:15:00+08:00")
PHONE = "13512345678"
STREET = "天府大道北段 1700 号 环球中心 W6 区 2208"
LIVE = (FulfillmentStatus.pending, FulfillmentStatus.assigned)

UPDATE_POLICY = f"""mutation($input: RoutingPolicyInput!) {{ updateRoutingPolicy(input: $input) {{
  policy {{ maxShipments mergeWindowMinutes releaseDelayMinutes }} {ERRORS} }} }}"""
UNMERGE = f"""mutation($input: UnmergeOrderInput!) {{ unmergeOrder(input: $input) {{
  order {{ id number merge {{ id }} }} {ERRORS} }} }}"""
ORDER_MERGE = """query($id: ID!) { node(id: $id) { ... on Order { number
  merge { id createdBy orders { id number } } events { edges { node { kind message } } } } } }"""


@dataclass
class TwoChannelShop:
    ref: TenantRef
    channels: tuple[int, int]
    materials: dict[str, int]  # material id by short name (scarf, gloves, bag)


async def two_channel_shop(ref: TenantRef, stock: dict[int, dict[str, int]]) -> TwoChannelShop:
    """``stock``: location id -> {short name: units}. Both channels list every product."""
    web = await make_channel(ref, "web")
    mini = await make_channel(ref, "web")
    materials = {}
    for name, (item, sku) in SKUS.items():
        s = await make_sellable(ref, web.id, stock=0, item_id=item or f"i-{sku}", sku_id=sku)
        materials[name] = s.material_id
        async with tenant_session(ref) as session:
            await listings.create_listing(
                session,
                channel_id=mini.id,
                product_id=s.product_id,
                external_item_id=item or f"i-{sku}",
                external_sku_id=sku,
            )
            for location_id, units in stock.items():
                if units.get(name):
                    await inventory.receive(
                        session, location_id, s.material_id, units[name], reason="test stock"
                    )
    return TwoChannelShop(ref, (web.id, mini.id), materials)


def body(
    external_id: str,
    items: dict[str, int],
    *,
    minutes: float = 0,
    phone: str = PHONE,
    street: str = STREET,
) -> bytes:
    """The generic fixture order with only ``items`` (short name -> quantity), placed ``minutes`` after
    T0, by the buyer with ``phone`` to ``street``."""
    payload = json.loads(FIXTURE.read_text())
    payload["id"] = external_id
    placed = (T0 + timedelta(minutes=minutes)).isoformat()
    payload.update(placed_at=placed, paid_at=placed, updated_at=placed)
    payload["buyer"] = {**payload["buyer"], "id": f"buyer-{external_id}", "phone": phone}
    payload["shipping_address"] = {**payload["shipping_address"], "phone": phone, "street": street}
    skus = {sku: name for name, (_, sku) in SKUS.items()}
    lines = [
        dict(line, quantity=items[skus[line["sku_id"]]])
        for line in payload["lines"]
        if skus[line["sku_id"]] in items
    ]
    for line in lines:
        line.pop("is_gift", None)
    payload["lines"] = lines
    total = (
        sum(Decimal(x["unit_price"]) * x["quantity"] - Decimal(x.get("discount", "0")) for x in lines)
        - Decimal(payload["order_discount"])
        + Decimal(payload["shipping"])
    )
    payload["total"] = str(total)
    return json.dumps(payload, ensure_ascii=False).encode()


async def order_in(shop: TwoChannelShop, channel: int, raw: bytes) -> int:
    """Through channel ``channel`` (0 or 1) of the shop's door; the order must come out reserved."""
    result = await doors.receive_channel_payload(
        get_db(), doors.ChannelRef(shop.ref, shop.channels[channel]), raw
    )
    assert result.ok and result.order_status == "reserved", result
    return result.order_id


async def merges(ref: TenantRef) -> list[OrderMerge]:
    async with tenant_session(ref) as session:
        return list((await session.scalars(select(OrderMerge).order_by(OrderMerge.id))).all())


async def set_policy(gql, tenant, **values) -> dict:
    data = await gql(UPDATE_POLICY, {"input": values}, api_key=tenant.api_key)
    payload = data["updateRoutingPolicy"]
    assert payload["userErrors"] == [], payload
    return payload["policy"]


async def merge_shop(gql, tenant, ref, *, delay: int = 10):
    """Chengdu (nearest) holds scarves only; Shanghai holds scarves and gloves. Alone, a scarf order
    ships from Chengdu; with a gloves order of the same buyer, Shanghai ships both in one parcel."""
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI)
    shop = await two_channel_shop(ref, {chengdu: {"scarf": 5}, shanghai: {"scarf": 5, "gloves": 5}})
    policy = await set_policy(gql, tenant, mergeWindowMinutes=30, releaseDelayMinutes=delay)
    assert (policy["mergeWindowMinutes"], policy["releaseDelayMinutes"]) == (30, delay)
    return chengdu, shanghai, shop


async def live(ref, order_id):
    """The order's fulfilment orders not cancelled or rejected."""
    return [f for f in await fulfillment_orders(ref, order_id) if f.status in LIVE]


async def merge_two(gql, tenant, ref, run_jobs, tag: str):
    """A scarf order (routed from Chengdu, release delayed), then a gloves order of the same buyer 20
    minutes later on the other channel: merged, both from Shanghai."""
    chengdu, shanghai, shop = await merge_shop(gql, tenant, ref)
    a = await order_in(shop, 0, body(f"{tag}-A", {"scarf": 1}))
    await drain(run_jobs)
    [first] = await fulfillment_orders(ref, a)
    assert first.location_id == chengdu and first.status is FulfillmentStatus.pending  # release delayed
    b = await order_in(shop, 1, body(f"{tag}-B", {"gloves": 2}, minutes=20))
    await drain(run_jobs)
    return chengdu, shanghai, shop, a, b, first
