"""Moving an order's reservation between the network and a location, through the ledger.

Orders reserve at network level (``inventory.reservations``); routing then pins units to the location
that ships them, and a rejection gives them back. A move is a pair of movements under the order's
reference: network ``reserved -q`` (``location_id`` NULL) and location ``reserved +q`` (or the reverse).

``network_stock.reserved`` counts every reserved unit, at network level or at a location, so a move
leaves it unchanged, whatever the location's status: the location side goes through ``apply`` with
``network=False``, so the two halves never touch ``network_stock`` and no low-stock signal fires for a
move that changes no availability. ``ledger.check_ledger`` holds:
both movements are in its replay, and their reserved deltas cancel.

Inventory owns these moves so routing (which pins) and fulfilment (which ships or gives back) both
call down into them, never into each other.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import UserError
from app.inventory import ledger
from app.inventory.ledger import Deltas
from app.inventory.models import MovementKind, StockLevel, StockMovement


async def allocate_to_location(
    session: AsyncSession,
    reference: str,
    material_id: int,
    location_id: int,
    qty: int,
    *,
    actor: str = "routing",
) -> None:
    """Pin ``qty`` units of ``reference``'s network reservation of ``material_id`` to ``location_id``.

    Refuses (INSUFFICIENT_STOCK) when the location no longer has them available: another order took
    them since routing looked. The caller makes sure ``reference`` holds ``qty`` at network level
    (routing derives it from the order's fulfilment orders). Lock order: callers allocate in
    (location, material) order, so two orders routing at once never deadlock here.

    One conditional UPDATE of the level (``… WHERE available >= qty``, the form ``ledger.apply`` and
    ``reservations`` use) does the check, the lock and the change at once; the two movements are only
    added to the session, so the whole shipment's movements go in one INSERT at the next flush. Routing
    spends most of its time per SQL statement, and this is the step it repeats per (location, material):
    it was seven statements (two status reads, a locking read, the upsert, a re-read, two inserts).
    """
    ledger.check_quantity(qty)
    level = StockLevel.__table__
    moved = await session.execute(
        level.update()
        .where(
            level.c.location_id == location_id,
            level.c.material_id == material_id,
            level.c.on_hand - level.c.reserved - level.c.safety_stock >= qty,
        )
        .values(reserved=level.c.reserved + qty, updated_at=func.now())
    )
    if moved.rowcount != 1:
        await ledger.location_status(session, location_id)  # NOT_FOUND for a location that is not there
        raise UserError(
            "INSUFFICIENT_STOCK",
            f"location {location_id} no longer has {qty} of material {material_id} available",
            "quantity",
        )
    session.add_all(
        (
            StockMovement(
                kind=MovementKind.reservation,
                material_id=material_id,
                location_id=None,
                d_reserved=-qty,
                reason=f"allocated to location {location_id}",
                reference=reference[:200],
                actor=actor,
            ),
            StockMovement(
                kind=MovementKind.reservation,
                material_id=material_id,
                location_id=location_id,
                d_reserved=qty,
                reason="allocated from the network reservation",
                reference=reference[:200],
                actor=actor,
            ),
        )
    )


async def return_to_network(
    session: AsyncSession,
    reference: str,
    material_id: int,
    location_id: int,
    qty: int,
    *,
    reason: str,
    actor: str = "routing",
) -> None:
    """The reverse of ``allocate_to_location``: the units are reserved for ``reference`` at network
    level again (e.g. the location rejected the fulfilment order), ready to be routed elsewhere."""
    ledger.check_quantity(qty)
    await ledger.apply(
        session,
        MovementKind.release,
        material_id,
        location_id,
        Deltas(reserved=-qty),
        reason=reason[:300],
        reference=reference,
        actor=actor,
        network=False,
    )
    session.add(
        StockMovement(
            kind=MovementKind.reservation,
            material_id=material_id,
            location_id=None,
            d_reserved=qty,
            reason=f"back from location {location_id}: {reason}"[:300],
            reference=reference[:200],
            actor=actor,
        )
    )


async def ship_from_location(
    session: AsyncSession, reference: str, material_id: int, location_id: int, qty: int, *, actor: str
) -> None:
    """The units left the building: the location's reservation and on hand both drop, and the network's
    (its on hand only when the location is active: ``apply`` does that)."""
    await ledger.apply(
        session,
        MovementKind.shipment,
        material_id,
        location_id,
        Deltas(on_hand=-qty, reserved=-qty),
        reason="shipped",
        reference=reference,
        actor=actor,
    )
