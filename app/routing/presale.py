"""Orders waiting for presale stock: which of an order's open lines are routed now, which wait.

An order's reservation may hold part of a material as ``backordered``: units sold beyond stock, which
only presale and allow-backorder products may be (``reservations.reserve`` lets a material go short
only when every line using it may). A line *waits* when one of its materials is backordered; the whole
order line waits (every material of a bundle), so a line is never shipped in two halves for this.

With the policy option ``ship_in_stock_part_of_presale`` (``policies.IN_STOCK_PART``, on by default) the
other lines are routed now and the waiting ones stay open: their network reservation (what stock
existed) stays held, and ``app.orders.waiting`` fills the backorder when stock arrives and enqueues
``route_order``, which then routes them. Lines already on a live fulfilment order are never open
again, so nothing is routed twice. With the option off, the whole order waits (as before the option).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fulfillment.open_lines import OpenLine
from app.inventory.models import Reservation, ReservationStatus
from app.routing import policies


@dataclass(frozen=True)
class Part:
    """The open lines split by what routing may do with them now."""

    now: list[OpenLine]  # route these now
    waiting: list[OpenLine]  # wait for presale/backorder stock
    split: bool  # the policy ships the in-stock part of such orders now

    @property
    def summary(self) -> str:
        """The waiting lines in words, e.g. ``2 x SCARF-RED, 1 x HAT`` (for timelines, explanations)."""
        return ", ".join(f"{x.quantity} x {x.material_code}" for x in self.waiting)


async def backordered(session: AsyncSession, order_id: int) -> dict[int, int]:
    """Material id -> units of the order's active reservation still backordered (only those > 0)."""
    rows = await session.execute(
        select(Reservation.material_id, Reservation.backordered).where(
            Reservation.reference == f"order:{order_id}",
            Reservation.status == ReservationStatus.active,
            Reservation.backordered > 0,
        )
    )
    return {material_id: int(units) for material_id, units in rows.all()}


async def with_backorder(session: AsyncSession, order_ids: list[int]) -> set[int]:
    """Orders of ``order_ids`` holding a backorder (not to be routed whole, e.g. merged with others)."""
    if not order_ids:
        return set()
    rows = await session.scalars(
        select(Reservation.reference)
        .where(
            Reservation.reference.in_([f"order:{i}" for i in order_ids]),
            Reservation.status == ReservationStatus.active,
            Reservation.backordered > 0,
        )
        .distinct()
    )
    return {int(reference.split(":", 1)[1]) for reference in rows.all()}


def split_lines(lines: list[OpenLine], short: set[int]) -> tuple[list[OpenLine], list[OpenLine]]:
    """(lines to route now, lines that wait): a line waits whole when any material of it is short."""
    held = {x.order_line_id for x in lines if x.material_id in short}
    return [x for x in lines if x.order_line_id not in held], [x for x in lines if x.order_line_id in held]


async def routable_part(session: AsyncSession, order_id: int, lines: list[OpenLine]) -> Part:
    """Which of the order's open ``lines`` routing may take now (see the module docstring)."""
    short = await backordered(session, order_id)
    if not short:
        return Part(list(lines), [], False)
    split = policies.ships_in_stock_part(await policies.active_row(session))
    if not split:
        return Part([], list(lines), False)
    now, waiting = split_lines(lines, set(short))
    return Part(now, waiting, True)
