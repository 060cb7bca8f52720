"""Merging orders: orders of one buyer to one address (the same ``fingerprint``), placed within the
policy's ``merge_window_minutes`` of each other on any channel or store, and not handed to a location
yet, are routed together and shipped together.

``route_order`` asks ``route_with_partners`` first. With partners, their fulfilment orders still
``pending`` are cancelled (units back to each order's network reservation) and every open line of the
group is given to the engine as ONE order (complete > nearest > priority on the union); each shipment
then becomes one fulfilment order per order at that location, and the connector payload names the
others to pack with (``fulfillment.service.payload_merge``). When the union cannot be routed whole
(partial, unfillable, needs split approval) nothing is merged and the order is routed alone, as before.

The group is an ``order_merges`` row that members point to (``orders.merge_id``); ``unmerge.py`` takes
an order out of it before anything of the group is handed over.

Locks: every routing of an order, and every unmerge, first takes a transaction advisory lock on the
buyer's fingerprint (``lock_buyer``), then order rows in id order, so two orders of one buyer routed at
once take turns instead of deadlocking on each other's rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import UserError
from app.fulfillment import open_lines
from app.fulfillment import service as fulfillment
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, FulfillmentOrder, FulfillmentStatus
from app.fulfillment.timeouts import STORE_ACCEPT_TIMEOUT
from app.inventory import placement
from app.orders import service as orders
from app.orders import states, timeline
from app.orders.models import Order, OrderMerge, OrderStatus
from app.routing import carriers, geo, inputs, policies, presale
from app.routing.engine import Decision, decide
from app.routing.models import RoutingDecision
from app.routing.policy import Policy

log = logging.getLogger(__name__)

ACTOR = "routing"
ROUNDS = 3  # as route_order: other orders may take the chosen stock meanwhile
# An order in these statuses has nothing at a location yet (routed: only pending fulfilment orders).
MERGEABLE = (OrderStatus.reserved, OrderStatus.routed)
NOT_HANDED_OVER = (FulfillmentStatus.pending, *CLOSED_WITHOUT_SHIPPING)


@dataclass
class Merged:
    merge_id: int
    decision_id: int
    fulfillment_order_ids: list[int] = field(default_factory=list)


class _NotTogether(Exception):
    """The union could not be routed whole: route the order alone."""


def _buyer_key(fingerprint: str):
    return func.hashtextextended(f"order-merge:{fingerprint}", 0)


async def lock_buyer(session: AsyncSession, order_id: int) -> None:
    """Serialise routing and unmerging of one buyer's orders (see the module docstring)."""
    fingerprint = await session.scalar(select(Order.fingerprint).where(Order.id == order_id))
    if fingerprint:
        await session.execute(select(func.pg_advisory_xact_lock(_buyer_key(fingerprint))))


def fulfilment_type(order: Order) -> str:
    kind = (order.extra or {}).get("fulfilment_type")
    return kind if kind in inputs.FULFILMENT_TYPES else "delivery"


async def handed_over(session: AsyncSession, order_ids: list[int]) -> set[int]:
    """Orders of ``order_ids`` with a fulfilment order already handed to its location."""
    rows = await session.scalars(
        select(FulfillmentOrder.order_id)
        .where(FulfillmentOrder.order_id.in_(order_ids), FulfillmentOrder.status.not_in(NOT_HANDED_OVER))
        .distinct()
    )
    return set(rows.all())


async def partners(session: AsyncSession, order: Order, window: timedelta) -> list[Order]:
    """The orders to route together with ``order`` (locked, id order): same buyer and address, same
    fulfilment type, placed within ``window`` of it (or already in its group), and nothing of the group
    they would bring along handed over yet nor waiting for presale stock."""
    if not order.fingerprint or order.unmerged_at is not None or OrderStatus(order.status) not in MERGEABLE:
        return []
    near = Order.placed_at.between(order.placed_at - window, order.placed_at + window) if window else None
    if order.merge_id is not None:
        same_group = Order.merge_id == order.merge_id
        near = same_group if near is None else near | same_group
    if near is None:
        return []
    found = (
        await session.execute(
            select(Order.id, Order.merge_id).where(
                Order.fingerprint == order.fingerprint, Order.id != order.id, near
            )
        )
    ).all()
    ids = {order_id for order_id, _ in found}
    # Whole groups join: members of a found order's group come along, wherever they were placed.
    groups = {merge_id for _, merge_id in found if merge_id is not None}
    if groups:
        ids |= set(
            (
                await session.scalars(
                    select(Order.id).where(Order.merge_id.in_(groups), Order.id != order.id)
                )
            ).all()
        )
    if not ids:
        return []
    rows = (
        await session.scalars(
            select(Order)
            .where(Order.id.in_(ids))
            .order_by(Order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    # Handed over, or waiting for presale stock (never routed whole, ``presale.py``): not merged.
    kept_out = await handed_over(session, [order.id, *ids])
    kept_out |= {r.id for r in rows if is_released(r)}
    kept_out |= await presale.with_backorder(session, [order.id, *ids])
    if order.id in kept_out:
        return []
    blocked = {r.merge_id for r in rows if r.merge_id is not None and r.id in kept_out}
    kind = fulfilment_type(order)
    return [
        r
        for r in rows
        if OrderStatus(r.status) in MERGEABLE
        and r.unmerged_at is None
        and r.id not in kept_out
        and fulfilment_type(r) == kind
        and (r.merge_id is None or r.merge_id not in blocked)
    ]


def is_released(order: Order) -> bool:
    """Handed over (or further): past the statuses before release, and not cancelled."""
    status = OrderStatus(order.status)
    return status not in states.BEFORE_RELEASE and status is not OrderStatus.cancelled


async def route_with_partners(
    session: AsyncSession,
    order: Order,
    place: geo.Place,
    policy: Policy,
    policy_record: dict,
    *,
    job_key: str | None,
    actor: str,
) -> Merged | None:
    """Route ``order`` together with its partners, or None when it has none or the union cannot be
    routed whole (the caller then routes it alone). ``policy_record`` is what decision rows store."""
    options = await policies.current_options(session)
    window = timedelta(minutes=options["merge_window_minutes"])
    others = await partners(session, order, window)
    if not others:
        return None
    members = [order, *others]
    for _ in range(ROUNDS):
        try:
            async with session.begin_nested():
                merged = await _route_together(session, members, place, policy, policy_record, job_key, actor)
            break
        except _NotTogether as exc:
            log.info("order %s: not merged, the orders cannot be routed whole together (%s)", order.id, exc)
            return None
        except UserError as exc:
            if exc.code != "INSUFFICIENT_STOCK":
                raise
            log.info("order %s: chosen stock moved while routing a merge (%s)", order.id, exc.message)
    else:
        return None
    delay = timedelta(minutes=options["release_delay_minutes"])
    tenant_id = session_tenant(session).id
    for fo_id in merged.fulfillment_order_ids:
        await outbox.enqueue(
            session, "release_fulfilment", tenant_id=tenant_id, delay=delay, fulfillment_order_id=fo_id
        )
    await session.flush()
    return merged


async def _route_together(
    session: AsyncSession, members: list[Order], place, policy: Policy, policy_record, job_key, actor
) -> Merged:
    order = members[0]
    numbers = {m.id: m.number for m in members}
    for m in members:
        others = ", ".join(numbers[x.id] for x in members if x.id != m.id)
        await fulfillment.cancel_open(
            session, m, reason=f"merged with {others}; routed together", actor=actor
        )
    union: list[open_lines.OpenLine] = []
    owner: dict[int, Order] = {}  # order line id -> order
    for m in members:
        for line in await open_lines.open_lines(session, m.id):
            union.append(line)
            owner[line.order_line_id] = m
    built = await inputs.build(session, order, union, place, with_services=False)
    excluded: dict[int, str] = {}
    for m in members:
        excluded.update(await inputs.rejected_by(session, m.id))
    built.candidates = [
        replace(c, status="rejected", status_reason=excluded[c.location_id])
        if c.location_id in excluded
        else c
        for c in built.candidates
    ]
    decision = decide(built.order, built.candidates, policy)
    if decision.status != "routed":
        raise _NotTogether(decision.status)

    group = await _group(session, members, actor)
    explanation = (
        f"Merged: {', '.join(numbers[m.id] for m in members)} (same buyer and address) routed together.\n"
        + decision.explain()
    )
    rows: dict[int, RoutingDecision] = {}
    for m in members:
        attempt = 1 + (
            await session.scalar(
                select(func.max(RoutingDecision.attempt)).where(RoutingDecision.order_id == m.id)
            )
            or 0
        )
        rows[m.id] = inputs.decision_row(
            m,
            attempt,
            {**policy_record, "merge_id": group.id},
            built,
            decision,
            place,
            job_key=job_key if m is order else None,
            explanation=explanation,
        )
        session.add(rows[m.id])
    await session.flush()
    fos = await _fulfil(session, members, owner, rows, decision, built)

    before = {m.id: m.merge_id for m in members}
    for m in members:
        m.merge_id = group.id
    summary = " ".join(explanation.splitlines()[:2])[:1000]
    for m in members:
        mates = [x for x in members if x.id != m.id]
        if before[m.id] is None or any(before[x.id] != before[m.id] for x in mates):
            timeline.record(
                session,
                m,
                "merged",
                actor=actor,
                message=f"merged with {', '.join(numbers[x.id] for x in mates)}: shipped together",
                details={"merge_id": group.id, "orders": [x.id for x in mates]},
            )
        details = {
            "decision_id": rows[m.id].id,
            "status": decision.status,
            "merge_id": group.id,
            "fulfillment_orders": [f.id for f in fos if f.order_id == m.id],
        }
        if OrderStatus.routed in states.TRANSITIONS[OrderStatus(m.status)]:
            await orders.transition(
                session, m, OrderStatus.routed, actor=actor, message=summary, details=details
            )
        else:
            timeline.record(
                session, m, "routing", actor=actor, message=f"re-routed: {summary}", details=details
            )
    await session.flush()
    return Merged(group.id, rows[order.id].id, [f.id for f in fos])


async def _group(session: AsyncSession, members: list[Order], actor: str) -> OrderMerge:
    """The group the members share: the oldest one some of them are in already (any other is
    dissolved into it), else a new one."""
    ids = sorted({m.merge_id for m in members if m.merge_id is not None})
    if not ids:
        group = OrderMerge(fingerprint=members[0].fingerprint, created_by=actor[:200])
        session.add(group)
        await session.flush()
        return group
    for other in ids[1:]:
        row = await session.get(OrderMerge, other)
        row.dissolved_at = func.now()
    return await session.get(OrderMerge, ids[0])


async def _fulfil(session, members, owner, rows, decision: Decision, built) -> list[FulfillmentOrder]:
    """Per shipment, one fulfilment order per order with lines in it; then each order's reservation
    pinned to the locations, in (location, material, order) order."""
    weights = policies.carrier_weights(await policies.active_row(session))
    choices = await carriers.choose_for_shipments(session, members[0], decision, built, weights=weights)
    pins: dict[tuple[int, int, int], int] = defaultdict(int)
    fos = []
    for shipment, choice in zip(decision.shipments, choices, strict=True):
        location_id = int(shipment.location_id)
        per_order: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for x in shipment.lines:
            line = built.lines[x.line_id]
            m = owner[line.order_line_id]
            per_order[m.id].append((line.order_line_id, line.material_id, x.quantity))
            pins[(location_id, line.material_id, m.id)] += x.quantity
        store = built.kinds.get(location_id) == "store"
        for m in members:
            if m.id not in per_order:
                continue
            fos.append(
                await fulfillment.create(
                    session,
                    order_id=m.id,
                    location_id=location_id,
                    decision_id=rows[m.id].id,
                    group=shipment.group,
                    carrier=choice.carrier,
                    accept_by=datetime.now(UTC) + STORE_ACCEPT_TIMEOUT if store else None,
                    lines=per_order[m.id],
                )
            )
    for (location_id, material_id, order_id), qty in sorted(pins.items()):
        await placement.allocate_to_location(
            session, f"order:{order_id}", material_id, location_id, qty, actor=ACTOR
        )
    for row in rows.values():
        carriers.record(row, choices)
    await session.flush()
    return fos
