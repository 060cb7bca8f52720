"""Order operations: the state machine applied, holds, cancel, address edits, notes, and the step that
takes an accepted order on to stock and routing (``proceed``).

Every function takes the caller's tenant session and writes the timeline in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.customers.identity import address_key, fingerprint, tenant_hash
from app.db import session_tenant
from app.errors import NotFound, UserError
from app.inventory import reservations
from app.orders import lines, states, timeline
from app.orders.models import Automation, Order, OrderHold, OrderLine, OrderStatus

MANUAL_HOLD = "manual"
ADDRESS_FIELDS = ("name", "phone", "country", "province", "city", "district", "street", "postcode")


def reservation_reference(order: Order) -> str:
    return f"order:{order.id}"


async def get_order(session: AsyncSession, order_id: int, *, lock: bool = True) -> Order:
    query = select(Order).where(Order.id == order_id)
    order = await session.scalar(query.with_for_update() if lock else query)
    if order is None:
        raise NotFound("order")
    return order


async def transition(
    session: AsyncSession,
    order: Order,
    target: OrderStatus,
    *,
    actor: str,
    message: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Move ``order`` to ``target`` (or raise ILLEGAL_TRANSITION), record it, schedule automations."""
    current = OrderStatus(order.status)
    states.check(current, target)
    order.status = target
    order.status_changed_at = func.now()
    order.version += 1
    timeline.record(
        session,
        order,
        "status",
        actor=actor,
        message=message,
        from_status=current,
        to_status=target,
        details=details,
    )
    await session.flush()
    await schedule_automations(session, order)


async def enabled_automations(session: AsyncSession, status: OrderStatus) -> list[Automation]:
    """The tenant's enabled automations for entering ``status``."""
    query = select(Automation).where(Automation.enabled, Automation.on_status == status.value)
    return list((await session.scalars(query)).all())


async def schedule_automations(session: AsyncSession, order: Order) -> None:
    """Enqueue (delayed) every enabled automation for the status ``order`` has just entered."""
    automations = await enabled_automations(session, order.status)
    if not automations:
        return
    await session.refresh(order, ["status_changed_at"])
    for automation in automations:
        await outbox.enqueue(
            session,
            "run_order_automation",
            tenant_id=session_tenant(session).id,
            delay=timedelta(minutes=automation.after_minutes),
            order_id=order.id,
            automation_id=automation.id,
            entered_at=order.status_changed_at.isoformat(),
        )


async def active_holds(session: AsyncSession, order_id: int) -> list[OrderHold]:
    query = select(OrderHold).where(OrderHold.order_id == order_id, OrderHold.released_at.is_(None))
    return list((await session.scalars(query.order_by(OrderHold.id))).all())


async def place_holds(
    session: AsyncSession, order: Order, holds: list[tuple[str, int, str]], *, actor: str
) -> None:
    """Hold ``order`` for each (code, weight, reason); an order already on hold just gains reasons."""
    for code, weight, reason in holds:
        session.add(OrderHold(order_id=order.id, code=code, weight=weight, reason=reason, created_by=actor))
        timeline.record(session, order, "hold", actor=actor, message=reason, details={"code": code})
    if order.status != OrderStatus.on_hold:
        await transition(
            session, order, OrderStatus.on_hold, actor=actor, message="; ".join(h[2] for h in holds)
        )
    else:
        await session.flush()


async def proceed(session: AsyncSession, order: Order, *, actor: str) -> None:
    """Take an accepted (paid, audited, unheld) order on: reserve its stock at network level, then hand
    it to routing through the outbox. Short stock → awaiting_stock; presale products → presale."""
    try:
        reserved = await reserve_stock(session, order, actor=actor)
    except UserError as exc:
        if exc.code != "INSUFFICIENT_STOCK":
            raise
        await transition(session, order, OrderStatus.awaiting_stock, actor=actor, message=exc.message)
        return
    await hand_to_routing(session, order, reserved, actor=actor)


async def reserve_stock(session: AsyncSession, order: Order, *, actor: str) -> list[reservations.Reserved]:
    """Reserve the order's lines under its reference (idempotent), or raise INSUFFICIENT_STOCK
    (``reservations.InsufficientStock``) with nothing reserved. Also what resuming a waiting order runs."""
    lines = (
        await session.execute(
            select(OrderLine.product_id, func.sum(OrderLine.quantity))
            .where(OrderLine.order_id == order.id, OrderLine.product_id.is_not(None))
            .group_by(OrderLine.product_id)
        )
    ).all()
    wanted = [reservations.ReserveLine(product_id, int(qty)) for product_id, qty in lines]
    if not wanted:
        return []
    async with session.begin_nested():
        return await reservations.reserve(
            session,
            wanted,
            reference=reservation_reference(order),
            channel_id=order.channel_id,
            actor=actor,
        )


async def hand_to_routing(
    session: AsyncSession, order: Order, reserved: list[reservations.Reserved], *, actor: str
) -> None:
    """Stock reserved: presale when units are backordered, else reserved; then route_order through
    the outbox. An order coming from awaiting_stock cannot enter presale (states.py): it becomes
    reserved and keeps its backorder, which ``app.orders.waiting`` fills when stock arrives."""
    backordered = sum(r.backordered for r in reserved)
    if backordered and OrderStatus.presale in states.TRANSITIONS[OrderStatus(order.status)]:
        await transition(
            session,
            order,
            OrderStatus.presale,
            actor=actor,
            message=f"{backordered} unit(s) reserved against future stock",
        )
    else:
        message = "stock reserved"
        if backordered:
            message += f"; {backordered} unit(s) reserved against future stock"
        await transition(session, order, OrderStatus.reserved, actor=actor, message=message)
    await outbox.enqueue(session, "route_order", tenant_id=session_tenant(session).id, order_id=order.id)


async def hold(session: AsyncSession, order_id: int, *, reason: str, actor: str) -> Order:
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise UserError("INVALID_REASON", "give a reason of 1-500 characters", "reason")
    order = await get_order(session, order_id)
    if order.status not in states.BEFORE_RELEASE:
        raise UserError(
            "ILLEGAL_TRANSITION", f"an order that is {order.status.value} cannot be held", "status"
        )
    await place_holds(session, order, [(MANUAL_HOLD, 0, reason)], actor=actor)
    return order


async def release_holds(
    session: AsyncSession, order_id: int, *, actor: str, codes: list[str] | None = None
) -> Order:
    """Release the order's holds (all, or those with ``codes``); with none left it goes on to stock."""
    order = await get_order(session, order_id)
    if order.status != OrderStatus.on_hold:
        raise UserError("NOT_ON_HOLD", f"the order is {order.status.value}, not on hold", "id")
    query = update(OrderHold).where(OrderHold.order_id == order.id, OrderHold.released_at.is_(None))
    if codes:
        query = query.where(OrderHold.code.in_(codes))
    released = (
        (
            await session.execute(
                query.values(released_at=func.now(), released_by=actor).returning(OrderHold.code)
            )
        )
        .scalars()
        .all()
    )
    if not released:
        raise UserError("NO_SUCH_HOLD", "the order has no active hold with those codes", "codes")
    timeline.record(
        session, order, "release", actor=actor, message="holds released", details={"codes": released}
    )
    if not await active_holds(session, order.id):
        unresolved = await lines.resolve_pending(session, order)
        if unresolved:
            raise UserError(
                "UNKNOWN_ITEMS",
                "list these items on the channel before releasing: " + "; ".join(unresolved)[:400],
                "id",
            )
        if order.channel_status == "pending_payment":
            await transition(session, order, OrderStatus.received, actor=actor, message="awaiting payment")
        else:
            await proceed(session, order, actor=actor)
    return order


async def cancel(session: AsyncSession, order_id: int, *, reason: str, actor: str) -> Order:
    order = await get_order(session, order_id)
    await cancel_order(session, order, reason=reason, actor=actor)
    return order


async def cancel_order(session: AsyncSession, order: Order, *, reason: str, actor: str) -> None:
    """Cancel and give back every unit reserved for the order (idempotent on the reservation).

    The order's open fulfilment orders are cancelled by fulfilment, asked through the outbox in this
    transaction (job ``cancel_fulfilment``): orders sits below fulfilment and never calls into it. The
    units a location holds for the order go back to it then; the network's availability is given back
    here at once (``network_stock`` counts location reservations too, so the sums agree either way)."""
    states.check(OrderStatus(order.status), OrderStatus.cancelled)
    await outbox.enqueue(
        session,
        "cancel_fulfilment",
        tenant_id=session_tenant(session).id,
        order_id=order.id,
        reason=(reason or "order cancelled")[:500],
        actor=actor[:200],
    )
    released = await reservations.release(
        session, reservation_reference(order), actor=actor, reason=reason or "order cancelled"
    )
    await session.execute(
        update(OrderHold)
        .where(OrderHold.order_id == order.id, OrderHold.released_at.is_(None))
        .values(released_at=func.now(), released_by=actor)
    )
    await transition(
        session,
        order,
        OrderStatus.cancelled,
        actor=actor,
        message=reason or "cancelled",
        details={"units_released": released},
    )


def address_search_text(buyer: dict[str, Any], address: dict[str, Any]) -> str:
    parts = [buyer.get("name"), buyer.get("nick"), *(address.get(k) for k in ADDRESS_FIELDS)]
    return " ".join(p for p in parts if p).lower()


def stamp_address(order: Order, tenant_id: int) -> None:
    """Recompute what derives from the customer and the address: fingerprint, address hash, search text."""
    customer_key = str(order.customer_id or order.buyer.get("platform_buyer_id") or "")
    order.fingerprint = fingerprint(tenant_id, customer_key=customer_key, address=order.address)
    order.address_hash = tenant_hash(tenant_id, "address", address_key(order.address))
    order.search_text = address_search_text(order.buyer, order.address)


async def edit_address(session: AsyncSession, order_id: int, address: dict[str, Any], *, actor: str) -> Order:
    order = await get_order(session, order_id)
    if order.status not in states.BEFORE_RELEASE:
        raise UserError(
            "ADDRESS_LOCKED",
            f"the order is {order.status.value}: its address can no longer change",
            "address",
        )
    unknown = set(address) - set(ADDRESS_FIELDS)
    if unknown:
        raise UserError("INVALID_ADDRESS", f"unknown address fields: {', '.join(sorted(unknown))}", "address")
    for key, value in address.items():
        if value is not None and len(str(value)) > 300:
            raise UserError("INVALID_ADDRESS", f"{key} is longer than 300 characters", ["address", key])
    before = dict(order.address)
    order.address = {**before, **{k: v for k, v in address.items() if v is not None}}
    if not (order.address.get("street") and order.address.get("city")):
        raise UserError("INVALID_ADDRESS", "an address needs at least a city and a street", "address")
    stamp_address(order, session_tenant(session).id)
    order.version += 1
    timeline.record(
        session,
        order,
        "address",
        actor=actor,
        message="delivery address changed",
        details={"before": before, "after": order.address},
    )
    await session.flush()
    return order


async def add_note(session: AsyncSession, order_id: int, text: str, *, actor: str) -> Order:
    text = (text or "").strip()
    if not text or len(text) > 2000:
        raise UserError("INVALID_NOTE", "a note is 1-2000 characters", "text")
    order = await get_order(session, order_id, lock=False)
    timeline.record(session, order, "note", actor=actor, message=text)
    await session.flush()
    return order


async def run_automation(session: AsyncSession, order_id: int, automation_id: int, entered_at: str) -> str:
    """Apply an automation if the order is still in the status entry that scheduled it. Returns what
    happened (for logs and tests): "done", or why it was skipped."""
    automation = await session.get(Automation, automation_id)
    if automation is None or not automation.enabled:
        return "disabled"
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.status.value != automation.on_status:
        return "moved_on"
    if order.status_changed_at.isoformat() != entered_at:
        return "moved_on"
    actor = f"automation:{automation.name}"
    if automation.action == "cancel":
        await cancel_order(session, order, reason=f"automation {automation.name}", actor=actor)
    elif automation.action == "release":
        codes = [automation.hold_code] if automation.hold_code else None
        try:
            await release_holds(session, order.id, actor=actor, codes=codes)
        except UserError:
            return "nothing_to_release"
    else:
        return "unknown_action"
    return "done"
