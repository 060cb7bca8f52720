"""The built-in audit checks: each looks at one order (with its lines) and returns why it should be
held, or None. Parameters come validated from ``audit``'s settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import ProductKind
from app.channels.models import Channel
from app.channels.normalized import Address, Buyer
from app.customers import identity
from app.customers.models import Customer
from app.customers.service import identity_values
from app.orders.models import BlacklistEntry, Order, OrderLine, OrderStatus

NO_ADDRESS_KINDS = (ProductKind.virtual.value, ProductKind.service.value)


@dataclass
class Ctx:
    session: AsyncSession
    order: Order
    lines: list[OrderLine]
    tenant_id: int


def buyer_of(order: Order) -> Buyer:
    b = order.buyer or {}
    return Buyer(b.get("platform_buyer_id"), b.get("name"), b.get("phone"), b.get("email"), b.get("nick"))


def address_of(order: Order) -> Address:
    return Address(**{k: (order.address or {}).get(k) for k in Address.__slots__})


def address_value(address: Mapping[str, Any] | str) -> str:
    """What an address blacklist entry matches: province, city, district and street, normalised."""
    if isinstance(address, str):
        return identity.normalise_text(address)
    return identity.normalise_text(
        "".join(address.get(k) or "" for k in ("province", "city", "district", "street"))
    )


async def blacklist(ctx: Ctx, params: dict[str, Any]) -> str | None:
    order = ctx.order
    if order.customer_id is not None:
        customer = await ctx.session.get(Customer, order.customer_id)
        if customer is not None and customer.blacklisted:
            return "the customer is blacklisted"
    channel = await ctx.session.get(Channel, order.channel_id)
    hashes = list(blacklist_hashes(order, channel.platform if channel else "", ctx.tenant_id))
    rows = (
        await ctx.session.execute(
            select(BlacklistEntry.kind, BlacklistEntry.value_hash, BlacklistEntry.reason).where(
                tuple_(BlacklistEntry.kind, BlacklistEntry.value_hash).in_(hashes)
            )
        )
    ).all()
    if not rows:
        return None
    return "; ".join(f"{kind} is blacklisted" + (f": {reason}" if reason else "") for kind, _, reason in rows)


def blacklist_hashes(order: Order, platform: str, tenant_id: int) -> set[tuple[str, str]]:
    """The (kind, value_hash) pairs a blacklist entry could match for ``order``: the buyer's identities,
    the recipient's phone and the address."""
    buyer, address = buyer_of(order), address_of(order)
    values = set(identity_values(buyer, address, platform))
    recipient_phone = identity.normalise_phone(address.phone, address.country)
    if recipient_phone:
        values.add(("phone", recipient_phone))
    if address_value(order.address or {}):
        values.add(("address", address_value(order.address or {})))
    return {(k, identity.tenant_hash(tenant_id, k, v)) for k, v in values}


async def address_incomplete(ctx: Ctx, params: dict[str, Any]) -> str | None:
    if ctx.lines and all(line.kind in NO_ADDRESS_KINDS for line in ctx.lines):
        return None  # nothing to deliver
    a = ctx.order.address or {}
    missing = [k for k in ("city", "street") if not a.get(k)]
    if not (a.get("phone") or (ctx.order.buyer or {}).get("phone")):
        missing.append("phone")
    if missing:
        return f"the address has no {', '.join(missing)}"
    street = identity.normalise_text(a.get("street"))
    if len(street) < params["min_street_length"]:
        return f"the street {a.get('street')!r} is too short"
    text = identity.normalise_text(" ".join(a.get(k) or "" for k in ("district", "street")))
    for pattern in params["patterns"]:
        if identity.normalise_text(pattern) in text:
            return f"the address matches {pattern!r}"
    return None


async def amount_anomaly(ctx: Ctx, params: dict[str, Any]) -> str | None:
    order = ctx.order
    if order.total > Decimal(params["max_total"]):
        return f"total {order.total} {order.currency} is above {params['max_total']}"
    if order.total <= 0 and not (ctx.lines and all(line.is_gift for line in ctx.lines)):
        return f"total {order.total} {order.currency} is not positive"
    if order.channel_status != "pending_payment" and order.paid < order.total:
        return f"paid {order.paid} is less than the total {order.total} {order.currency}"
    return None


def promo_code(extra: Mapping[str, Any]) -> str | None:
    code = extra.get("promo_code") or extra.get("coupon")
    return str(code) if code else None


async def promo_abuse(ctx: Ctx, params: dict[str, Any]) -> str | None:
    order, code = ctx.order, promo_code(ctx.order.extra or {})
    if code is None or order.customer_id is None:
        return None
    used = await ctx.session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.customer_id == order.customer_id,
            Order.id != order.id,
            Order.status != OrderStatus.cancelled,
            Order.placed_at >= order.placed_at - timedelta(days=params["days"]),
            or_(Order.extra["promo_code"].astext == code, Order.extra["coupon"].astext == code),
        )
    )
    if used >= params["max_uses"]:
        return f"promo code {code!r} already used {used} time(s) by this customer in {params['days']} days"
    return None


async def scalper(ctx: Ctx, params: dict[str, Any]) -> str | None:
    """Many orders to one address (whatever the accounts), counted on the (address_hash, placed_at) index."""
    order, a = ctx.order, ctx.order.address or {}
    if not (a.get("city") and a.get("street")):
        return None
    window = timedelta(hours=params["hours"])
    others = await ctx.session.scalar(
        select(func.count()).where(
            Order.address_hash == order.address_hash,
            Order.placed_at.between(order.placed_at - window, order.placed_at + window),
            Order.id != order.id,
            Order.status != OrderStatus.cancelled,
        )
    )
    same = 1 + others
    if same > params["max_orders"]:
        return f"{same} orders to this address within {params['hours']} hours"
    return None


def _items(lines: list[OrderLine]) -> Counter:
    return Counter(
        (line.product_id or f"{line.external_item_id}/{line.external_sku_id}", line.quantity)
        for line in lines
        if not line.is_gift
    )


async def duplicate(ctx: Ctx, params: dict[str, Any]) -> str | None:
    order, window = ctx.order, timedelta(minutes=params["minutes"])
    others = (
        await ctx.session.execute(
            select(Order.id, Order.number).where(
                Order.fingerprint == order.fingerprint,
                Order.id != order.id,
                Order.status != OrderStatus.cancelled,
                Order.placed_at.between(order.placed_at - window, order.placed_at + window),
            )
        )
    ).all()
    if not others:
        return None
    mine = _items(ctx.lines)
    lines = (
        await ctx.session.scalars(select(OrderLine).where(OrderLine.order_id.in_([o.id for o in others])))
    ).all()
    for other_id, number in others:
        if _items([line for line in lines if line.order_id == other_id]) == mine:
            return f"same customer, address and items as order {number}"
    return None
