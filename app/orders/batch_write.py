"""Set-based ingest, writing: the rows of a batch's planned orders, one statement each.

Customers and their identities, orders, lines, materials, timeline, usage events, outbox rows, then the
network reservation (the batch's materials locked in id order, one conditional UPDATE), its ledger
movements and channel usage: the rows ``ingest`` would write (tests compare both paths). Writes with Core
inserts, not the ORM: a batch writes hundreds of rows and the ORM's per-row bookkeeping costs more than
the statements. A race seen while writing raises ``Abort``: the caller rolls back the savepoint.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.channels.models import Channel
from app.customers import identity
from app.customers.models import Customer, CustomerIdentity
from app.customers.service import display_name
from app.db import session_tenant
from app.inventory import signals
from app.inventory.models import (
    ChannelUsage,
    MovementKind,
    NetworkStock,
    Reservation,
    ReservationStatus,
    StockMovement,
)
from app.inventory.reservations import AVAILABLE
from app.orders import lines, service
from app.orders.batch_plan import Hash, Plan, Read
from app.orders.ingest import order_number
from app.orders.models import Order, OrderEvent, OrderLine, OrderLineMaterial
from app.orders.models import OrderStatus as S
from app.outbox import OutboxMessage
from billing.models import UsageEvent


class Abort(Exception):
    """Something changed under the fast path while it wrote: roll it back, take the one-order path."""


async def write_batch(
    session: AsyncSession, channel: Channel, plans: list[Plan], read: Read, tenant_id: int, actor: str
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


def _reference(plan: Plan) -> str:
    return f"order:{plan.order_id}"


def _insert_returning_ids(model: type) -> Any:
    """An INSERT of plain rows returning their ids in row order. Core, not the ORM's bulk path: a batch
    writes hundreds of rows and the ORM's per-row bookkeeping costs more than the statement."""
    table = model.__table__
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


async def _customers(session: AsyncSession, plans: list[Plan], owners: dict[Hash, int]) -> None:
    """New customers for new groups, their identities attached, order counts and missing masked
    contact details filled in, as ``resolve_customer`` does order by order."""
    groups: dict[int, list[Plan]] = defaultdict(list)
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
            raise Abort  # another transaction took one of a new customer's identities meanwhile
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


def _contact(members: list[Plan]) -> dict[str, Any]:
    """The first name, masked phone and masked e-mail the group's orders show, in order."""
    name = phone = email = None
    for plan in members:
        buyer, address = plan.norm.buyer, plan.norm.address
        name = name or display_name(buyer, address) or None
        phone = phone or identity.mask_phone(buyer.phone or address.phone)
        email = email or identity.mask_email(buyer.email)
    return {"name": name or "", "phone_masked": phone, "email_masked": email}


async def _orders(session: AsyncSession, channel: Channel, plans: list[Plan]) -> None:
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
        raise Abort  # a twin delivery of one of them got in first


async def _lines(session: AsyncSession, plans: list[Plan]) -> None:
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


async def _events(session: AsyncSession, channel: Channel, plans: list[Plan], actor: str) -> None:
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


async def _outbox(session: AsyncSession, plans: list[Plan], tenant_id: int) -> None:
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
    session: AsyncSession, channel: Channel, plans: list[Plan], floor: int, actor: str
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
        raise Abort  # short somewhere: ``reserve`` sends the orders it cannot serve to awaiting_stock
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
