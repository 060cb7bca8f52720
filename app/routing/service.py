"""Routing an order: load its inputs, run the engine with the tenant's policy, store the explained
decision, create one fulfilment order per shipment and pin the reservation to those locations.

``route_order`` is what the ``route_order`` job runs (reached only through the outbox). It locks the
order row, so two runs for one order take turns, and routes only lines not yet on a live fulfilment
order: a second run finds nothing left and returns ``already_routed``; after a rejection it routes the
rejected lines again. The same outbox message run twice is recognised by ``job_key``.

Outcomes other than ``routed`` keep the order where it is (reserved/presale, or released when only a
re-route failed) with an event on its timeline saying why:

* ``unlocated``: the delivery address matches no province, city or district (``geo``); an
  operator corrects the address and asks for routing again (``redrive.request_routing``).
* ``partial`` / ``unfillable`` / ``needs_split_approval``: the engine's statuses; nothing is allocated
  (a partial plan would pin stock for an order that cannot ship whole anyway). ``needs_split_approval``
  also holds the order (``split_approval.py``): releasing that hold approves the split.

Orders of the same buyer and address are routed together when the policy's merge window allows
(``merge.py``); ``release_delay_minutes`` delays hand-over to give them time to meet.
* ``awaiting_presale_stock``: part of the order is backordered (presale) and nothing else is left to
  route: ``app.orders.waiting`` fills the backorder when stock arrives and enqueues route_order again.
  With the policy option ``ship_in_stock_part_of_presale`` (default on) the lines in stock are routed
  first (``routed_in_stock_part``, the order becomes ``routed`` and ships them) and only the lines
  waiting for stock wait (``presale.py``); with it off the whole order waits.
* ``stock_moved``: other orders took the chosen stock three times in a row: retried in a minute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import NotFound, UserError
from app.fulfillment import open_lines
from app.fulfillment import service as fulfillment
from app.fulfillment.connectors import RELEASE_EVENT
from app.fulfillment.models import (
    CLOSED_WITHOUT_SHIPPING,
    ConnectorDelivery,
    FulfillmentOrder,
    FulfillmentStatus,
)
from app.fulfillment.timeouts import STORE_ACCEPT_TIMEOUT
from app.inventory import placement
from app.orders import service as orders
from app.orders import states, timeline
from app.orders.models import Order, OrderStatus
from app.routing import carriers, geo, inputs, merge, policies, presale, split_approval
from app.routing.engine import Decision, decide
from app.routing.models import RoutingDecision
from app.routing.policies import get_policy

log = logging.getLogger(__name__)

ACTOR = "routing"
JOB = "route_order"
RELEASE_JOB = "release_fulfilment"
ROUTABLE = frozenset(
    {
        OrderStatus.reserved,
        OrderStatus.presale,
        OrderStatus.routed,
        OrderStatus.released,
        OrderStatus.partially_shipped,
    }
)
STORE_ACCEPT = STORE_ACCEPT_TIMEOUT  # a store must accept a fulfilment order within this (timeouts.py)
ROUNDS = 3  # decide + allocate attempts when other orders take the chosen stock meanwhile
RETRY_AFTER = timedelta(minutes=1)


@dataclass
class RouteOutcome:
    status: str
    decision_id: int | None = None
    fulfillment_order_ids: list[int] = field(default_factory=list)


async def route_order(
    session: AsyncSession, order_id: int, *, job_key: str | None = None, actor: str = ACTOR
) -> RouteOutcome:
    await merge.lock_buyer(session, order_id)  # before the row: see merge.py (locks)
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None:
        return RouteOutcome("no_order")
    if job_key and await session.scalar(select(RoutingDecision.id).where(RoutingDecision.job_key == job_key)):
        return RouteOutcome("duplicate")
    if OrderStatus(order.status) not in ROUTABLE:
        return RouteOutcome(f"not_routable:{order.status.value}")
    part = await presale.routable_part(session, order.id, await open_lines.open_lines(session, order.id))
    if not part.now:
        if part.waiting:
            return await _awaiting_presale_stock(session, order, part, actor)
        return await _routed_before(session, order, actor)
    lines = part.now
    attempt = 1 + (
        await session.scalar(
            select(func.max(RoutingDecision.attempt)).where(RoutingDecision.order_id == order.id)
        )
        or 0
    )
    place = geo.locate_address(order.address or {})
    if place is None:
        return await _unlocated(session, order, attempt, job_key, actor)
    policy = await get_policy(session)
    approved = await split_approval.approval(session, order.id)
    if approved is not None:  # a split approved by releasing the split_approval hold: this attempt only
        approval = split_approval.record(approved, policy)
        policy = split_approval.lifted(policy)
    policy_record = policy.to_dict()  # as decided with (limit lifted), and who approved
    if approved is not None:
        policy_record[split_approval.RECORD_KEY] = approval
    merged = await merge.route_with_partners(
        session, order, place, policy, policy_record, job_key=job_key, actor=actor
    )
    if merged is not None:
        return RouteOutcome("routed", merged.decision_id, merged.fulfillment_order_ids)
    first = not await session.scalar(select(FulfillmentOrder.id).where(FulfillmentOrder.order_id == order.id))
    for _ in range(ROUNDS):
        built = await inputs.build(session, order, lines, place, with_services=first)
        decision = decide(built.order, built.candidates, policy)
        explanation = decision.explain()
        if part.waiting:
            explanation += f"\nWaiting for presale stock, routed when it arrives: {part.summary}."
        try:
            async with session.begin_nested():
                row = inputs.decision_row(
                    order,
                    attempt,
                    policy_record,
                    built,
                    decision,
                    place,
                    job_key=job_key,
                    explanation=explanation,
                )
                session.add(row)
                await session.flush()
                fos = (
                    await _fulfil(session, order, row, decision, built) if decision.status == "routed" else []
                )
            break
        except UserError as exc:
            if exc.code != "INSUFFICIENT_STOCK":
                raise
            log.info("order %s: chosen stock moved while routing (%s); deciding again", order.id, exc.message)
    else:
        return await _stock_moved(
            session, order, attempt, policy_record, built, decision, job_key, place, actor
        )
    summary = _summary(row.explanation)
    details = {"decision_id": row.id, "status": decision.status, "fulfillment_orders": [f.id for f in fos]}
    if part.waiting:  # the in-stock part only: say so first, the rest waits for its stock
        summary = f"in-stock part; waiting for presale stock: {part.summary}. {summary}"[:1000]
        details["waiting_lines"] = sorted({x.order_line_id for x in part.waiting})
    if decision.status != "routed":
        timeline.record(
            session,
            order,
            "routing",
            actor=actor,
            message=f"not routed ({decision.status}): {summary}",
            details=details,
        )
        if decision.status == "needs_split_approval":
            await split_approval.hold_for_approval(session, order, summary, actor=actor)
        await session.flush()
        return RouteOutcome(decision.status, row.id)
    current = OrderStatus(order.status)
    if OrderStatus.routed in states.TRANSITIONS[current]:
        await orders.transition(
            session, order, OrderStatus.routed, actor=actor, message=summary, details=details
        )
    else:
        timeline.record(
            session, order, "routing", actor=actor, message=f"re-routed: {summary}", details=details
        )
    # A release delay (policy option) gives orders of the same buyer time to be merged before hand-over.
    delay = timedelta(minutes=(await policies.current_options(session))["release_delay_minutes"])
    for fo in fos:
        await outbox.enqueue(
            session,
            RELEASE_JOB,
            tenant_id=session_tenant(session).id,
            delay=delay,
            fulfillment_order_id=fo.id,
        )
    await session.flush()
    return RouteOutcome("routed_in_stock_part" if part.waiting else "routed", row.id, [f.id for f in fos])


async def _awaiting_presale_stock(
    session: AsyncSession, order: Order, part: presale.Part, actor: str
) -> RouteOutcome:
    """Nothing routable before presale stock arrives (``presale.py``). An order put on hold after its
    in-stock part was routed comes back here as reserved/presale: that part goes on as it was."""
    if part.split:
        message = f"waiting for presale stock: {part.summary} routed when it arrives"
    else:
        message = "waiting for presale stock: routed once every unit is in stock"
    timeline.record(session, order, "routing", actor=actor, message=message)
    held = OrderStatus(order.status) in (OrderStatus.reserved, OrderStatus.presale)
    if held and await has_live_fulfilment(session, order.id):
        return await _routed_before(session, order, actor)
    return RouteOutcome("awaiting_presale_stock")


async def has_live_fulfilment(session: AsyncSession, order_id: int) -> bool:
    """Some fulfilment order of the order is live (not rejected or cancelled)."""
    query = select(FulfillmentOrder.id).where(
        FulfillmentOrder.order_id == order_id, FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING)
    )
    return await session.scalar(query.limit(1)) is not None


async def _routed_before(session: AsyncSession, order: Order, actor: str) -> RouteOutcome:
    """Every line is on a live fulfilment order already. Usually a second run: nothing to do. But an
    order held after routing comes back here as reserved when the hold is released: it is routed
    again as it was, and what was not handed over yet is released."""
    if OrderStatus(order.status) not in (OrderStatus.reserved, OrderStatus.presale):
        return RouteOutcome("already_routed")
    pending = await not_handed_over(session, order.id)
    await orders.transition(
        session, order, OrderStatus.routed, actor=actor, message="routed as before (fulfilment orders kept)"
    )
    for fo_id, attempts in pending:
        await hand_over_again(session, fo_id, attempts)
    await session.flush()
    return RouteOutcome("routed_as_before", None, [fo_id for fo_id, _ in pending])


async def not_handed_over(session: AsyncSession, order_id: int) -> list[tuple[int, int]]:
    """The order's fulfilment orders still ``pending`` (never handed to their location), each with the
    attempts its release delivery has made (0: none yet)."""
    rows = await session.execute(
        select(FulfillmentOrder.id, func.coalesce(ConnectorDelivery.attempts, 0))
        .outerjoin(
            ConnectorDelivery,
            (ConnectorDelivery.fulfillment_order_id == FulfillmentOrder.id)
            & (ConnectorDelivery.event == RELEASE_EVENT),
        )
        .where(FulfillmentOrder.order_id == order_id, FulfillmentOrder.status == FulfillmentStatus.pending)
        .order_by(FulfillmentOrder.id)
    )
    return [(fo_id, attempts) for fo_id, attempts in rows.all()]


async def hand_over_again(session: AsyncSession, fo_id: int, attempts: int) -> None:
    """Enqueue the next attempt of a fulfilment order's release delivery (an attempt made before counts,
    so a job still running for the same attempt finds it done: see ``fulfillment.release``)."""
    more = {"attempt": attempts + 1} if attempts else {}
    await outbox.enqueue(
        session, RELEASE_JOB, tenant_id=session_tenant(session).id, fulfillment_order_id=fo_id, **more
    )


def _summary(explanation: str) -> str:
    """The timeline's line: the outcome and the winner (the explanation's first two lines)."""
    return " ".join(explanation.splitlines()[:2])[:1000]


async def _fulfil(
    session: AsyncSession, order: Order, row: RoutingDecision, decision: Decision, built
) -> list:
    """One fulfilment order per shipment; then the reservation pinned to the locations, in
    (location, material) order (see ``placement.allocate_to_location``). Each gets the carrier chosen for
    it (``carriers``), kept with its explanation in the decision row."""
    weights = policies.carrier_weights(await policies.active_row(session))
    choices = await carriers.choose_for_shipments(session, order, decision, built, weights=weights)
    pins: dict[tuple[int, int], int] = defaultdict(int)
    fos = []
    for shipment, choice in zip(decision.shipments, choices, strict=True):
        location_id = int(shipment.location_id)
        lines = []
        for x in shipment.lines:
            line = built.lines[x.line_id]
            lines.append((line.order_line_id, line.material_id, x.quantity))
            pins[(location_id, line.material_id)] += x.quantity
        store = built.kinds.get(location_id) == "store"
        fos.append(
            await fulfillment.create(
                session,
                order_id=order.id,
                location_id=location_id,
                decision_id=row.id,
                group=shipment.group,
                carrier=choice.carrier,
                accept_by=datetime.now(UTC) + STORE_ACCEPT if store else None,
                lines=lines,
            )
        )
    reference = orders.reservation_reference(order)
    for (location_id, material_id), qty in sorted(pins.items()):
        await placement.allocate_to_location(session, reference, material_id, location_id, qty, actor=ACTOR)
    carriers.record(row, choices)
    await session.flush()
    return fos


async def _unlocated(session, order: Order, attempt: int, job_key, actor) -> RouteOutcome:
    address = order.address or {}
    why = (
        f"the delivery address could not be located: province {address.get('province')!r}, city"
        f" {address.get('city')!r}, district {address.get('district')!r} are not known divisions"
    )
    row = RoutingDecision(
        order_id=order.id,
        attempt=attempt,
        status="unlocated",
        policy={},
        inputs={},
        decision={"status": "unlocated", "reason": why},
        explanation=f"Order {order.number}: not routed: {why}.",
        job_key=job_key,
    )
    session.add(row)
    await session.flush()
    timeline.record(
        session,
        order,
        "routing",
        actor=actor,
        message="address could not be located; correct it and route again",
        details={"decision_id": row.id, "status": "unlocated"},
    )
    await session.flush()
    return RouteOutcome("unlocated", row.id)


async def _stock_moved(
    session, order, attempt, policy, built, decision, job_key, place, actor
) -> RouteOutcome:
    row = inputs.decision_row(order, attempt, policy, built, decision, place, job_key=job_key)
    row.status = "stock_moved"
    session.add(row)
    await session.flush()
    timeline.record(
        session,
        order,
        "routing",
        actor=actor,
        message=f"other orders took the chosen stock while routing; trying again in {RETRY_AFTER}",
        details={"decision_id": row.id, "status": row.status},
    )
    await outbox.enqueue(
        session, JOB, tenant_id=session_tenant(session).id, delay=RETRY_AFTER, order_id=order.id
    )
    await session.flush()
    return RouteOutcome("stock_moved", row.id)


async def decisions_of(session: AsyncSession, order_id: int) -> list[RoutingDecision]:
    if await session.get(Order, order_id) is None:
        raise NotFound("order", "orderId")
    query = (
        select(RoutingDecision).where(RoutingDecision.order_id == order_id).order_by(RoutingDecision.attempt)
    )
    return list((await session.scalars(query)).all())
