"""Fulfilment orders: created by routing, handed to the location (``release``), moved on by the
location's callbacks (``apply_callback``), and the order's status following them.

Lock order, everywhere: the order row, then its fulfilment orders. ``release`` holds only its delivery
row while it waits on the connector's HTTP answer, so a location calling back at once is not blocked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material
from app.db import session_tenant
from app.fulfillment import connectors, notices, rows, timeouts
from app.fulfillment.models import (
    CLOSED_WITHOUT_SHIPPING,
    ConnectorDelivery,
    DeliveryStatus,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentStatus,
    LocationConnector,
)
from app.inventory import placement
from app.inventory.models import Location
from app.orders import service as orders
from app.orders import timeline
from app.orders.models import Order, OrderStatus

ACTOR = "fulfilment"
S = FulfillmentStatus
# Forward order of a fulfilment order's life; a callback may skip steps, never go back.
RANK = {S.pending: 0, S.assigned: 1, S.accepted: 2, S.picking: 3, S.packed: 4, S.shipped: 5, S.delivered: 6}
EVENT_STATUS = {
    "accepted": S.accepted,
    "picked": S.picking,
    "packed": S.packed,
    "shipped": S.shipped,
    "delivered": S.delivered,
    "rejected": S.rejected,
}
OPEN = (S.pending, S.assigned, S.accepted, S.picking, S.packed)
# Order statuses in which a fulfilment order may be handed to its location.
RELEASABLE = (OrderStatus.routed, OrderStatus.released, OrderStatus.partially_shipped)


async def create(
    session: AsyncSession,
    *,
    order_id: int,
    location_id: int,
    decision_id: int | None,
    group: str,
    carrier: str | None,
    accept_by: datetime | None,
    lines: list[tuple[int, int, int]],
) -> FulfillmentOrder:
    """A pending fulfilment order with its ``(order line id, material id, quantity)`` lines."""
    fo = FulfillmentOrder(
        order_id=order_id,
        location_id=location_id,
        decision_id=decision_id,
        status=S.pending,
        group=group,
        carrier=carrier,
        accept_by=accept_by,
    )
    session.add(fo)
    await session.flush()
    session.add_all(
        FulfillmentOrderLine(fulfillment_order_id=fo.id, order_line_id=line, material_id=m, quantity=q)
        for line, m, q in lines
    )
    await session.flush()
    return fo


async def _location_name(session: AsyncSession, location_id: int) -> str:
    return await session.scalar(select(Location.name).where(Location.id == location_id)) or str(location_id)


# ---- release ---------------------------------------------------------------------------------------


async def payload_merge(session: AsyncSession, fo: FulfillmentOrder, order: Order) -> dict | None:
    """For the connector payload: the merge and the fulfilment orders at the same location to pack
    with this one (None when the order is not merged)."""
    if order.merge_id is None:
        return None
    tenant_id = session_tenant(session).id
    rows = (
        await session.execute(
            select(FulfillmentOrder.id, Order.number)
            .join(Order, Order.id == FulfillmentOrder.order_id)
            .where(
                Order.merge_id == order.merge_id,
                FulfillmentOrder.location_id == fo.location_id,
                FulfillmentOrder.id != fo.id,
                FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING),
            )
            .order_by(FulfillmentOrder.id)
        )
    ).all()
    return {
        "id": connectors.global_id("OrderMerge", tenant_id, order.merge_id),
        "ship_with": [connectors.global_id("FulfillmentOrder", tenant_id, fo_id) for fo_id, _ in rows],
        "orders": sorted({number for _, number in rows}),
    }


async def release_payload(session: AsyncSession, fo: FulfillmentOrder, order: Order) -> dict:
    tenant_id = session_tenant(session).id
    location = await session.get(Location, fo.location_id)
    rows = (
        await session.execute(
            select(Material.code, Material.name, func.sum(FulfillmentOrderLine.quantity))
            .join(Material, Material.id == FulfillmentOrderLine.material_id)
            .where(FulfillmentOrderLine.fulfillment_order_id == fo.id)
            .group_by(Material.code, Material.name)
            .order_by(Material.code)
        )
    ).all()
    location_gid = connectors.global_id("Location", tenant_id, fo.location_id)
    merge = await payload_merge(session, fo, order)  # merged orders: what to pack together
    return {
        "event": connectors.RELEASE_EVENT,
        "fulfillment_order": {
            "id": connectors.global_id("FulfillmentOrder", tenant_id, fo.id),
            "group": fo.group,
            "carrier": fo.carrier,
            "accept_by": fo.accept_by.isoformat() if fo.accept_by else None,
        },
        "order": {
            "id": connectors.global_id("Order", tenant_id, order.id),
            "number": order.number,
            "placed_at": order.placed_at.isoformat(),
            "buyer_note": order.buyer_note,
        },
        "location": {"id": location_gid, "code": location.code if location else None},
        "lines": [{"material_code": c, "material_name": n, "quantity": int(q)} for c, n, q in rows],
        "address": dict(order.address or {}),
        "callback_path": f"/webhooks/fulfilment/{location_gid}",
        **({"merge": merge} if merge else {}),
    }


async def _assigned(session: AsyncSession, order: Order, fo: FulfillmentOrder, *, message: str) -> None:
    """The location has the fulfilment order: it is assigned, and the order released."""
    if fo.status is S.pending:
        fo.status = S.assigned
        await timeouts.schedule_accept_timeout(session, fo)
    timeline.record(session, order, "fulfilment", actor=ACTOR, message=message, details={"fo": fo.id})
    if OrderStatus(order.status) is OrderStatus.routed:
        await orders.transition(session, order, OrderStatus.released, actor=ACTOR, message=message)
    await session.flush()


async def release(session: AsyncSession, fo_id: int, *, attempt: int | None = None) -> str:
    """Hand a fulfilment order to its location. Idempotent on its delivery row: a delivery already sent,
    or a retry whose attempt was already made, does nothing. Returns what happened (for logs/tests)."""
    fo = await session.get(FulfillmentOrder, fo_id)
    if fo is None:
        return "no_fulfillment_order"
    if fo.status in CLOSED_WITHOUT_SHIPPING:
        return "closed"
    order_status = await session.scalar(select(Order.status).where(Order.id == fo.order_id))
    if order_status is OrderStatus.cancelled:
        order, fo = await rows.locked(session, fo_id)
        await cancel_open(session, order, reason="the order was cancelled before release", actor=ACTOR)
        return "order_cancelled"
    if order_status not in RELEASABLE:
        return f"order_{order_status.value}"  # e.g. held: routing releases it again when the hold ends
    connector = await session.get(LocationConnector, fo.location_id)
    name = await _location_name(session, fo.location_id)
    if connector is None or not connector.active:
        order, fo = await rows.locked(session, fo_id)
        if fo.status is S.pending:
            await _assigned(session, order, fo, message=f"assigned to {name} (no connector: fulfil by hand)")
        return "no_connector"
    await session.execute(
        insert(ConnectorDelivery)
        .values(
            fulfillment_order_id=fo.id,
            location_id=fo.location_id,
            event=connectors.RELEASE_EVENT,
            url=connector.url,
            payload={},
            status=DeliveryStatus.pending,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["fulfillment_order_id", "event"])
    )
    delivery = await session.scalar(
        select(ConnectorDelivery)
        .where(
            ConnectorDelivery.fulfillment_order_id == fo.id,
            ConnectorDelivery.event == connectors.RELEASE_EVENT,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if delivery.status is DeliveryStatus.sent:
        return "already_sent"
    if delivery.attempts >= (attempt or 1):
        return "duplicate"  # this attempt ran already; its retry is scheduled
    if not delivery.payload:
        order = await session.get(Order, fo.order_id)
        delivery.payload = {"delivery_id": delivery.id, **await release_payload(session, fo, order)}
    result, delay = await notices.attempt_delivery(
        session, delivery, connector, "release_fulfilment", fulfillment_order_id=fo.id
    )
    order, fo = await rows.locked(session, fo_id)
    if result.ok:
        await _assigned(session, order, fo, message=f"released to {name} (HTTP {result.status_code})")
        return "sent"
    details = {"fo": fo.id, "delivery": delivery.id, "attempt": delivery.attempts, "error": result.error}
    if delay is not None:
        message = (
            f"could not reach {name}'s connector (attempt {delivery.attempts}): {result.error};"
            f" retrying in {int(delay.total_seconds() // 60)} min"
        )
    else:
        message = f"gave up reaching {name}'s connector after {delivery.attempts} attempts: {result.error}"
    timeline.record(session, order, "fulfilment", actor=ACTOR, message=message[:2000], details=details)
    await session.flush()
    return "failed"


async def cancel_cancelled_order(session: AsyncSession, order_id: int, reason: str, actor: str) -> int:
    """The ``cancel_fulfilment`` job: cancel the open fulfilment orders of an order that was cancelled
    (an order cancelled and no longer so, impossible today, keeps them)."""
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.status is not OrderStatus.cancelled:
        return 0
    return await cancel_open(session, order, reason=reason, actor=actor)


async def cancel_open(session: AsyncSession, order: Order, *, reason: str, actor: str) -> int:
    """Cancel the order's fulfilment orders not shipped yet, their units back to the network reservation
    (``reservations.release`` gives those back, before or after this: the sums agree either way).
    Returns how many were cancelled. The ``cancel_fulfilment`` job calls it for a cancelled order;
    ``release`` too, for an
    order cancelled before its fulfilment orders were handed over. Locations that had one are told
    (``notices``)."""
    fos = (
        await session.scalars(
            select(FulfillmentOrder)
            .where(FulfillmentOrder.order_id == order.id, FulfillmentOrder.status.in_(OPEN))
            .order_by(FulfillmentOrder.id)
            .with_for_update()
        )
    ).all()
    for fo in fos:
        for material_id, qty in await rows.by_material(session, fo.id):
            await placement.return_to_network(
                session,
                rows.reference(order.id),
                material_id,
                fo.location_id,
                qty,
                reason=reason,
                actor=actor,
            )
        before = S(fo.status)
        fo.status, fo.reason = S.cancelled, reason[:500]
        timeline.record(
            session, order, "fulfilment", actor=actor, message=f"fulfilment order {fo.id} cancelled: {reason}"
        )
        await notices.queue_cancel(session, order, fo, before, reason=reason)
    await session.flush()
    return len(fos)
