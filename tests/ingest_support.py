"""Orders ingested through ``app.orders.ingest`` directly (no door): normalised web orders, a presale
product, and reads of the rows an ingest wrote (order, holds, events, reserved units, routing jobs).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from app.channels.adapters import get_adapter
from app.channels.normalized import NormalizedOrder
from app.db import TenantRef, control_session, tenant_session
from app.inventory.models import NetworkStock
from app.orders.ingest import IngestResult, ingest
from app.orders.models import Order, OrderEvent, OrderHold
from app.outbox import OutboxMessage
from tests.factories import make_sellable

PLACED = "2026-11-01T10:00:00+08:00"


# --- helpers (imported by the other order test modules) ------------------------------------------------


def web_order(
    external_id: str,
    lines: list[dict],
    *,
    status: str = "paid",
    updated_at: str | None = None,
    phone: str = "13501234567",
    buyer_id: str | None = None,
    street: str | None = None,
    address: dict | None = None,
    platform: str = "web",
) -> NormalizedOrder:
    """A generic-format order (``oms.order.v1``) parsed by the real adapter. The street defaults to
    one per order, so tests do not trip the duplicate and scalper rules unless they mean to."""
    payload = {
        "format": "oms.order.v1",
        "id": external_id,
        "status": status,
        "placed_at": PLACED,
        "updated_at": updated_at or PLACED,
        "currency": "CNY",
        "buyer": {"id": buyer_id or f"u-{external_id}", "name": "赵雪", "phone": phone},
        "shipping_address": address
        or {
            "name": "赵雪",
            "phone": phone,
            "country": "CN",
            "province": "四川省",
            "city": "成都市",
            "district": "武侯区",
            "street": street or f"天府大道北段 1700 号 {external_id} 室",
        },
        "lines": [
            {"id": str(i + 1), "unit_price": "100.00", "quantity": 1, **line} for i, line in enumerate(lines)
        ],
    }
    if status != "pending_payment":
        payload["paid_at"] = PLACED
    return get_adapter(platform).parse_order(payload)


def line_of(sellable, quantity: int = 1, **extra) -> dict:
    return {
        "item_id": sellable.listing_item_id,
        "sku_id": sellable.listing_sku_id,
        "quantity": quantity,
        **extra,
    }


async def ingest_one(ref: TenantRef, channel, order: NormalizedOrder, **kw) -> IngestResult:
    async with tenant_session(ref) as session:
        return await ingest(session, channel, order, **kw)


async def order_row(ref: TenantRef, order_id: int) -> Order:
    async with tenant_session(ref) as session:
        return await session.get(Order, order_id)


async def reserved(ref: TenantRef, material_id: int) -> int:
    async with tenant_session(ref) as session:
        return await session.scalar(
            select(NetworkStock.reserved).where(NetworkStock.material_id == material_id)
        )


async def holds_of(ref: TenantRef, order_id: int, *, active: bool = True) -> list[OrderHold]:
    async with tenant_session(ref) as session:
        query = select(OrderHold).where(OrderHold.order_id == order_id)
        if active:
            query = query.where(OrderHold.released_at.is_(None))
        return list((await session.scalars(query.order_by(OrderHold.id))).all())


async def events_of(ref: TenantRef, order_id: int) -> list[OrderEvent]:
    async with tenant_session(ref) as session:
        query = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        return list((await session.scalars(query)).all())


async def make_presale(ref: TenantRef, channel_id: int):
    """A presale product without stock (factories' presale=True passes the date as a string, which the
    catalog refuses, so the flag is set through the catalog service afterwards)."""
    from app.catalog import service as catalog

    sellable = await make_sellable(ref, channel_id, stock=0)
    async with tenant_session(ref) as session:
        await catalog.update_product(
            session, sellable.product_id, {"presale": True, "expected_ship_date": date(2030, 1, 1)}
        )
    return sellable


async def route_jobs(tenant_id: int, order_id: int) -> int:
    async with control_session() as session:
        return await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.job == "route_order",
                OutboxMessage.tenant_id == tenant_id,
                OutboxMessage.kwargs["order_id"].as_integer() == order_id,
            )
        )
