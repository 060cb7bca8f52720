"""Stock movements: the only way stock levels change, and the check that replays them.

Every change appends a movement and applies the same deltas to the location's level (and to the
network view when the location sells) in one transaction, with conditional updates so nothing goes
negative and no table is ever locked as a whole. ``apply`` does one change; ``batch.apply_many`` a
batch of them with a constant number of set-based statements.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.errors import NotFound, UserError
from app.inventory import signals
from app.inventory.models import (
    Location,
    LocationStatus,
    MovementKind,
    NetworkStock,
    StockLevel,
    StockMovement,
)

MAX_QUANTITY = 1_000_000  # per movement; anything larger is a typo, not a delivery

BUCKETS = ("on_hand", "reserved", "in_transit", "defective", "safety_stock")
AVAILABLE = NetworkStock.on_hand - NetworkStock.reserved - NetworkStock.safety_stock


@dataclass(frozen=True)
class Deltas:
    on_hand: int = 0
    reserved: int = 0
    in_transit: int = 0
    defective: int = 0
    safety_stock: int = 0

    def items(self):
        return ((b, getattr(self, b)) for b in BUCKETS)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.safety_stock


def check_quantity(qty: int, field: str | list[str] = "quantity", *, allow_zero: bool = False) -> int:
    if not isinstance(qty, int) or isinstance(qty, bool):
        raise UserError("INVALID_QUANTITY", "quantity must be a whole number", field)
    if qty < 0 or (qty == 0 and not allow_zero):
        raise UserError("INVALID_QUANTITY", "quantity must be positive", field)
    if qty > MAX_QUANTITY:
        raise UserError("INVALID_QUANTITY", f"quantity must be at most {MAX_QUANTITY:,}", field)
    return qty


async def location_status(session: AsyncSession, location_id: int) -> LocationStatus:
    """The location's status; NOT_FOUND when it does not exist (checked before anything is written)."""
    status = await session.scalar(select(Location.status).where(Location.id == location_id))
    if status is None:
        raise NotFound("location", "locationId")
    return status


async def apply(
    session: AsyncSession,
    kind: MovementKind,
    material_id: int,
    location_id: int,
    deltas: Deltas,
    *,
    reason: str = "",
    reference: str = "",
    actor: str = "system",
    status: LocationStatus | None = None,
    network: bool = True,
) -> StockLevel:
    """Apply deltas to one location's level, refusing any bucket going below zero. ``status`` is the
    location's, when the caller has already read it.

    The network follows: reserved always (it counts every reservation, whatever the location's status),
    on hand and safety stock only for an active location. ``network=False`` is for the location half of
    a reservation moving between the network and a location, whose other half is a network movement:
    together they leave ``network_stock`` as it is."""
    if status is None:
        status = await location_status(session, location_id)
    increments = {b: d for b, d in deltas.items() if d}
    if all(d >= 0 for d in increments.values()):
        stmt = insert(StockLevel).values(location_id=location_id, material_id=material_id, **increments)
        stmt = stmt.on_conflict_do_update(
            index_elements=[StockLevel.location_id, StockLevel.material_id],
            set_={**{b: getattr(StockLevel, b) + d for b, d in increments.items()}, "updated_at": func.now()},
        )
        await session.execute(stmt)
    else:
        guard = [getattr(StockLevel, b) + d >= 0 for b, d in increments.items() if d < 0]
        updated = await session.execute(
            StockLevel.__table__.update()
            .where(StockLevel.location_id == location_id, StockLevel.material_id == material_id, *guard)
            .values(**{b: getattr(StockLevel, b) + d for b, d in increments.items()}, updated_at=func.now())
        )
        if updated.rowcount != 1:
            raise UserError(
                "INSUFFICIENT_STOCK", "not enough stock at this location for that change", "quantity"
            )
    session.add(
        StockMovement(
            kind=kind,
            material_id=material_id,
            location_id=location_id,
            d_on_hand=deltas.on_hand,
            d_reserved=deltas.reserved,
            d_in_transit=deltas.in_transit,
            d_defective=deltas.defective,
            d_safety=deltas.safety_stock,
            reason=reason[:300],
            reference=reference[:200],
            actor=actor,
        )
    )
    if network:
        active = status is LocationStatus.active
        await network_delta(
            session,
            material_id,
            on_hand=deltas.on_hand if active else 0,
            safety_stock=deltas.safety_stock if active else 0,
            reserved=deltas.reserved,
        )
    level = await session.get(StockLevel, (location_id, material_id), populate_existing=True)
    return level


async def network_delta(
    session: AsyncSession, material_id: int, *, on_hand: int = 0, reserved: int = 0, safety_stock: int = 0
) -> None:
    if not (on_hand or reserved or safety_stock):
        return
    stmt = insert(NetworkStock).values(
        material_id=material_id,
        on_hand=max(on_hand, 0),
        reserved=max(reserved, 0),
        safety_stock=max(safety_stock, 0),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[NetworkStock.material_id],
        set_={
            "on_hand": NetworkStock.on_hand + on_hand,
            "reserved": NetworkStock.reserved + reserved,
            "safety_stock": NetworkStock.safety_stock + safety_stock,
        },
    ).returning(NetworkStock.on_hand - NetworkStock.reserved - NetworkStock.safety_stock)
    available = await session.scalar(stmt)
    await signals.stock_changed(session, material_id, available, on_hand - reserved - safety_stock)


async def recompute_network(
    session: AsyncSession, material_ids: list[int] | None = None
) -> list[tuple[int, int, int]]:
    """Rebuild network on_hand/safety from active locations (after a location's status changes).
    Reserved is kept: it counts reservations, which do not depend on location status. Returns
    ``(material id, available after, change of available)`` per material, for the signals."""
    before_query = select(NetworkStock.material_id, AVAILABLE).order_by(NetworkStock.material_id)
    if material_ids is not None:
        wanted = arrays.id_table(material_ids)
        before_query = before_query.join(wanted, NetworkStock.material_id == wanted.c.id)
    before = dict((await session.execute(before_query.with_for_update(of=NetworkStock.__table__))).all())
    active = Location.status == LocationStatus.active
    agg = (
        select(
            StockLevel.material_id,
            func.coalesce(func.sum(StockLevel.on_hand).filter(active), 0),
            literal(0),
            func.coalesce(func.sum(StockLevel.safety_stock).filter(active), 0),
        )
        .join(Location, Location.id == StockLevel.location_id)
        .group_by(StockLevel.material_id)
        .order_by(StockLevel.material_id)
    )
    if material_ids is not None:
        wanted = arrays.id_table(material_ids)
        agg = agg.join(wanted, StockLevel.material_id == wanted.c.id)
    stmt = insert(NetworkStock).from_select(["material_id", "on_hand", "reserved", "safety_stock"], agg)
    stmt = stmt.on_conflict_do_update(
        index_elements=[NetworkStock.material_id],
        set_={"on_hand": stmt.excluded.on_hand, "safety_stock": stmt.excluded.safety_stock},
    ).returning(NetworkStock.material_id, AVAILABLE)
    after = (await session.execute(stmt)).all()
    return [(m, available, available - before.get(m, 0)) for m, available in after]


@dataclass
class LedgerMismatch:
    scope: str
    key: tuple
    level: dict
    replayed: dict


async def check_ledger(session: AsyncSession) -> list[LedgerMismatch]:
    """Replay the whole ledger and compare with the levels. Empty list = they agree exactly.

    Location levels must equal the sum of their movements; the network's reserved must equal the sum of
    every reserved delta, and its on_hand/safety the sums over active locations.
    """
    mismatches: list[LedgerMismatch] = []
    replay = {
        (row.location_id, row.material_id): row
        for row in (
            await session.execute(
                select(
                    StockMovement.location_id,
                    StockMovement.material_id,
                    func.sum(StockMovement.d_on_hand).label("on_hand"),
                    func.sum(StockMovement.d_reserved).label("reserved"),
                    func.sum(StockMovement.d_in_transit).label("in_transit"),
                    func.sum(StockMovement.d_defective).label("defective"),
                    func.sum(StockMovement.d_safety).label("safety_stock"),
                )
                .where(StockMovement.location_id.is_not(None))
                .group_by(StockMovement.location_id, StockMovement.material_id)
            )
        ).all()
    }
    levels = {
        (lv.location_id, lv.material_id): lv for lv in (await session.scalars(select(StockLevel))).all()
    }
    for key in set(replay) | set(levels):
        level, moved = levels.get(key), replay.get(key)
        have = {b: getattr(level, b) if level else 0 for b in BUCKETS}
        want = {b: int(getattr(moved, b)) if moved else 0 for b in BUCKETS}
        if have != want:
            mismatches.append(LedgerMismatch("location", key, have, want))

    active = Location.status == LocationStatus.active
    sellable = {
        row.material_id: row
        for row in (
            await session.execute(
                select(
                    StockLevel.material_id,
                    func.sum(StockLevel.on_hand).label("on_hand"),
                    func.sum(StockLevel.safety_stock).label("safety_stock"),
                )
                .join(Location, Location.id == StockLevel.location_id)
                .where(active)
                .group_by(StockLevel.material_id)
            )
        ).all()
    }
    reserved = dict(
        (
            await session.execute(
                select(StockMovement.material_id, func.sum(StockMovement.d_reserved)).group_by(
                    StockMovement.material_id
                )
            )
        ).all()
    )
    network = {n.material_id: n for n in (await session.scalars(select(NetworkStock))).all()}
    for material_id in set(network) | set(sellable) | set(reserved):
        n, a = network.get(material_id), sellable.get(material_id)
        have = {b: getattr(n, b) if n else 0 for b in ("on_hand", "reserved", "safety_stock")}
        want = {
            "on_hand": int(a.on_hand) if a else 0,
            "reserved": int(reserved.get(material_id) or 0),
            "safety_stock": int(a.safety_stock) if a else 0,
        }
        if have != want:
            mismatches.append(LedgerMismatch("network", (material_id,), have, want))
    return mismatches
