"""Set-based ingest: many new, plain orders of one channel created with a fixed number of statements.

``ingest`` creates one order with some fifty statements; at the rates channels deliver on a promotion
day that is Python time, not database time. This module is the fast path for the common case: a new,
paid order whose lines all resolve to active products that cannot go short, that no audit rule would
hold, and whose stock is there. Such an order's outcome is fully determined, so the rows are written
for the whole batch at once: customers and their identities, orders, lines, materials, timeline, usage
events, outbox rows, then the network reservation (the batch's materials locked in id order, one
conditional UPDATE), its ledger movements and channel usage, each one statement. They are the rows
``ingest`` would write (tests compare both paths).

Everything else is left to ``ingest``, order by order: known orders (updates), cancellations, unpaid
orders, orders the platform fulfils itself (nothing to reserve), anything an audit rule might hold (the
rules are screened set-based; ``ingest`` then decides exactly), unknown/inactive items, presale or
backorder products, materials a capped channel pool limits, buyers whose identities point at several
customers, and a second order of one buyer to one address in the batch (a possible duplicate). The fast
path runs in a savepoint and is all or nothing: if a race or short stock shows while writing (a twin
delivery claimed an order, other orders took the stock, a new customer's phone was claimed meanwhile, a
deadlock), it is rolled back and every order of the batch takes the one-order path, which handles each of
those cases."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.catalog import service as catalog
from app.catalog.models import Product
from app.channels.models import Channel
from app.channels.normalized import NormalizedLine, NormalizedOrder
from app.customers import identity
from app.customers.models import Customer, CustomerIdentity
from app.customers.service import display_name, identity_hashes, identity_owners
from app.db import is_lost_connection, is_transient, session_tenant
from app.errors import UserError
from app.inventory import atp, signals
from app.inventory.ledger import check_quantity
from app.inventory.models import (
    ChannelUsage,
    MovementKind,
    NetworkStock,
    PoolMode,
    Reservation,
    ReservationStatus,
    StockMovement,
)
from app.inventory.reservations import AVAILABLE
from app.orders import audit, lines, service
from app.orders import audit_checks as checks
from app.orders.ingest import CANCELLED, IngestResult, order_fields, order_number
from app.orders.models import BlacklistEntry, Order, OrderEvent, OrderLine, OrderLineMaterial
from app.orders.models import OrderStatus as S
from app.outbox import OutboxMessage
from billing.models import UsageEvent

Key = tuple[str, str]
Hash = tuple[str, str]  # (identity kind, keyed hash)
NO_IDENTITY = -2  # group of a plan ``resolve_customer`` must handle


@dataclass
class _Read:
    """What screening read that writing needs again."""

    owners: dict[Hash, int] = field(default_factory=dict)  # identity -> customer, before the batch
    floor: int = 0  # units a non-core channel leaves for core channels


class _Abort(Exception):
    """Something changed under the fast path while it wrote: roll it back, take the one-order path."""


@dataclass
class _Plan:
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


async def ingest_batch(
    session: AsyncSession,
    channel: Channel,
    items: list[tuple[NormalizedOrder, int | None]],
    *,
    actor: str,
) -> tuple[dict[int, IngestResult], list[int]]:
    """Create the plain new orders among ``items`` set-based, in the caller's transaction.

    Returns (results by index for the orders created here, the indexes left for ``ingest``, in order).
    """
    everything = list(range(len(items)))
    if not channel.active or not items:
        return {}, everything
    tenant_id = session_tenant(session).id
    read = _Read()
    plans, rest = await _plan(session, channel, items, tenant_id, read)
    if not plans:
        return {}, everything
    try:
        async with session.begin_nested():
            await _write(session, channel, plans, read, tenant_id, actor)
    except _Abort:
        return {}, everything
    except Exception as exc:
        if not is_transient(exc) or is_lost_connection(exc):  # no going on in a broken session
            raise
        return {}, everything  # a deadlock or serialization failure: the one-order path retries
    results = {
        p.index: IngestResult(p.order_id, order_number(p.order_id), "created", S.reserved.value)
        for p in plans
    }
    return results, sorted(rest)


# --- reading: which orders take the fast path ----------------------------------------------------------


async def _plan(
    session: AsyncSession,
    channel: Channel,
    items: list[tuple[NormalizedOrder, int | None]],
    tenant_id: int,
    read: _Read,
) -> tuple[list[_Plan], list[int]]:
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

    plans: list[_Plan] = []
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
) -> _Plan | None:
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
    return _Plan(index, norm, inbox_id, fields, order, resolved, needs)


async def _screen(
    session: AsyncSession, channel: Channel, plans: list[_Plan], rest: list[int], tenant_id: int, read: _Read
) -> list[_Plan]:
    """The plans whose customer is unambiguous, that no audit rule could hold and whose materials no
    capped channel pool limits; the others go to ``rest``."""
    read.owners = await identity_owners(session, sorted({h for p in plans for h in p.hashes}))
    _group_customers(plans, read.owners)
    keep: list[_Plan] = []
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
    out: list[_Plan] = []
    for plan in keep:
        if plan.index in flagged or capped & set(plan.needs):
            rest.append(plan.index)
        else:
            out.append(plan)
    return out


def _group_customers(plans: list[_Plan], owners: dict[Hash, int]) -> None:
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
    plans: list[_Plan],
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


def _line_rows(plan: _Plan) -> list[OrderLine]:
    return [OrderLine(**lines.line_values(0, x, p)) for x, p, _ in plan.lines]


async def _blacklisted(
    session: AsyncSession, channel: Channel, plans: list[_Plan], tenant_id: int
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


def _windowed(rows: list[_Plan], key: str):
    """``unnest(keys, placed_at, index) AS u(k, p, i)`` for plans."""
    return arrays.table(
        "u",
        k=([getattr(p.order, key) for p in rows], String),
        p=([p.order.placed_at for p in rows], DateTime(timezone=True)),
        i=([p.index for p in rows], Integer),
    )


async def _scalpers(session: AsyncSession, plans: list[_Plan], params: dict[str, Any]) -> set[int]:
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


async def _possible_duplicates(session: AsyncSession, plans: list[_Plan], params: dict[str, Any]) -> set[int]:
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


async def _capped(session: AsyncSession, channel: Channel, materials: set[int], read: _Read) -> set[int]:
    """Materials a quota or percentage pool of the channel limits (``reserve`` checks those one by one)."""
    if not materials:
        return set()
    rules = await atp.channel_rules(session, channel.id, sorted(materials))
    read.floor = rules.floor()
    return {
        m for m in materials if (pool := rules.pool_for(m)) is not None and pool.mode is not PoolMode.shared
    }


# --- writing ---------------------------------------------------------------------------------------------


async def _write(
    session: AsyncSession, channel: Channel, plans: list[_Plan], read: _Read, tenant_id: int, actor: str
) -> None:
    await _customers(session, plans, read.owners)
    for plan in plans:
        plan.order.customer_id = plan.customer_id
        service.stamp_address(plan.order, tenant_id)
    await _orders(session, channel, plans)
    await _lines(session, plans)
    await _events(session, channel, plans, actor)
    await session.execute(
        insert(UsageEvent.__table__).on_conflict_do_nothing(
            index_elements=["tenant_id", "kind", "reference"]
        ),
        [{"tenant_id": tenant_id, "kind": "order", "reference": _reference(p)} for p in plans],
    )
    await _outbox(session, plans, tenant_id)
    await _reserve(session, channel, plans, read.floor, actor)
    await session.flush()


def _reference(plan: _Plan) -> str:
    return f"order:{plan.order_id}"


def _insert_returning_ids(model: type) -> Any:
    """An INSERT of plain rows returning their ids in row order. Core, not the ORM's bulk path: a batch
    writes hundreds of rows and the ORM's per-row bookkeeping costs more than the statement."""
    table = model.__table__
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


async def _customers(session: AsyncSession, plans: list[_Plan], owners: dict[Hash, int]) -> None:
    """New customers for new groups, their identities attached, order counts and missing masked
    contact details filled in, as ``resolve_customer`` does order by order."""
    groups: dict[int, list[_Plan]] = defaultdict(list)
    for plan in plans:
        groups[plan.group].append(plan)
    details = {g: _contact(members) for g, members in groups.items()}
    new = [g for g, members in groups.items() if members[0].customer_id is None]
    if new:
        rows = [{**details[g], "tags": [], "blacklisted": False, "order_count": len(groups[g])} for g in new]
        ids = (await session.scalars(_insert_returning_ids(Customer), rows)).all()
        for g, customer_id in zip(new, ids, strict=True):
            for plan in groups[g]:
                plan.customer_id = customer_id
    attach = sorted(
        {(h, members[0].customer_id) for members in groups.values() for p in members for h in p.hashes}
    )
    missing = [(h, c) for h, c in attach if h not in owners]
    if missing:
        statement = (
            insert(CustomerIdentity.__table__)
            .on_conflict_do_nothing(index_elements=["kind", "value_hash"])
            .returning(CustomerIdentity.__table__.c.id)
        )
        rows = [{"customer_id": c, "kind": k, "value_hash": v} for (k, v), c in missing]
        claimed = (await session.execute(statement, rows)).all()
        if len(claimed) != len(missing) and new:
            raise _Abort  # another transaction took one of a new customer's identities meanwhile
    known = sorted(g for g in groups if g not in new)
    if known:
        u = arrays.table(
            "c",
            id=([groups[g][0].customer_id for g in known], BigInteger),
            n=([len(groups[g]) for g in known], Integer),
            name=([details[g]["name"] for g in known], String),
            phone=([details[g]["phone_masked"] for g in known], String),
            email=([details[g]["email_masked"] for g in known], String),
        )
        await session.execute(
            update(Customer)
            .where(Customer.id == u.c.id)
            .values(
                order_count=Customer.order_count + u.c.n,
                name=func.coalesce(func.nullif(Customer.name, ""), u.c.name),
                phone_masked=func.coalesce(Customer.phone_masked, u.c.phone),
                email_masked=func.coalesce(Customer.email_masked, u.c.email),
            )
        )


def _contact(members: list[_Plan]) -> dict[str, Any]:
    """The first name, masked phone and masked e-mail the group's orders show, in order."""
    name = phone = email = None
    for plan in members:
        buyer, address = plan.norm.buyer, plan.norm.address
        name = name or display_name(buyer, address) or None
        phone = phone or identity.mask_phone(buyer.phone or address.phone)
        email = email or identity.mask_email(buyer.email)
    return {"name": name or "", "phone_masked": phone, "email_masked": email}


async def _orders(session: AsyncSession, channel: Channel, plans: list[_Plan]) -> None:
    tenant = session_tenant(session)
    sequence = func.pg_get_serial_sequence(f"{tenant.schema_name}.orders", "id")
    ids = (
        await session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, len(plans))))
    ).all()
    rows = []
    for plan, order_id in zip(plans, ids, strict=True):
        plan.order_id = order_id
        o = plan.order
        rows.append(
            {
                **plan.fields,
                "id": order_id,
                "number": order_number(order_id),
                "channel_id": channel.id,
                "external_id": plan.norm.external_id,
                "status": S.reserved,
                "customer_id": plan.customer_id,
                "fingerprint": o.fingerprint,
                "address_hash": o.address_hash,
                "search_text": o.search_text,
                "inbox_id": plan.inbox_id,
                "version": 2,  # created, then moved to reserved
            }
        )
    statement = (
        insert(Order.__table__)
        .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
        .returning(Order.__table__.c.id)
    )
    claimed = (await session.execute(statement, rows)).all()
    if len(claimed) != len(plans):
        raise _Abort  # a twin delivery of one of them got in first


async def _lines(session: AsyncSession, plans: list[_Plan]) -> None:
    rows = [
        lines.line_values(plan.order_id, line, product) for plan in plans for line, product, _ in plan.lines
    ]
    parts = [parts for plan in plans for _, _, parts in plan.lines]
    ids = (await session.scalars(_insert_returning_ids(OrderLine), rows)).all()
    materials = [
        {
            "line_id": line_id,
            "material_id": material_id,
            "order_id": row["order_id"],
            "quantity": per * row["quantity"],
        }
        for line_id, row, exploded in zip(ids, rows, parts, strict=True)
        for material_id, per in exploded
    ]
    if materials:
        await session.execute(insert(OrderLineMaterial.__table__), materials)


async def _events(session: AsyncSession, channel: Channel, plans: list[_Plan], actor: str) -> None:
    """Each order's first two timeline events, as rows (not ORM objects: a batch writes hundreds)."""
    received = {"kind": "received", "actor": actor, "message": f"received from {channel.name}"}
    reserved = {"kind": "status", "actor": actor, "message": "stock reserved", "details": {}}
    rows = []
    for plan in plans:
        details = {"channel": channel.code, "external_id": plan.norm.external_id, "inbox_id": plan.inbox_id}
        rows.append(
            {
                **received,
                "order_id": plan.order_id,
                "from_status": None,
                "to_status": S.received.value,
                "details": details,
            }
        )
        rows.append(
            {
                **reserved,
                "order_id": plan.order_id,
                "from_status": S.received.value,
                "to_status": S.reserved.value,
            }
        )
    await session.execute(insert(OrderEvent.__table__), rows)


async def _outbox(session: AsyncSession, plans: list[_Plan], tenant_id: int) -> None:
    """route_order for each order, and the tenant's automations for entering ``reserved`` (timed from
    the transaction's start, which is the orders' ``status_changed_at``)."""
    routes = [
        {"job": "route_order", "tenant_id": tenant_id, "kwargs": {"order_id": p.order_id}} for p in plans
    ]
    await session.execute(insert(OutboxMessage.__table__), routes)
    automations = await service.enabled_automations(session, S.reserved)
    if not automations:
        return
    now: datetime = await session.scalar(select(func.now()))
    await session.execute(
        insert(OutboxMessage.__table__),
        [
            {
                "job": "run_order_automation",
                "tenant_id": tenant_id,
                "available_at": now + timedelta(minutes=automation.after_minutes),
                "kwargs": {
                    "order_id": p.order_id,
                    "automation_id": automation.id,
                    "entered_at": now.isoformat(),
                },
            }
            for automation in automations
            for p in plans
        ],
    )


async def _reserve(
    session: AsyncSession, channel: Channel, plans: list[_Plan], floor: int, actor: str
) -> None:
    """The batch's units reserved at network level, all or nothing, with the same rows ``reserve``
    writes per order (reservation, movement, channel usage). Last, so hot stock rows stay locked for
    as short a time as possible."""
    total: Counter = Counter()
    for plan in plans:
        total.update(plan.needs)
    if not total:
        return
    materials = sorted(total)
    locked = arrays.id_table(materials)
    await session.execute(
        select(NetworkStock.material_id)
        .where(NetworkStock.material_id == locked.c.id)
        .order_by(NetworkStock.material_id)
        .with_for_update(of=NetworkStock)
    )
    want = arrays.table("w", m=(materials, BigInteger), q=([total[m] for m in materials], Integer))
    taken = (
        await session.execute(
            update(NetworkStock)
            .where(NetworkStock.material_id == want.c.m, AVAILABLE - floor >= want.c.q)
            .values(reserved=NetworkStock.reserved + want.c.q)
            .returning(NetworkStock.material_id, AVAILABLE)
        )
    ).all()
    if len(taken) != len(materials):
        raise _Abort  # short somewhere: ``reserve`` sends the orders it cannot serve to awaiting_stock
    usage = insert(ChannelUsage)
    await session.execute(
        usage.on_conflict_do_update(
            index_elements=[ChannelUsage.channel_id, ChannelUsage.material_id],
            set_={"reserved": ChannelUsage.reserved + usage.excluded.reserved},
        ),
        [{"channel_id": channel.id, "material_id": m, "reserved": total[m]} for m in materials],
    )
    await signals.stock_changed_many(session, [(m, available, -total[m]) for m, available in taken])
    reservations = [
        {
            "reference": _reference(plan),
            "channel_id": channel.id,
            "material_id": m,
            "quantity": q,
            "backordered": 0,
            "status": ReservationStatus.active,
        }
        for plan in plans
        for m, q in sorted(plan.needs.items())
    ]
    await session.execute(insert(Reservation.__table__), reservations)
    await session.execute(
        insert(StockMovement.__table__),
        [
            {
                "kind": MovementKind.reservation,
                "material_id": r["material_id"],
                "location_id": None,
                "d_reserved": r["quantity"],
                "reference": r["reference"],
                "actor": actor,
            }
            for r in reservations
        ],
    )
