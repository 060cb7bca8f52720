"""Carrier SLA: a parcel the carrier has not scanned by its due time raises one alert.

When a shipment is recorded (``callbacks._ship``) it gets ``sla_due_at`` = shipped_at + SLA days:
the ``sla_days`` of the active carrier whose code is the shipment's carrier, else ``DEFAULT_SLA_DAYS``.
The location's (or carrier integration's) ``in_transit`` callback records a scan (``last_scan_at``).
A shipment still undelivered and never scanned at ``sla_due_at`` puts ONE ``alert`` event on the order
timeline naming the shipment, carrier and tracking number; ``alerted_at`` makes it fire once. The
minute sweep (``sweep``) finds them: SLAs are days long, a minute's delay is nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fulfillment import rows
from app.fulfillment.models import Carrier, FulfillmentOrder, Shipment
from app.orders import timeline
from app.orders.models import Order

DEFAULT_SLA_DAYS = 3.0  # no active carrier with the shipment's code: a generous national standard
ACTOR = "fulfilment:sla"


async def sla_days(session: AsyncSession, carrier: str | None) -> float:
    if carrier:
        days = await session.scalar(
            select(Carrier.sla_days).where(Carrier.code == carrier, Carrier.active.is_(True))
        )
        if days is not None:
            return float(days)
    return DEFAULT_SLA_DAYS


async def due_at(session: AsyncSession, carrier: str | None):
    """SQL for ``sla_due_at`` of a shipment leaving now."""
    return func.now() + timedelta(days=await sla_days(session, carrier))


async def record_scan(
    session: AsyncSession, fo: FulfillmentOrder, scanned_at: datetime | None
) -> Shipment | None:
    """A carrier scan of the fulfilment order's latest shipment; None when it has no shipment."""
    shipment = await session.scalar(
        select(Shipment)
        .where(Shipment.fulfillment_order_id == fo.id)
        .order_by(Shipment.id.desc())
        .limit(1)
        .with_for_update()
    )
    if shipment is None:
        return None
    now = await session.scalar(select(func.now()))
    at = min(scanned_at, now) if scanned_at is not None else now  # a scan is never in the future
    if shipment.last_scan_at is None or at > shipment.last_scan_at:
        shipment.last_scan_at = at
    return shipment


async def alert_unscanned(session: AsyncSession, shipment_id: int) -> str:
    """Raise the SLA alert of one shipment if it is due and was never raised; returns what happened."""
    fo_id = await session.scalar(select(Shipment.fulfillment_order_id).where(Shipment.id == shipment_id))
    if fo_id is None:
        return "no_shipment"
    found = await rows.locked(session, fo_id)
    if found is None:
        return "no_shipment"
    order, _ = found
    shipment = await session.scalar(
        select(Shipment)
        .where(Shipment.id == shipment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if shipment.alerted_at is not None:
        return "already_alerted"
    if shipment.delivered_at is not None or shipment.last_scan_at is not None:
        return "scanned"
    now = await session.scalar(select(func.now()))
    if shipment.sla_due_at is None or shipment.sla_due_at > now:
        return "not_due"
    shipment.alerted_at = now
    await _alert(session, order, shipment)
    await session.flush()
    return "alerted"


async def _alert(session: AsyncSession, order: Order, shipment: Shipment) -> None:
    carrier = shipment.carrier or "no carrier"
    tracking = shipment.tracking_number or "no tracking number"
    timeline.record(
        session,
        order,
        "alert",
        actor=ACTOR,
        message=(
            f"shipment {shipment.id} ({carrier}, {tracking}) has no carrier scan since it shipped at"
            f" {shipment.shipped_at:%Y-%m-%d %H:%M %Z}; its SLA ended {shipment.sla_due_at:%Y-%m-%d %H:%M %Z}"
        ),
        details={
            "shipment": shipment.id,
            "fo": shipment.fulfillment_order_id,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
        },
    )
