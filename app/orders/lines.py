"""Order lines at ingest: a channel's (item, SKU) resolved to a sales product through its listing,
exploded into the materials that stock and routing work on, held for when unresolved, and kept in step
with newer payloads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import any_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.catalog import service as catalog
from app.catalog.models import ChannelListing, Product, ProductKind
from app.channels.models import Channel
from app.channels.normalized import NormalizedLine
from app.orders.models import Order, OrderLine, OrderLineMaterial

UNKNOWN_ITEM = "unknown_item"
INACTIVE_PRODUCT = "inactive_product"


Key = tuple[str, str]  # a channel's (item id, SKU id); "" where the platform has none


def _key(line: NormalizedLine | OrderLine) -> Key:
    return (line.external_item_id, line.external_sku_id)


async def resolve(session: AsyncSession, channel_id: int, keys: set[Key]) -> dict[Key, Product | None]:
    """Each (item, SKU) to the product its listing names, in one query. A line that names only a SKU
    (generic format) matches the one listing of the channel with that SKU id."""
    items = {item for item, _ in keys if item}
    skus = {sku for item, sku in keys if sku and not item}
    if not keys:
        return {}
    rows = (
        await session.execute(
            select(ChannelListing.external_item_id, ChannelListing.external_sku_id, Product)
            .join(Product, Product.id == ChannelListing.product_id)
            .where(
                ChannelListing.channel_id == channel_id,
                or_(
                    ChannelListing.external_item_id == any_(arrays.texts(items)),
                    ChannelListing.external_sku_id == any_(arrays.texts(skus)),
                ),
            )
        )
    ).all()
    exact = {(item, sku): product for item, sku, product in rows}
    by_sku: dict[str, list[Product]] = {}
    for _, sku, product in rows:
        by_sku.setdefault(sku, []).append(product)
    found: dict[Key, Product | None] = {}
    for item, sku in keys:
        product = exact.get((item, sku))
        if product is None and not item and sku and len(by_sku.get(sku, ())) == 1:
            product = by_sku[sku][0]
        found[(item, sku)] = product
    return found


def line_values(order_id: int, line: NormalizedLine, product: Product | None) -> dict[str, Any]:
    """An ``order_lines`` row for a channel line and the product it resolved to (None: unresolved)."""
    return {
        "order_id": order_id,
        "external_line_id": line.external_line_id,
        "external_item_id": line.external_item_id,
        "external_sku_id": line.external_sku_id,
        "title": line.title[:300],
        "product_id": product.id if product else None,
        "kind": ProductKind(product.kind).value if product else None,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "discount": line.discount,
        "total": line.total,
        "is_gift": line.is_gift or bool(product and product.kind is ProductKind.gift),
        "presale": bool(product and product.presale),
    }


async def write_lines(
    session: AsyncSession, channel: Channel, order: Order, lines: tuple[NormalizedLine, ...]
) -> None:
    """Lines resolved to products (unresolved ones keep product_id NULL) and exploded into materials."""
    products = await resolve(session, channel.id, {_key(x) for x in lines})
    ids = sorted({p.id for p in products.values() if p is not None})
    exploded = await catalog.explode(session, ids) if ids else {}
    rows = [OrderLine(**line_values(order.id, line, products[_key(line)])) for line in lines]
    session.add_all(rows)
    await session.flush()
    session.add_all(
        OrderLineMaterial(
            line_id=row.id, material_id=material_id, order_id=order.id, quantity=per * row.quantity
        )
        for row in rows
        if row.product_id is not None
        for material_id, per in exploded.get(row.product_id, ())
    )
    await session.flush()


async def resolve_pending(session: AsyncSession, order: Order) -> list[str]:
    """Resolve lines that were unknown at ingest (the listing may exist by now); returns the titles of
    lines that still resolve to nothing."""
    pending = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.product_id.is_(None))
        )
    ).all()
    unresolved: list[str] = []
    products = await resolve(
        session, order.channel_id, {(x.external_item_id, x.external_sku_id) for x in pending}
    )
    for line in pending:
        product = products[_key(line)]
        if product is None:
            unresolved.append(line.title or f"{line.external_item_id}/{line.external_sku_id}")
            continue
        line.product_id, line.kind = product.id, ProductKind(product.kind).value
        line.is_gift = line.is_gift or product.kind is ProductKind.gift
        line.presale = product.presale
        for material_id, per in (await catalog.explode(session, [product.id])).get(product.id, ()):
            session.add(
                OrderLineMaterial(
                    line_id=line.id, material_id=material_id, order_id=order.id, quantity=per * line.quantity
                )
            )
    await session.flush()
    return unresolved


async def line_holds(session: AsyncSession, channel: Channel, order: Order) -> list[tuple[str, int, str]]:
    """Lines not listed on the channel, or listed as a product that is no longer active."""
    rows = (
        await session.execute(
            select(
                OrderLine.external_item_id,
                OrderLine.external_sku_id,
                OrderLine.title,
                Product.code,
                Product.active,
            )
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .where(OrderLine.order_id == order.id)
            .order_by(OrderLine.id)
        )
    ).all()
    unknown = [
        f"item {item or '-'} / SKU {sku or '-'}" + (f" ({title})" if title else "")
        for item, sku, title, code, _ in rows
        if code is None
    ]
    inactive = [code for _, _, _, code, active in rows if code is not None and not active]
    holds = []
    if unknown:
        reason = f"not listed on {channel.name}: " + "; ".join(unknown)
        holds.append((UNKNOWN_ITEM, 100, reason[:500]))
    if inactive:
        holds.append((INACTIVE_PRODUCT, 100, f"inactive products: {', '.join(inactive)}"[:500]))
    return holds


def _line_key(external_line_id: str, item: str, sku: str, quantity: int) -> tuple[str, str, str, int]:
    return (external_line_id, item, sku, quantity)


async def sync_lines(
    session: AsyncSession,
    channel: Channel,
    order: Order,
    lines: tuple[NormalizedLine, ...],
    changed: dict[str, Any],
) -> bool:
    """Bring the stored lines in step with the payload. Returns True when what is bought changed
    (items or quantities), False when at most prices or titles did (updated in place)."""
    stored = list((await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all())
    old = sorted(
        _line_key(x.external_line_id, x.external_item_id, x.external_sku_id, x.quantity) for x in stored
    )
    new = sorted(
        _line_key(x.external_line_id, x.external_item_id, x.external_sku_id, x.quantity) for x in lines
    )
    if old == new:
        by_id = {x.external_line_id: x for x in stored}
        for line in lines:
            row = by_id[line.external_line_id]
            for attr in ("unit_price", "discount", "total"):
                if getattr(row, attr) != getattr(line, attr):
                    changed.setdefault("line_prices", []).append(line.external_line_id)
                    setattr(row, attr, getattr(line, attr))
            row.title = line.title[:300]
        return False
    await session.execute(delete(OrderLine).where(OrderLine.order_id == order.id))  # materials cascade
    for row in stored:
        session.expunge(row)
    await write_lines(session, channel, order, lines)
    changed["lines"] = {
        "before": [list(k) for k in old],
        "after": [list(k) for k in new],
    }
    return True
