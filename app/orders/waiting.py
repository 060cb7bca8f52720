"""Orders waiting for stock go on by themselves once it arrives.

Two kinds of order wait: ``awaiting_stock`` (reserving failed: nothing is held) and backordered ones
(``presale``, or ``reserved`` after leaving awaiting_stock with presale lines: part of the order is
reserved against future stock and routing waits for it; or ``routed``/``released``/``partially_shipped``
when the routing policy shipped the in-stock part first, see ``app.routing.presale``).
``resume_waiting`` takes them as one queue, oldest placed first (then lowest id): an awaiting order is
reserved again by the very code ``proceed`` runs, a backordered one has its backorder filled
(``reservations.fill_backorder``); either way it becomes reserved (one past routing keeps its status),
with a timeline event, and route_order is enqueued through the outbox, which routes what waited.

**Fairness: first placed, first served, per material.** When an order cannot be served, the material
it was short of is *blocked* for the rest of the run (and the follow-up pages): no later order may take
that material, even a smaller quantity that would fit, or a stream of small orders could starve a big
old one forever. Only the material that was short is blocked: an order short of Y does not hold X back
from later orders, or one order waiting for a material that never comes would stop every order sharing
any material with it. A shortage that comes from the channel's own rules (its pool, the low-stock floor
for non-core channels) blocks the material for that channel only. Two runs at the same time (the
debounced job, a follow-up, the operators' mutation) are safe but only roughly FIFO between them.

**Every order in its own transaction.** Reserving locks the network rows of the order's materials in
material order; holding those of several orders at once would deadlock with live orders reserving in
their own material order, and block them for the whole run. So the caller's session only reads the
queue (and enqueues the follow-up); each order is locked, re-checked and moved in a short transaction
of its own. No oversell under any concurrency: every unit is taken by ``reservations``' conditional
UPDATE. Idempotent: an order that moved on is simply no longer in the queue.

**Bounded work.** A run looks at PAGE orders at most; if the queue goes on, a follow-up job continues
after the last one, carrying the blocked materials so fairness holds across pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.catalog.models import Product
from app.db import get_db, session_tenant
from app.errors import UserError
from app.inventory import reservations
from app.inventory.models import NetworkStock, Reservation, ReservationStatus
from app.orders import service as orders
from app.orders import timeline
from app.orders.models import Order, OrderLine, OrderLineMaterial, OrderStatus

log = logging.getLogger(__name__)

JOB = "resume_waiting_orders"
ACTOR = "stock"
PAGE = 500
# Backordered orders: presale/reserved wait whole; routed and later ones had their in-stock part routed
# first (``app.routing.presale``), the lines waiting for the backorder are routed once it is filled.
BACKORDER_STATUSES = (
    OrderStatus.presale,
    OrderStatus.reserved,
    OrderStatus.routed,
    OrderStatus.released,
    OrderStatus.partially_shipped,
)


@dataclass
class Candidate:
    order_id: int
    status: OrderStatus
    placed_at: datetime
    channel_id: int
    needs: dict[int, tuple[int, bool]] = field(default_factory=dict)  # material -> (units, may go short)


@dataclass
class Blocked:
    """Materials no later order may take in this run: short for everyone, or for one channel."""

    materials: set[int] = field(default_factory=set)
    per_channel: set[tuple[int, int]] = field(default_factory=set)

    def stops(self, c: Candidate) -> bool:
        return any(m in self.materials or (c.channel_id, m) in self.per_channel for m in c.needs)

    def to_kwargs(self) -> dict:
        return {
            "blocked": sorted(self.materials),
            "blocked_channels": sorted([c, m] for c, m in self.per_channel),
        }


@dataclass
class Resumed:
    order_ids: list[int] = field(default_factory=list)  # went on to routing, in the order served
    examined: int = 0
    blocked: Blocked = field(default_factory=Blocked)
    follow_up: bool = False  # the queue goes on: a job continues after this page

    @property
    def count(self) -> int:
        return len(self.order_ids)


def reference_of(order_id) -> object:
    return func.concat("order:", order_id)


def _backordered(material_ids: list[int] | None):
    query = select(Reservation.id).where(
        Reservation.reference == reference_of(Order.id),
        Reservation.status == ReservationStatus.active,
        Reservation.backordered > 0,
    )
    if material_ids is not None:
        query = query.where(Reservation.material_id.in_(material_ids))
    return exists(query)


async def waiting_queue(
    session: AsyncSession,
    material_ids: list[int] | None = None,
    *,
    after: tuple[datetime, int] | None = None,
    limit: int = PAGE,
) -> list[Candidate]:
    """The waiting orders, oldest placed first, each with what it still needs per material (awaiting:
    its lines; backordered: the backordered units). With ``material_ids``, only orders needing one."""
    awaiting = Order.status == OrderStatus.awaiting_stock
    if material_ids is not None:
        awaiting = and_(
            awaiting,
            exists(
                select(OrderLineMaterial.line_id).where(
                    OrderLineMaterial.order_id == Order.id, OrderLineMaterial.material_id.in_(material_ids)
                )
            ),
        )
    backordered = and_(Order.status.in_(BACKORDER_STATUSES), _backordered(material_ids))
    query = select(Order.id, Order.status, Order.placed_at, Order.channel_id).where(
        or_(awaiting, backordered)
    )
    if after is not None:
        query = query.where(tuple_(Order.placed_at, Order.id) > tuple_(*after))
    rows = (await session.execute(query.order_by(Order.placed_at, Order.id).limit(limit))).all()
    queue = [Candidate(r.id, OrderStatus(r.status), r.placed_at, r.channel_id) for r in rows]
    by_id = {c.order_id: c for c in queue}
    waiting_ids = [c.order_id for c in queue if c.status is OrderStatus.awaiting_stock]
    if waiting_ids:
        short_ok = func.bool_and(or_(Product.presale, Product.allow_backorder))
        needs = await session.execute(
            select(
                OrderLineMaterial.order_id,
                OrderLineMaterial.material_id,
                func.sum(OrderLineMaterial.quantity),
                short_ok,
            )
            .join(OrderLine, OrderLine.id == OrderLineMaterial.line_id)
            .join(Product, Product.id == OrderLine.product_id)
            .where(OrderLineMaterial.order_id.in_(waiting_ids))
            .group_by(OrderLineMaterial.order_id, OrderLineMaterial.material_id)
        )
        for order_id, material_id, units, may_go_short in needs:
            by_id[order_id].needs[material_id] = (int(units), bool(may_go_short))
    backorder_refs = {f"order:{c.order_id}": c for c in queue if c.status is not OrderStatus.awaiting_stock}
    if backorder_refs:
        rows = await session.execute(
            select(Reservation.reference, Reservation.material_id, Reservation.backordered).where(
                Reservation.reference.in_(list(backorder_refs)),
                Reservation.status == ReservationStatus.active,
                Reservation.backordered > 0,
            )
        )
        for reference, material_id, units in rows:
            backorder_refs[reference].needs[material_id] = (units, False)
    return queue


async def resume_waiting(
    session: AsyncSession,
    material_ids: list[int] | None = None,
    *,
    actor: str = ACTOR,
    after: tuple[datetime, int] | None = None,
    blocked: Blocked | None = None,
    page: int = PAGE,
) -> Resumed:
    """Serve the waiting orders that stock now covers, first placed first (see the module's doc).

    ``session`` is the caller's tenant session: it reads the queue and, when the queue goes on past
    ``page`` orders, enqueues the follow-up job; every order is served in a transaction of its own,
    committed before the next one. ``material_ids`` narrows the queue to orders needing one of them."""
    tenant = session_tenant(session)
    result = Resumed(blocked=blocked or Blocked())
    queue = await waiting_queue(session, material_ids, after=after, limit=page + 1)
    more, queue = len(queue) > page, queue[:page]
    materials = sorted({m for c in queue for m in c.needs})
    available = (
        dict(
            (
                await session.execute(
                    select(NetworkStock.material_id, reservations.AVAILABLE).where(
                        NetworkStock.material_id.in_(materials)
                    )
                )
            ).all()
        )
        if materials
        else {}
    )
    for candidate in queue:
        result.examined += 1
        if result.blocked.stops(candidate):
            continue
        short = [
            m
            for m, (units, may_go_short) in sorted(candidate.needs.items())
            if not may_go_short and units > available.get(m, 0)
        ]
        if short:  # known short from the figures read above: no need to try
            result.blocked.materials.add(short[0])
            continue
        async with get_db().tenant_session(tenant) as own:
            outcome = await _serve(own, candidate, actor)
        if isinstance(outcome, reservations.InsufficientStock):
            _block(result.blocked, candidate, outcome.material_id, available)
            continue
        if outcome:
            result.order_ids.append(candidate.order_id)
            for m, (units, _) in candidate.needs.items():
                available[m] = available.get(m, 0) - units
    if more and queue:
        last = queue[-1]
        result.follow_up = True
        await outbox.enqueue(
            session,
            JOB,
            tenant_id=tenant.id,
            material_ids=material_ids,
            after=[last.placed_at.isoformat(), last.order_id],
            **result.blocked.to_kwargs(),
        )
    if result.order_ids:
        log.info("resumed %d waiting order(s) of tenant %s", result.count, tenant.id)
    return result


def _block(blocked: Blocked, candidate: Candidate, material_id: int, available: dict[int, int]) -> None:
    """Reserving failed on ``material_id`` although the figures read earlier said it might not: short
    for everyone if the network has too little by now, else the channel's own rules refused."""
    units = candidate.needs.get(material_id, (0, False))[0]
    if units > available.get(material_id, 0):
        blocked.materials.add(material_id)
    else:
        blocked.per_channel.add((candidate.channel_id, material_id))


async def _serve(
    session: AsyncSession, candidate: Candidate, actor: str
) -> bool | reservations.InsufficientStock:
    """One order in its own transaction: True if it went on to routing, False if it had moved on, the
    InsufficientStock error (everything rolled back) if stock was short."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == candidate.order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None or OrderStatus(order.status) is not candidate.status:
        return False
    awaiting = order.status is OrderStatus.awaiting_stock
    try:
        async with session.begin_nested():  # all of this order's changes, or none of them
            if awaiting:
                reserved = await orders.reserve_stock(session, order, actor=actor)
                await orders.hand_to_routing(session, order, reserved, actor=actor)
            else:
                reference = orders.reservation_reference(order)
                filled = await reservations.fill_backorder(session, reference, actor=actor)
    except reservations.InsufficientStock as exc:
        return exc
    except UserError as exc:
        # Not a matter of stock (a product deactivated since, a released reservation): an operator's
        # case. Skipped without blocking anything, so one such order cannot stop the queue.
        log.warning("order %s cannot be resumed: %s %s", order.id, exc.code, exc.message)
        return False
    if awaiting:
        return True
    if not filled:
        return False
    message = f"presale stock arrived: {filled} backordered unit(s) now reserved; routing what waited"
    if order.status is OrderStatus.presale:
        await orders.transition(session, order, OrderStatus.reserved, actor=actor, message=message)
    else:
        timeline.record(session, order, "stock", actor=actor, message=message)
    await outbox.enqueue(session, "route_order", tenant_id=session_tenant(session).id, order_id=order.id)
    await session.flush()
    return True


def blocked_from(kwargs_blocked: list[int] | None, kwargs_channels: list[list[int]] | None) -> Blocked:
    return Blocked(set(kwargs_blocked or ()), {(c, m) for c, m in kwargs_channels or ()})
