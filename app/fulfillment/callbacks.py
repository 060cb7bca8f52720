"""What a location's callbacks do: a fulfilment order moves on, stock follows, the order follows.

* accepted / picked / packed: the fulfilment order's status (steps may be skipped, never undone);
* shipped: a shipment row, and the location's reservation and on hand consumed (``shipment`` movements);
* delivered: the shipment's delivery time (shipping it first if that callback never came); for a
  pick-up order, collected;
* ready_for_pickup (pick-up orders): packed, and the hold on the shelf starts (``pickups``);
* in_transit: a carrier scan of the shipment (``sla``: no scan by its SLA raises an alert);
* rejected: the units go back to the order's network reservation, the location's on hand drops by
  them (it said they are not there; ``adjust_stock: false`` keeps it), and ``route_order`` routes the
  lines again, never to that location.

The order follows its live fulfilment orders: some shipped → partially_shipped, all shipped (and no
line left unrouted) → shipped, all delivered → delivered. Every step is on the order's timeline.
A repeated callback (same status) changes nothing.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.errors import NotFound, UserError
from app.fulfillment import pickups, rows, sla
from app.fulfillment.connectors import Callback
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, FulfillmentOrder, Shipment
from app.fulfillment.open_lines import open_lines
from app.fulfillment.service import (
    EVENT_STATUS,
    OPEN,
    RANK,
    S,
)
from app.inventory import placement
from app.inventory import service as inventory
from app.inventory.models import Location, Reservation, ReservationStatus, StockLevel
from app.orders import service as orders
from app.orders import states, timeline
from app.orders.models import Order, OrderStatus

OS = OrderStatus
# The steps an order takes towards each status; a step the state machine does not allow is skipped.
_PATHS = {
    OS.partially_shipped: (OS.released, OS.partially_shipped),
    OS.shipped: (OS.released, OS.shipped),
    OS.delivered: (OS.released, OS.shipped, OS.delivered),
}


async def apply_callback(session: AsyncSession, location_id: int, cb: Callback) -> FulfillmentOrder:
    """Apply one authenticated callback of ``location_id``'s connector; returns the fulfilment order."""
    found = await session.scalar(
        select(FulfillmentOrder.id).where(
            FulfillmentOrder.id == cb.fulfillment_order_id, FulfillmentOrder.location_id == location_id
        )
    )
    if found is None:
        raise NotFound("fulfillment order", "fulfillment_order_id")
    order, fo = await rows.locked(session, found)
    location = await session.get(Location, location_id)
    actor = f"connector:{location.code}"[:200]
    if cb.event == "ready_for_pickup":
        if await pickups.ready(session, order, fo, location, actor):
            await follow(session, order, actor=actor)
        return fo
    if cb.event == "in_transit":
        await _scan(session, order, fo, location, cb, actor)
        return fo
    target = EVENT_STATUS[cb.event]
    current = S(fo.status)
    if current is target:
        return fo  # a repeated callback
    if current in CLOSED_WITHOUT_SHIPPING or current is S.delivered:
        raise UserError("ILLEGAL_TRANSITION", f"the fulfilment order is {current.value}", "event")
    if target is S.rejected:
        if current not in OPEN:
            raise UserError(
                "ILLEGAL_TRANSITION", f"a {current.value} fulfilment order cannot be rejected", "event"
            )
        await _reject(session, order, fo, location, cb, actor)
        return fo
    if RANK[target] < RANK[current]:
        raise UserError(
            "ILLEGAL_TRANSITION",
            f"the fulfilment order is already {current.value}, not {target.value}",
            "event",
        )
    if RANK[target] >= RANK[S.shipped] and RANK[current] < RANK[S.shipped]:
        await _ship(session, order, fo, location, cb, actor)
    if target is S.delivered:
        await session.execute(
            update(Shipment)
            .where(Shipment.fulfillment_order_id == fo.id, Shipment.delivered_at.is_(None))
            .values(delivered_at=func.now())
        )
        fo.status = S.delivered
        timeline.record(
            session,
            order,
            "fulfilment",
            actor=actor,
            message=f"delivered (from {location.name})",
            details={"fo": fo.id},
        )
    elif target is not S.shipped:
        fo.status = target
        timeline.record(
            session,
            order,
            "fulfilment",
            actor=actor,
            message=f"{location.name}: {cb.event}",
            details={"fo": fo.id, "status": target.value},
        )
    await session.flush()
    await follow(session, order, actor=actor)
    return fo


async def _ship(session, order: Order, fo: FulfillmentOrder, location: Location, cb: Callback, actor) -> None:
    ref = rows.reference(order.id)
    for material_id, qty in await rows.by_material(session, fo.id):
        await placement.ship_from_location(session, ref, material_id, fo.location_id, qty, actor=actor)
    carrier = cb.carrier or fo.carrier
    session.add(
        Shipment(
            fulfillment_order_id=fo.id,
            carrier=carrier,
            tracking_number=cb.tracking_number,
            parcels=cb.parcels,
            sla_due_at=await sla.due_at(session, carrier),
        )
    )
    fo.status, fo.carrier = S.shipped, carrier
    how = f" with {carrier} {cb.tracking_number or ''}".rstrip() if carrier else ""
    timeline.record(
        session,
        order,
        "shipment",
        actor=actor,
        message=f"shipped from {location.name}{how}",
        details={"fo": fo.id, "carrier": carrier, "tracking_number": cb.tracking_number},
    )


async def _scan(session, order: Order, fo: FulfillmentOrder, location: Location, cb: Callback, actor) -> None:
    """``in_transit``: the carrier scanned the parcel (the SLA alert will not fire)."""
    if S(fo.status) not in (S.shipped, S.delivered):
        raise UserError(
            "ILLEGAL_TRANSITION", f"the fulfilment order is {fo.status.value}, not shipped", "event"
        )
    shipment = await sla.record_scan(session, fo, cb.scanned_at)
    if shipment is None:
        raise UserError("ILLEGAL_TRANSITION", "the fulfilment order has no shipment", "event")
    timeline.record(
        session,
        order,
        "shipment",
        actor=actor,
        message=f"carrier scan of shipment {shipment.id} ({shipment.carrier or 'no carrier'},"
        f" {shipment.tracking_number or 'no tracking number'})",
        details={"fo": fo.id, "shipment": shipment.id, "scanned_at": shipment.last_scan_at.isoformat()},
    )
    await session.flush()


async def _reject(
    session, order: Order, fo: FulfillmentOrder, location: Location, cb: Callback, actor
) -> None:
    reason = cb.reason or "rejected by the location"
    ref = rows.reference(order.id)
    adjusted = []
    for material_id, qty in await rows.by_material(session, fo.id):
        await placement.return_to_network(
            session, ref, material_id, fo.location_id, qty, reason=f"rejected: {reason}", actor=actor
        )
        if not cb.adjust_stock:
            continue
        on_hand = await session.scalar(
            select(StockLevel.on_hand)
            .where(StockLevel.location_id == fo.location_id, StockLevel.material_id == material_id)
            .with_for_update()
        )
        cut = min(qty, on_hand or 0)
        if cut:
            await inventory.adjust(
                session,
                fo.location_id,
                material_id,
                -cut,
                reason=f"{location.name} rejected fulfilment order {fo.id}: {reason}"[:300],
                actor=actor,
            )
            adjusted.append([material_id, cut])
    fo.status, fo.reason = S.rejected, reason[:500]
    timeline.record(
        session,
        order,
        "fulfilment",
        actor=actor,
        message=f"{location.name} rejected fulfilment order {fo.id}: {reason}; routing its lines again",
        details={"fo": fo.id, "stock_adjusted": adjusted},
    )
    await outbox.enqueue(session, "route_order", tenant_id=session_tenant(session).id, order_id=order.id)
    await session.flush()


async def follow(session: AsyncSession, order: Order, *, actor: str) -> None:
    """Move the order to where its live fulfilment orders are (never backwards)."""
    statuses = (
        await session.scalars(
            select(FulfillmentOrder.status).where(
                FulfillmentOrder.order_id == order.id, FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING)
            )
        )
    ).all()
    if OS(order.status) is OS.routed and any(s is not S.pending for s in statuses):
        # The location answered before the release job recorded its hand-over.
        await orders.transition(session, order, OS.released, actor=actor, message="the location has it")
    shipped = [s for s in statuses if s in (S.shipped, S.delivered)]
    if not shipped:
        return
    complete = len(shipped) == len(statuses) and not await open_lines(session, order.id)
    if complete and all(s is S.delivered for s in statuses):
        target = OS.delivered
    elif complete:
        target = OS.shipped
    else:
        target = OS.partially_shipped
    for step in _PATHS[target]:
        current = OS(order.status)
        if current is not step and step in states.TRANSITIONS[current]:
            await orders.transition(session, order, step, actor=actor, message=f"fulfilment: {step.value}")
    if OS(order.status) in (OS.shipped, OS.delivered):
        await session.execute(
            update(Reservation)
            .where(
                Reservation.reference == rows.reference(order.id),
                Reservation.status == ReservationStatus.active,
            )
            .values(status=ReservationStatus.consumed)
        )
