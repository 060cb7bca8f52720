"""Messages to a location's connector after the release: ``fulfillment_order.cancelled``.

A fulfilment order the location already has (assigned or later, not shipped) that is cancelled or
taken away (re-routed, pick-up expired, order cancelled) must be withdrawn from its WMS/POS. The
message goes the way the release does: one ``connector_deliveries`` row per (fulfilment order, event)
(so it is queued once whatever calls it), signed with the connector's secret, retried with
``connectors.BACKOFF`` through the outbox (job ``deliver_connector_message``), every attempt kept on
the row and failures on the order's timeline::

    {"event": "fulfillment_order.cancelled", "delivery_id": 18,
     "fulfillment_order": {"id": "<global id>"}, "order": {"id": "<global id>", "number": "SO…"},
     "location": {"id": "<global id>", "code": "ST-CD"}, "reason": "did not accept within 30 minutes"}

"Handed over" also covers a release that reached the location while the fulfilment order was still
pending (its delivery row has an attempt): the location may hold it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import session_tenant
from app.fulfillment import connectors
from app.fulfillment.models import (
    ConnectorDelivery,
    DeliveryStatus,
    FulfillmentOrder,
    FulfillmentStatus,
    LocationConnector,
)
from app.inventory.models import Location
from app.orders import timeline
from app.orders.models import Order

CANCEL_EVENT = "fulfillment_order.cancelled"
JOB = "deliver_connector_message"
ACTOR = "fulfilment"
S = FulfillmentStatus
HANDED_OVER = (S.assigned, S.accepted, S.picking, S.packed)


async def handed_over(session: AsyncSession, fo: FulfillmentOrder, status_before: S) -> bool:
    """Whether the location may hold the fulfilment order (so it must be told it is withdrawn)."""
    if status_before in HANDED_OVER:
        return True
    if status_before is not S.pending:
        return False
    tried = await session.scalar(
        select(ConnectorDelivery.attempts).where(
            ConnectorDelivery.fulfillment_order_id == fo.id,
            ConnectorDelivery.event == connectors.RELEASE_EVENT,
        )
    )
    return bool(tried)


async def queue_cancel(
    session: AsyncSession, order: Order, fo: FulfillmentOrder, status_before: S, *, reason: str
) -> int | None:
    """Queue the ``fulfillment_order.cancelled`` message for a fulfilment order just closed, when its
    location has it and a connector. Once per fulfilment order; returns the delivery id (or None)."""
    if not await handed_over(session, fo, status_before):
        return None
    connector = await session.get(LocationConnector, fo.location_id)
    if connector is None or not connector.active:
        return None  # fulfilled by hand: the timeline is the message
    tenant_id = session_tenant(session).id
    location_gid = connectors.global_id("Location", tenant_id, fo.location_id)
    code = await session.scalar(select(Location.code).where(Location.id == fo.location_id))
    payload = {
        "event": CANCEL_EVENT,
        "fulfillment_order": {"id": connectors.global_id("FulfillmentOrder", tenant_id, fo.id)},
        "order": {"id": connectors.global_id("Order", tenant_id, order.id), "number": order.number},
        "location": {"id": location_gid, "code": code},
        "reason": reason[:500],
    }
    delivery_id = await session.scalar(
        insert(ConnectorDelivery)
        .values(
            fulfillment_order_id=fo.id,
            location_id=fo.location_id,
            event=CANCEL_EVENT,
            url=connector.url,
            payload=payload,
            status=DeliveryStatus.pending,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["fulfillment_order_id", "event"])
        .returning(ConnectorDelivery.id)
    )
    if delivery_id is None:
        return None  # queued before
    await outbox.enqueue(session, JOB, tenant_id=tenant_id, delivery_id=delivery_id, attempt=1)
    return delivery_id


async def deliver(session: AsyncSession, delivery_id: int, *, attempt: int = 1) -> str:
    """Send one queued message (not the release: ``service.release`` sends that). Idempotent on its
    delivery row: sent, or this attempt already made → nothing. Returns what happened."""
    delivery = await session.scalar(
        select(ConnectorDelivery)
        .where(ConnectorDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if delivery is None or delivery.event == connectors.RELEASE_EVENT:
        return "no_delivery"
    if delivery.status is DeliveryStatus.sent:
        return "already_sent"
    if delivery.attempts >= attempt:
        return "duplicate"
    connector = await session.get(LocationConnector, delivery.location_id)
    if connector is None or not connector.active:
        delivery.status, delivery.last_error, delivery.next_attempt_at = (
            DeliveryStatus.failed,
            "the location has no active connector",
            None,
        )
        return "no_connector"
    if not delivery.payload.get("delivery_id"):
        delivery.payload = {"delivery_id": delivery.id, **delivery.payload}
    result, delay = await attempt_delivery(session, delivery, connector, JOB, delivery_id=delivery.id)
    if result.ok:
        return "sent"
    order = await session.scalar(
        select(Order)
        .join(FulfillmentOrder, FulfillmentOrder.order_id == Order.id)
        .where(FulfillmentOrder.id == delivery.fulfillment_order_id)
    )
    name = await session.scalar(select(Location.name).where(Location.id == delivery.location_id))
    if delay is not None:
        message = (
            f"could not tell {name}'s connector ({delivery.event}, attempt {delivery.attempts}):"
            f" {result.error}; retrying in {int(delay.total_seconds() // 60)} min"
        )
    else:
        message = f"gave up telling {name}'s connector ({delivery.event}) after {delivery.attempts} attempts"
    if order is not None:
        details = {"fo": delivery.fulfillment_order_id, "delivery": delivery.id, "error": result.error}
        timeline.record(session, order, "fulfilment", actor=ACTOR, message=message[:2000], details=details)
    await session.flush()
    return "failed"


async def attempt_delivery(
    session: AsyncSession, delivery: ConnectorDelivery, connector: LocationConnector, job: str, **job_kwargs
) -> tuple[connectors.Attempt, timedelta | None]:
    """Post a delivery's payload once and record the attempt on its row: sent; or failed, with ``job``
    (``job_kwargs`` plus the next ``attempt``) enqueued after its backoff while attempts remain. Returns
    (the attempt, the retry delay, or None when sent or given up). The release and these messages both
    go through it."""
    delivery.url = connector.url
    result = await connectors.post(connector.url, connector.secret, connectors.encode(delivery.payload))
    delivery.attempts += 1
    delivery.response_code = result.status_code
    if result.ok:
        delivery.status, delivery.last_error = DeliveryStatus.sent, None
        delivery.sent_at, delivery.next_attempt_at = func.now(), None
        return result, None
    delivery.status, delivery.last_error = DeliveryStatus.failed, result.error
    if delivery.attempts >= connectors.MAX_ATTEMPTS:
        delivery.next_attempt_at = None
        return result, None
    delay = connectors.BACKOFF[delivery.attempts - 1]
    delivery.next_attempt_at = func.now() + delay
    await outbox.enqueue(
        session,
        job,
        tenant_id=session_tenant(session).id,
        delay=delay,
        attempt=delivery.attempts + 1,
        **job_kwargs,
    )
    return result, delay
