"""Set-based ingest, reading: which orders of a batch take the fast path, and the plan of each.

An order is planned when it is new, paid, not fulfilled by the platform, every line an active product
that cannot go short, its customer unambiguous, no enabled audit rule could hold it (the rules screened
for the whole batch at once; ``ingest`` then decides exactly) and no capped channel pool limits its
materials. Everything else is left to ``ingest``, order by order (see ``app.orders.batch``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.catalog import service as catalog
from app.catalog.models import Product
from app.channels.models import Channel
from app.channels.normalized import NormalizedLine, NormalizedOrder
from app.customers import identity
from app.customers.models import Customer
from app.customers.service import identity_hashes, identity_owners
from app.errors import UserError
from app.inventory import atp
from app.inventory.ledger import check_quantity
from app.inventory.models import (
    PoolMode,
)
from app.orders import audit, lines, service
from app.orders import audit_checks as checks
from app.orders.ingest import CANCELLED, order_fields
from app.orders.models import BlacklistEntry, Order, OrderLine
from app.orders.models import OrderStatus as S

Key = tuple[str, str]
Hash = tuple[str, str]  # (identity kind, keyed hash)
NO_IDENTITY = -2  # group of a plan ``resolve_customer`` must handle


@dataclass
class Read:
    """What screening read that writing needs again."""

    owners: dict[Hash, int] = field(default_factory=dict)  # identity -> customer, before the batch
    floor: int = 0  # units a non-core channel leaves for core channels


@dataclass
class Plan:
    """One order on the fast path, with everything its rows need."""

    index: int
    norm: NormalizedOrder
    inbox_id: int | None
    fields: dict[str, Any]
    order: Order  # transient (never added to the session): the audit checks and stamp_address read it
    lines: list[tuple[NormalizedLine, Product, catalog.Exploded]]
    needs: Counter  # material id -> units
    hashes: list[Hash] = field(default_factory=list)
    group: int = NO_IDENTITY  # orders sharing an identity are one customer
    customer_id: int | None = None
    order_id: int = 0


async def plan_batch(
    session: AsyncSession,
    channel: Channel,
    items: list[tuple[NormalizedOrder, int | None]],
    tenant_id: int,
    read: Read,
) -> tuple[list[Plan], list[int]]:
    """(plans of the orders that take the fast path, indexes of the others); ``read`` keeps what the
    screening read that writing needs again."""
    rest: list[int] = []
    seen: set[str] = set()
    candidates: list[int] = []
    for i, (norm, _) in enumerate(items):
        plain = (
            norm.status not in CANCELLED
            and norm.status != "pending_payment"
            and norm.lines
            and not norm.fulfilled_by_platform  # nothing to reserve: ``ingest`` records it as shipped
        )
        if not plain or norm.external_id in seen:
            rest.append(i)
        else:
            seen.add(norm.external_id)
            candidates.append(i)
    if not candidates:
        return [], rest
    external = arrays.table("x", id=([items[i][0].external_id for i in candidates], String))
    known = set(
        (
            await session.scalars(
                select(Order.external_id).where(
                    Order.channel_id == channel.id, Order.external_id == external.c.id
                )
            )
        ).all()
    )
    keys = {(x.external_item_id, x.external_sku_id) for i in candidates for x in items[i][0].lines}
    products = await lines.resolve(session, channel.id, keys)
    exploded = await catalog.explode(session, sorted({p.id for p in products.values() if p is not None}))

    plans: list[Plan] = []
    for i in candidates:
        norm, inbox_id = items[i]
        plan = (
            None if norm.external_id in known else _plan_one(i, norm, inbox_id, channel, products, exploded)
        )
        if plan is None:
            rest.append(i)
        else:
            plan.hashes = identity_hashes(tenant_id, norm.buyer, norm.address, channel.platform)
            plans.append(plan)
    return (await _screen(session, channel, plans, rest, tenant_id, read) if plans else []), rest


def _plan_one(
    index: int,
    norm: NormalizedOrder,
    inbox_id: int | None,
    channel: Channel,
    products: dict[Key, Product | None],
    exploded: dict[int, catalog.Exploded],
) -> Plan | None:
    resolved: list[tuple[NormalizedLine, Product, catalog.Exploded]] = []
    needs: Counter = Counter()
    for line in norm.lines:
        product = products.get((line.external_item_id, line.external_sku_id))
        parts = exploded.get(product.id) if product is not None else None
        if product is None or parts is None or not parts.active or parts.may_go_short:
            return None  # held for an unknown or inactive item, or presale/backorder
        try:
            check_quantity(line.quantity, "quantity")
        except UserError:
            return None
        resolved.append((line, product, parts))
        for material_id, per in parts:
            needs[material_id] += per * line.quantity
    fields = order_fields(channel, norm)
    order = Order(channel_id=channel.id, external_id=norm.external_id, **fields)
    return Plan(index, norm, inbox_id, fields, order, resolved, needs)


async def _screen(
    session: AsyncSession, channel: Channel, plans: list[Plan], rest: list[int], tenant_id: int, read: Read
) -> list[Plan]:
    """The plans whose customer is unambiguous, that no audit rule could hold and whose materials no
    capped channel pool limits; the others go to ``rest``."""
    read.owners = await identity_owners(session, sorted({h for p in plans for h in p.hashes}))
    _group_customers(plans, read.owners)
    keep: list[Plan] = []
    for plan in plans:
        if plan.group == NO_IDENTITY:
            rest.append(plan.index)
            continue
        plan.order.customer_id = plan.customer_id  # None for a new customer: fingerprint redone later
        service.stamp_address(plan.order, tenant_id)
        keep.append(plan)
    settings = {s.code: s for s in await audit.rules(session)}
    flagged = await _audit(session, channel, keep, settings, tenant_id)
    capped = await _capped(session, channel, {m for p in keep for m in p.needs}, read)
    out: list[Plan] = []
    for plan in keep:
        if plan.index in flagged or capped & set(plan.needs):
            rest.append(plan.index)
        else:
            out.append(plan)
    return out


def _group_customers(plans: list[Plan], owners: dict[Hash, int]) -> None:
    """Orders sharing an identity are one customer (a group): the known customer their identities
    point at, or a new one. Identities pointing at several customers, or none at all, are
    ``resolve_customer``'s to sort out."""
    parent = list(range(len(plans)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Hash, int] = {}
    for i, plan in enumerate(plans):
        for h in plan.hashes:
            if h in first:
                parent[root(i)] = root(first[h])
            else:
                first[h] = i
    known: dict[int, set[int]] = defaultdict(set)
    for i, plan in enumerate(plans):
        known[root(i)].update(owners[h] for h in plan.hashes if h in owners)
    for i, plan in enumerate(plans):
        customers = known[root(i)]
        if plan.hashes and len(customers) <= 1:
            plan.group = root(i)
            plan.customer_id = next(iter(customers), None)


async def _audit(
    session: AsyncSession,
    channel: Channel,
    plans: list[Plan],
    settings: dict[str, audit.RuleSetting],
    tenant_id: int,
) -> set[int]:
    """Indexes of plans an enabled audit rule could hold (``ingest`` then evaluates them exactly)."""
    on = {code for code, s in settings.items() if s.enabled and code != audit.THRESHOLD}
    flagged: set[int] = set()
    for plan in plans:
        ctx = checks.Ctx(session, plan.order, _line_rows(plan), tenant_id)
        for code, check in (
            ("address_incomplete", checks.address_incomplete),
            ("amount_anomaly", checks.amount_anomaly),
        ):
            if code in on and await check(ctx, settings[code].params):  # pure: no queries
                flagged.add(plan.index)
        if "promo_abuse" in on and checks.promo_code(plan.order.extra or {}):
            flagged.add(plan.index)  # counting a promo code's uses across the batch: left to ingest
    if "blacklist" in on:
        flagged |= await _blacklisted(session, channel, plans, tenant_id)
    if "scalper" in on:
        flagged |= await _scalpers(session, plans, settings["scalper"].params)
    if "duplicate" in on:
        flagged |= await _possible_duplicates(session, plans, settings["duplicate"].params)
    return flagged


def _line_rows(plan: Plan) -> list[OrderLine]:
    return [OrderLine(**lines.line_values(0, x, p)) for x, p, _ in plan.lines]


async def _blacklisted(
    session: AsyncSession, channel: Channel, plans: list[Plan], tenant_id: int
) -> set[int]:
    """What ``audit_checks.blacklist`` looks up, for the whole batch in two queries."""
    wanted: dict[Hash, set[int]] = defaultdict(set)
    for plan in plans:
        for h in checks.blacklist_hashes(plan.order, channel.platform, tenant_id):
            wanted[h].add(plan.index)
    flagged: set[int] = set()
    if wanted:
        entries = arrays.table(
            "b", kind=([k for k, _ in wanted], String), value=([v for _, v in wanted], String)
        )
        hits = await session.execute(
            select(BlacklistEntry.kind, BlacklistEntry.value_hash).where(
                BlacklistEntry.kind == entries.c.kind, BlacklistEntry.value_hash == entries.c.value
            )
        )
        flagged = {i for kind, value in hits for i in wanted[(kind, value)]}
    customers = sorted({p.customer_id for p in plans if p.customer_id is not None})
    if customers:
        ids = arrays.id_table(customers)
        black = set(
            (
                await session.scalars(
                    select(Customer.id).where(Customer.id == ids.c.id, Customer.blacklisted)
                )
            ).all()
        )
        flagged |= {p.index for p in plans if p.customer_id in black}
    return flagged


def _windowed(rows: list[Plan], key: str):
    """``unnest(keys, placed_at, index) AS u(k, p, i)`` for plans."""
    return arrays.table(
        "u",
        k=([getattr(p.order, key) for p in rows], String),
        p=([p.order.placed_at for p in rows], DateTime(timezone=True)),
        i=([p.index for p in rows], Integer),
    )


async def _scalpers(session: AsyncSession, plans: list[Plan], params: dict[str, Any]) -> set[int]:
    """``audit_checks.scalper`` for the batch: orders to one address within the window, counted in the
    database and among the batch's earlier orders."""
    window = timedelta(hours=params["hours"])
    placed = [
        p for p in plans if (p.order.address or {}).get("city") and (p.order.address or {}).get("street")
    ]
    if not placed:
        return set()
    u = _windowed(placed, "address_hash")
    counts = dict(
        (
            await session.execute(
                select(u.c.i, func.count(Order.id))
                .join(Order, Order.address_hash == u.c.k)
                .where(Order.placed_at.between(u.c.p - window, u.c.p + window), Order.status != S.cancelled)
                .group_by(u.c.i)
            )
        ).all()
    )
    flagged: set[int] = set()
    earlier: dict[str, list[datetime]] = defaultdict(list)
    for plan in placed:
        o = plan.order
        before = sum(1 for at in earlier[o.address_hash] if abs(at - o.placed_at) <= window)
        if 1 + counts.get(plan.index, 0) + before > params["max_orders"]:
            flagged.add(plan.index)
        earlier[o.address_hash].append(o.placed_at)
    return flagged


async def _possible_duplicates(session: AsyncSession, plans: list[Plan], params: dict[str, Any]) -> set[int]:
    """A known customer with another order at this address within the window, or a second order of
    one group to one address in the batch: ``ingest`` compares their items (``audit_checks.duplicate``)."""
    window = timedelta(minutes=params["minutes"])
    flagged: set[int] = set()
    seen: set[tuple[int, str]] = set()
    for plan in plans:
        key = (plan.group, identity.address_key(plan.order.address or {}))
        if key in seen:
            flagged.add(plan.index)
        seen.add(key)
    known = [p for p in plans if p.customer_id is not None and p.index not in flagged]
    if known:
        u = _windowed(known, "fingerprint")
        flagged |= set(
            (
                await session.scalars(
                    select(u.c.i)
                    .join(Order, Order.fingerprint == u.c.k)
                    .where(
                        Order.placed_at.between(u.c.p - window, u.c.p + window), Order.status != S.cancelled
                    )
                    .distinct()
                )
            ).all()
        )
    return flagged


async def _capped(session: AsyncSession, channel: Channel, materials: set[int], read: Read) -> set[int]:
    """Materials a quota or percentage pool of the channel limits (``reserve`` checks those one by one)."""
    if not materials:
        return set()
    rules = await atp.channel_rules(session, channel.id, sorted(materials))
    read.floor = rules.floor()
    return {
        m for m in materials if (pool := rules.pool_for(m)) is not None and pool.mode is not PoolMode.shared
    }
