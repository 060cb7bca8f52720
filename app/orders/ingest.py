"""Order ingest: a normalised channel order in, one unified order out, in the caller's transaction.

Idempotent on (channel, external id): the row is claimed with INSERT … ON CONFLICT DO NOTHING, so of N
concurrent deliveries exactly one creates the order (lines, customer, fingerprint, usage event, audit,
reservation, route_order outbox row); the others wait on the unique index, then lock the row and see
the same ``updated_at``: unchanged. A newer payload updates the order; an older one is stale and changes
nothing. Unpaid orders wait in ``received``; paid ones pass the audit rules (``audit``) and go on to
stock (``service.proceed``) or on hold. A paid order the platform ships itself (``fulfilled_by_platform``,
e.g. Amazon AFN) goes straight to ``shipped``: no hold, no reservation, no routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.models import Channel
from app.channels.normalized import NormalizedCancel, NormalizedOrder
from app.customers.service import resolve_customer
from app.db import session_tenant
from app.errors import NotFound
from app.inventory import reservations
from app.inventory.models import Reservation, ReservationStatus
from app.orders import audit, lines, service, states, timeline
from app.orders.models import Order, OrderStatus
from billing import usage

PAID = ("paid", "partially_shipped", "shipped", "completed")
CANCELLED = ("cancelled", "refunded")
LINES_CHANGED = "lines_changed"
# Fields a newer payload updates whatever the order's status; the rest only before release.
ALWAYS = ("channel_status", "raw_status", "paid", "paid_at", "external_updated_at")
QUIET = ("external_updated_at", "search_text")  # changed with others, not worth a line in the timeline


@dataclass(frozen=True)
class IngestResult:
    order_id: int | None
    number: str | None
    outcome: str  # created | updated | unchanged | stale | cancelled
    status: str | None


def order_number(order_id: int) -> str:
    return f"SO{order_id:08d}"


def _result(order: Order, outcome: str) -> IngestResult:
    return IngestResult(order.id, order.number, outcome, OrderStatus(order.status).value)


def order_fields(channel: Channel, order: NormalizedOrder) -> dict[str, Any]:
    """The order columns a payload sets (everything but identity, customer and status)."""
    buyer = {
        k: getattr(order.buyer, k)
        for k in ("platform_buyer_id", "name", "nick", "phone", "email")
        if getattr(order.buyer, k)
    }
    address = {k: getattr(order.address, k) for k in service.ADDRESS_FIELDS if getattr(order.address, k)}
    invoice = order.invoice
    a = order.amounts
    return {
        "channel_status": order.status,
        "raw_status": (order.raw_status or order.status)[:60],
        "business_model": order.business_model,
        "currency": order.currency,
        "subtotal": a.subtotal,
        "shipping": a.shipping,
        "discount": a.discount,
        "tax": a.tax,
        "total": a.total,
        "paid": a.paid,
        "placed_at": order.placed_at,
        "paid_at": order.paid_at,
        "external_updated_at": order.updated_at,
        "promised_ship_by": order.promised_ship_by,
        "requested_carrier": (order.requested_carrier or channel.default_carrier or None)
        and (order.requested_carrier or channel.default_carrier or "")[:60],
        "buyer": buyer,
        "address": address,
        "buyer_note": order.buyer_note,
        "seller_note": order.seller_note,
        "invoice": {"title": invoice.title, "tax_id": invoice.tax_id, "type": invoice.type}
        if invoice
        else None,
        "extra": dict(order.extra),
        "search_text": service.address_search_text(buyer, address),
    }


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def ingest(
    session: AsyncSession,
    channel: Channel,
    order: NormalizedOrder,
    *,
    inbox_id: int | None = None,
    actor: str = "system",
) -> IngestResult:
    """Create or update the order ``order`` describes. The caller commits."""
    tenant = session_tenant(session)
    sequence = func.pg_get_serial_sequence(f"{tenant.schema_name}.orders", "id")
    new_id = await session.scalar(select(func.nextval(sequence)))
    claimed = await session.scalar(
        insert(Order)
        .values(
            id=new_id,
            number=order_number(new_id),
            channel_id=channel.id,
            external_id=order.external_id,
            status=OrderStatus.received,
            fingerprint="",
            inbox_id=inbox_id,
            version=1,
            **order_fields(channel, order),
        )
        .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
        .returning(Order.id)
    )
    if claimed is None:
        return await _update(session, channel, order, inbox_id=inbox_id, actor=actor)
    return await _create(session, channel, order, claimed, inbox_id=inbox_id, actor=actor)


async def _create(
    session: AsyncSession,
    channel: Channel,
    norm: NormalizedOrder,
    order_id: int,
    *,
    inbox_id: int | None,
    actor: str,
) -> IngestResult:
    tenant = session_tenant(session)
    order = await session.get(Order, order_id)
    assert order is not None
    await lines.write_lines(session, channel, order, norm.lines)
    customer = await resolve_customer(session, tenant.id, norm.buyer, norm.address, channel.platform)
    order.customer_id = customer.id
    service.stamp_address(order, tenant.id)
    timeline.record(
        session,
        order,
        "received",
        actor=actor,
        message=f"received from {channel.name}",
        to_status=OrderStatus.received,
        details={"channel": channel.code, "external_id": norm.external_id, "inbox_id": inbox_id},
    )
    await usage.record(session, tenant_id=tenant.id, kind="order", reference=f"order:{order.id}")
    await session.flush()
    if norm.status in CANCELLED:
        await service.cancel_order(session, order, reason=f"{norm.status} on {channel.name}", actor=actor)
    elif norm.status == "pending_payment":
        await service.schedule_automations(session, order)  # e.g. cancel if still unpaid after 30 min
    else:
        await _accept(session, channel, order, norm, actor=actor)
    return _result(order, "created")


async def _accept(
    session: AsyncSession, channel: Channel, order: Order, norm: NormalizedOrder, *, actor: str
) -> None:
    """A paid order: hold it for unknown items and audit findings, or take it on to stock; unless the
    platform ships it from its own stock, when none of that concerns the brand."""
    if norm.fulfilled_by_platform:
        await service.transition(
            session,
            order,
            OrderStatus.shipped,
            actor=actor,
            message=f"fulfilled by {channel.name} itself: no stock reserved here, not routed",
            details={"fulfilled_by_platform": True},
        )
        return
    holds = await lines.line_holds(session, channel, order)
    holds += [(f.code, f.weight, f.reason) for f in await audit.holds(session, order)]
    if holds:
        await service.place_holds(session, order, holds, actor=actor)
    else:
        await service.proceed(session, order, actor=actor)


async def _locked(session: AsyncSession, channel: Channel, external_id: str) -> Order | None:
    return await session.scalar(
        select(Order)
        .where(Order.channel_id == channel.id, Order.external_id == external_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _update(
    session: AsyncSession, channel: Channel, norm: NormalizedOrder, *, inbox_id: int | None, actor: str
) -> IngestResult:
    order = await _locked(session, channel, norm.external_id)
    assert order is not None  # the insert conflicted with it, and orders are never deleted
    stored = order.external_updated_at
    if norm.updated_at < stored:
        timeline.record(
            session,
            order,
            "stale",
            actor=actor,
            message="ignored an older version of the order from the channel",
            details={
                "updated_at": norm.updated_at.isoformat(),
                "stored": stored.isoformat(),
                "inbox_id": inbox_id,
            },
        )
        await session.flush()
        return _result(order, "stale")
    if norm.updated_at == stored:
        return _result(order, "unchanged")

    editable = order.status in states.BEFORE_RELEASE
    changed: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in order_fields(channel, norm).items():
        before = getattr(order, key)
        if before == value:
            continue
        if key in ALWAYS or editable:
            setattr(order, key, value)
            if key not in QUIET:
                changed[key] = {"before": _json(before), "after": _json(value)}
        elif key not in QUIET:
            ignored.append(key)
    if "address" in changed:
        service.stamp_address(order, session_tenant(session).id)
    relined = False
    if editable and norm.status not in CANCELLED:
        relined = await lines.sync_lines(session, channel, order, norm.lines, changed)
    if inbox_id is not None:
        order.inbox_id = inbox_id
    if not changed and not ignored:
        await session.flush()
        return _result(order, "unchanged")
    order.version += 1
    details: dict[str, Any] = {"changed": changed, "inbox_id": inbox_id}
    if ignored:
        details["not_applied"] = ignored  # the order has left the warehouse: too late to change
    timeline.record(session, order, "updated", actor=actor, message="updated by the channel", details=details)
    await session.flush()

    outcome = "updated"
    status = OrderStatus(order.status)
    if norm.status in CANCELLED and status is not OrderStatus.cancelled:
        if OrderStatus.cancelled in states.TRANSITIONS[status]:
            await service.cancel_order(session, order, reason=f"{norm.status} on {channel.name}", actor=actor)
            outcome = "cancelled"
        else:
            _platform_event(
                session, order, norm.status, actor, f"the channel says {norm.status}; order is {status}"
            )
    elif norm.status in PAID and status is OrderStatus.received:
        await _accept(session, channel, order, norm, actor=actor)
    elif relined and status is not OrderStatus.received:
        await _review_lines(session, channel, order, actor=actor)
    elif norm.status in PAID and norm.status != "paid" and "channel_status" in changed:
        _platform_event(session, order, norm.status, actor, f"the channel says {norm.status} (not acted on)")
    await session.flush()
    return _result(order, outcome)


def _platform_event(session: AsyncSession, order: Order, status: str, actor: str, message: str) -> None:
    timeline.record(
        session, order, "channel_status", actor=actor, message=message, details={"status": status}
    )


async def _review_lines(session: AsyncSession, channel: Channel, order: Order, *, actor: str) -> None:
    """What is bought changed after the order was accepted: give back its stock, hold it, and audit it
    again; when nothing else holds it, it goes straight on to stock (through on_hold, the only legal
    way back from reserved/routed)."""
    reference = service.reservation_reference(order)
    released = await reservations.release(
        session, reference, actor=actor, reason="lines changed on the channel"
    )
    # A released reference cannot be reserved again; the movements keep its history.
    await session.execute(
        delete(Reservation).where(
            Reservation.reference == reference, Reservation.status == ReservationStatus.released
        )
    )
    reason = f"the lines changed on {channel.name}" + (f"; {released} unit(s) released" if released else "")
    await service.place_holds(session, order, [(LINES_CHANGED, 0, reason)], actor=actor)
    others = [h for h in await service.active_holds(session, order.id) if h.code != LINES_CHANGED]
    if others:
        return  # an operator already reviews this order: the release will reserve the new lines
    holds = await lines.line_holds(session, channel, order)
    holds += [(f.code, f.weight, f.reason) for f in await audit.holds(session, order)]
    if holds:
        await service.place_holds(session, order, holds, actor=actor)
    else:
        await service.release_holds(session, order.id, actor=actor, codes=[LINES_CHANGED])


async def ingest_cancel(
    session: AsyncSession,
    channel: Channel,
    cancel: NormalizedCancel,
    *,
    inbox_id: int | None = None,
    actor: str = "system",
) -> IngestResult:
    """The channel cancelled an order: cancel it here (giving its stock back) when the state machine
    allows it, else record it for an operator. A cancel for an order not seen yet raises NOT_FOUND, so
    the inbox keeps the payload as failed and it can be replayed once the order has arrived."""
    order = await _locked(session, channel, cancel.external_id)
    if order is None:
        raise NotFound("order", "external_id")
    status = OrderStatus(order.status)
    if status is OrderStatus.cancelled:
        return _result(order, "unchanged")
    order.channel_status = "cancelled"
    order.external_updated_at = max(order.external_updated_at, cancel.cancelled_at)
    if inbox_id is not None:
        order.inbox_id = inbox_id
    reason = cancel.reason or f"cancelled on {channel.name}"
    if OrderStatus.cancelled in states.TRANSITIONS[status]:
        await service.cancel_order(session, order, reason=reason, actor=actor)
        return _result(order, "cancelled")
    _platform_event(
        session, order, "cancelled", actor, f"the channel cancelled it ({reason}); order is {status}"
    )
    await session.flush()
    return _result(order, "updated")
