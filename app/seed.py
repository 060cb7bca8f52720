"""Demo data for `oms dev` / `oms seed`: a demo tenant with a known login (dev only), filled with a
coffee brand's channels, locations, catalog, stock and orders, so the console has something to show.

Everything goes through the domain services, and orders through the real ingest door (inbox, adapter,
audit, reservation), so the demo can only contain states the product itself reaches. Safe to re-run:
the catalog/stock step runs only when the tenant has none of the demo channels yet (in one transaction,
so it is all there or not at all), and orders are sent only when their channel does not have them yet.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import seed_data as data
from app.catalog import listings
from app.catalog import service as catalog
from app.catalog.models import ChannelListing, Material, Product
from app.channels import service as channels
from app.channels.models import Channel
from app.config import PROJECT_ROOT
from app.db import Database, TenantRef
from app.inventory import service as inventory
from app.inventory.models import Location, LocationKind
from app.orders.doors import ingest_many
from app.orders.models import Order, OrderStatus
from tenants import service
from tenants.models import Membership, Organization, Role, Tenant, User

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
ACTOR = "seed"
CITIES_CSV = (
    Path(__file__).parent / "routing" / "data" / "cn_cities.csv",
    PROJECT_ROOT / "tests" / "fixtures" / "cn_cities.csv",
)
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def seed_demo(db: Database) -> str:
    """Create the demo tenant and its data where missing; returns the login line and a summary."""
    tenant, created = await ensure_tenant(db)
    if created:
        login = f"created demo tenant {DEMO_SLUG!r}: {DEMO_EMAIL} / {DEMO_PASSWORD}"
    else:
        login = f"demo tenant {DEMO_SLUG!r} already exists: {DEMO_EMAIL} / {DEMO_PASSWORD}"
    ref = service.tenant_ref(tenant)
    async with db.tenant_session(ref) as session:
        seeded = await seed_catalog(session)
    statuses = await seed_orders(db, ref)
    async with db.tenant_session(ref) as session:
        summary = await _summary(session)
    verb = "seeded" if seeded or statuses else "demo data present:"
    return f"{login}\n{verb} {summary}"


async def ensure_tenant(db: Database) -> tuple[Tenant, bool]:
    """The demo tenant, signed up if missing. After `oms tenant drop demo` the demo user survives (users
    outlive tenants), so the tenant is then provisioned again for that user instead."""
    async with db.control_session() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
        if tenant is not None:
            return tenant, False
        user_id = await session.scalar(select(User.id).where(User.email == DEMO_EMAIL))
        if user_id is not None:
            org = Organization(name="Demo Group")
            session.add(org)
            await session.flush()
            tenant = await service.provision_tenant(session, org.id, DEMO_SLUG, "Demo Brand")
            session.add(Membership(tenant_id=tenant.id, user_id=user_id, role=Role.owner))
            return tenant, True
    tenant, _ = await service.signup(
        db,
        organization="Demo Group",
        tenant_name="Demo Brand",
        slug=DEMO_SLUG,
        email=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        name="Demo Owner",
    )
    return tenant, True


# ---- channels, locations, catalog, stock -----------------------------------------------------------


def load_cities() -> dict[str, tuple[str, str, float, float]]:
    """City (English) -> (province, region, lat, lng), from the cities table routing uses."""
    for path in CITIES_CSV:
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as f:
                return {
                    row["city"]: (row["province"], row["region"], float(row["lat"]), float(row["lng"]))
                    for row in csv.DictReader(f)
                }
    return dict(data.FALLBACK_CITIES)


def listing_ids(channel_code: str, index: int, product: data.Item) -> tuple[str, str]:
    """The (item id, SKU id) a channel knows product number ``index`` by, in that platform's style."""
    if channel_code == "tmall":
        return str(652310478200 + index * 1931), str(4871530962100 + index * 733)
    if channel_code == "jd":
        return str(10002841530 + index * 617), str(100048215300 + index * 211)
    if channel_code == "mini_program":
        return f"spu_{1000 + index}", f"sku_{1000 + index}_01"
    if channel_code.startswith("pos"):
        barcodes = {m["code"]: m["barcode"] for m in data.MATERIALS}
        single = product.kind == "single" and len(product.components) == 1
        return (barcodes[product.components[0][0]] if single else product.code), ""
    return product.code, product.code  # the web shop uses our own codes


async def seed_catalog(session: AsyncSession) -> bool:
    """Channels, locations, materials, products, listings and stock, unless the channels exist."""
    codes = [c["code"] for c in data.CHANNELS]
    if await session.scalar(select(Channel.id).where(Channel.code.in_(codes)).limit(1)) is not None:
        return False
    channel_ids = {c["code"]: (await channels.create_channel(session, dict(c))).id for c in data.CHANNELS}
    cities = load_cities()
    location_ids: dict[str, int] = {}
    for site in data.SITES:
        province, region, lat, lng = cities.get(site.city) or data.FALLBACK_CITIES[site.city]
        store = site.kind == "store"
        location = await inventory.create_location(
            session,
            inventory.LocationInput(
                code=site.code,
                name=site.name,
                kind=LocationKind(site.kind),
                address=site.address,
                city=site.city,
                province=province,
                region=region,
                lat=lat,
                lng=lng,
                priority=site.priority,
                capabilities=data.STORE_CAPABILITIES if store else ("ship",),
                daily_capacity=site.daily_capacity,
                tags=site.tags,
            ),
        )
        location_ids[site.code] = location.id
    material_ids = {m["code"]: (await catalog.create_material(session, dict(m))).id for m in data.MATERIALS}
    product_ids: dict[str, int] = {}
    for item in data.PRODUCTS:
        components = [(material_ids[code], qty) for code, qty in item.components]
        values = {"code": item.code, "name": item.name, "kind": item.kind}
        product_ids[item.code] = (await catalog.create_product(session, values, components)).id
    index = {item.code: i for i, item in enumerate(data.PRODUCTS)}
    by_code = {item.code: item for item in data.PRODUCTS}
    for channel_code, listed in data.LISTED.items():
        marketplace = channel_code in ("tmall", "jd")
        for code in listed:
            item_id, sku_id = listing_ids(channel_code, index[code], by_code[code])
            await listings.create_listing(
                session,
                channel_id=channel_ids[channel_code],
                product_id=product_ids[code],
                external_item_id=item_id,
                external_sku_id=sku_id,
                title=f"Demo Brand 官方旗舰 {by_code[code].name}" if marketplace else by_code[code].name,
            )
    rows = [
        inventory.ReceiveRow(location_ids[where], material_ids[code], qty)
        for code, quantities in data.STOCK.items()
        for where, qty in zip(data.STOCK_AT, quantities, strict=True)
        if qty
    ]
    await inventory.receive_many(session, rows, reference="seed", reason="opening stock", actor=ACTOR)
    for where, code, units in data.SAFETY:
        await inventory.set_safety_stock(
            session, location_ids[where], material_ids[code], units, actor=ACTOR, reference="seed"
        )
    return True


# ---- orders ----------------------------------------------------------------------------------------


def _when(now: datetime, hours_ago: float, seconds: int = 0) -> str:
    return (now - timedelta(hours=hours_ago) + timedelta(seconds=seconds)).isoformat()


def order_payload(order: data.DemoOrder, now: datetime) -> dict[str, Any]:
    """The generic-format (``oms.order.v1``) payload the brand's own shop would send."""
    index = {item.code: i for i, item in enumerate(data.PRODUCTS)}
    by_code = {item.code: item for item in data.PRODUCTS}
    name, phone, email, province, city, district, street, postcode = data.PEOPLE[order.person]
    lines = []
    for n, (code, qty) in enumerate(order.lines, start=1):
        item_id, sku_id = listing_ids(order.channel, index[code], by_code[code])
        line = {"id": str(n), "item_id": item_id, "title": by_code[code].name, "quantity": qty}
        line.update({"sku_id": sku_id} if sku_id else {})
        lines.append({**line, "unit_price": by_code[code].price})
    address = {"name": name, "phone": phone, "country": "CN", "province": province, "city": city}
    if order.address:
        address.update(district=district, street=street, postcode=postcode)
    paid = order.status != "pending_payment"
    payload: dict[str, Any] = {
        "format": "oms.order.v1",
        "id": order.external_id,
        "status": order.status,
        "placed_at": _when(now, order.hours_ago),
        "updated_at": _when(now, order.hours_ago, 45 if paid else 0),
        "currency": "CNY",
        "buyer": {"id": f"member-{80231 + order.person}", "name": name, "phone": phone, "email": email},
        "shipping_address": address,
        "lines": lines,
        "shipping": order.shipping,
    }
    if paid:
        payload["paid_at"] = _when(now, order.hours_ago, 40)
    subtotal = sum(Decimal(by_code[code].price) * qty for code, qty in order.lines)
    payload["total"] = str(subtotal + Decimal(order.shipping))
    for key in ("buyer_note", "carrier"):
        if key in order.extra:
            payload[key] = order.extra[key]
    if order.extra.get("invoice"):
        payload["invoice"] = {
            "title": "上海晨光咨询有限公司",
            "tax_id": "91310115MA1K4XXX7Q",
            "type": "增值税专用发票",
        }
    return payload


def cancel_payload(external_id: str, reason: str, now: datetime) -> dict[str, Any]:
    return {"format": "oms.cancel.v1", "id": external_id, "reason": reason, "cancelled_at": now.isoformat()}


async def seed_orders(db: Database, ref: TenantRef) -> Counter:
    """Send the demo orders not yet received (and the cancellations not yet applied) through the real
    ingest door; returns the statuses they ended in."""
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    async with db.tenant_session(ref) as session:
        query = select(Channel.code, Channel.id).where(Channel.code.in_(data.ORDER_CHANNELS))
        channel_ids = {code: channel_id for code, channel_id in await session.execute(query)}
        known = {
            (channel_id, external_id): status
            for channel_id, external_id, status in await session.execute(
                select(Order.channel_id, Order.external_id, Order.status).where(
                    Order.channel_id.in_(list(channel_ids.values()))
                )
            )
        }
    statuses: Counter = Counter()
    for code, channel_id in channel_ids.items():
        orders = [o for o in data.ORDERS if o.channel == code and (channel_id, o.external_id) not in known]
        payloads = [json.dumps(order_payload(o, now), ensure_ascii=False) for o in orders]
        results = await ingest_many(db, ref, channel_id, payloads, actor=ACTOR) if payloads else []
        done = {o.external_id: r.order_status for o, r in zip(orders, results, strict=True)}
        to_cancel = [
            o.external_id
            for o in data.ORDERS
            if o.channel == code
            and o.external_id in data.CANCELLED
            and (done.get(o.external_id) or known.get((channel_id, o.external_id))) not in (None, "cancelled")
        ]
        cancels = [
            json.dumps(cancel_payload(e, data.CANCELLED[e], now), ensure_ascii=False) for e in to_cancel
        ]
        results = await ingest_many(db, ref, channel_id, cancels, actor=ACTOR) if cancels else []
        done.update((e, r.order_status) for e, r in zip(to_cancel, results, strict=True))
        statuses.update(s for s in done.values() if s)
    return statuses


# ---- summary ---------------------------------------------------------------------------------------


async def _count(session: AsyncSession, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def _summary(session: AsyncSession) -> str:
    by_status = dict((await session.execute(select(Order.status, func.count()).group_by(Order.status))).all())
    orders = ", ".join(f"{by_status[s]} {s.value.replace('_', ' ')}" for s in OrderStatus if s in by_status)
    counts = [
        (await _count(session, Channel), "channels"),
        (await _count(session, Location), "locations"),
        (await _count(session, Material), "materials"),
        (await _count(session, Product), "products"),
        (await _count(session, ChannelListing), "listings"),
        (sum(by_status.values()), "orders"),
    ]
    return ", ".join(f"{n} {what}" for n, what in counts) + (f" ({orders})" if orders else "")
