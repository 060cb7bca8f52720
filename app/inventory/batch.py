"""Batched stock changes: ``count_many`` and ``receive_many``, the set-based forms of ``service.count``
and ``service.receive`` for imports, and ``apply_many``, the batched form of ``ledger.apply``.

A batch costs a constant number of statements however many rows it has: existence checks, one locking
read of the level rows (a join on ``unnest()`` of the location and material id arrays, in material
order), one insert of the level rows that do not exist yet, then ``apply_many``: one update of the
levels, one insert of the movements, the network rows locked in material order (as reservations lock
them, so a batch and live orders never deadlock) and updated at once, the signals. Each changed row
still gets its own ledger movements, exactly as the one-row functions write them. All or nothing: a bad
row raises a UserError naming it (``["rows", i, …]``); callers that want to keep the good rows check
them first, as ``app.inventory.bulk`` does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.arrays import id_table
from app.catalog.models import Material
from app.errors import NotFound, UserError
from app.inventory import signals
from app.inventory.ledger import BUCKETS, Deltas, check_quantity
from app.inventory.models import (
    Location,
    LocationStatus,
    MovementKind,
    NetworkStock,
    StockLevel,
    StockMovement,
)

Pair = tuple[int, int]  # (location id, material id)
_LEVEL_COLUMNS = tuple(c.key for c in StockLevel.__table__.columns)


@dataclass(frozen=True)
class Change:
    """One movement of a batch: ``deltas`` of ``kind`` for one location x material."""

    kind: MovementKind
    location_id: int
    material_id: int
    deltas: Deltas
    reason: str = ""


def snapshot(row) -> StockLevel:
    """A StockLevel outside the session, from a row or an instance: results outlive the transaction."""
    return StockLevel(**{c: getattr(row, c) for c in _LEVEL_COLUMNS})


async def levels_for_update(session: AsyncSession, pairs: list[Pair]) -> dict[Pair, StockLevel]:
    """Lock the existing level rows of ``pairs`` in (material, location) order; returns snapshots."""
    if not pairs:
        return {}
    locations, materials = zip(*pairs, strict=True)
    d = func.unnest(arrays.ids(locations), arrays.ids(materials)).table_valued("location_id", "material_id")
    d = d.render_derived(name="d")
    rows = await session.execute(
        select(*StockLevel.__table__.c)
        .join(d, and_(StockLevel.location_id == d.c.location_id, StockLevel.material_id == d.c.material_id))
        .order_by(StockLevel.material_id, StockLevel.location_id)
        .with_for_update(of=StockLevel.__table__)
    )
    return {(r.location_id, r.material_id): snapshot(r) for r in rows}


async def create_levels(session: AsyncSession, pairs: list[Pair]) -> dict[Pair, StockLevel]:
    """Create empty level rows for ``pairs`` (missing ones) and lock them all. A row someone else
    created meanwhile is locked and returned with its figures."""
    if not pairs:
        return {}
    ordered = sorted(set(pairs), key=lambda p: (p[1], p[0]))
    locations, materials = zip(*ordered, strict=True)
    d = func.unnest(arrays.ids(locations), arrays.ids(materials)).table_valued("location_id", "material_id")
    d = d.render_derived(name="d")
    rows = select(d.c.location_id, d.c.material_id, *(literal(0).label(b) for b in BUCKETS))
    stmt = (
        insert(StockLevel)
        .from_select(["location_id", "material_id", *BUCKETS], rows)
        .on_conflict_do_nothing(index_elements=[StockLevel.location_id, StockLevel.material_id])
        .returning(*StockLevel.__table__.c)
    )
    created = {(r.location_id, r.material_id): snapshot(r) for r in await session.execute(stmt)}
    raced = [p for p in ordered if p not in created]
    return created | await levels_for_update(session, raced)


async def apply_many(
    session: AsyncSession,
    changes: list[Change],
    *,
    reference: str = "",
    actor: str = "system",
) -> dict[Pair, StockLevel]:
    """Apply a batch: one movement per change, the deltas summed per location x material onto its level
    and per material onto the network (active locations only), then the signals. The level rows must
    exist and be locked by the caller (``levels_for_update`` / ``create_levels``). All or nothing: a
    bucket going below zero raises INSUFFICIENT_STOCK. Returns the new levels."""
    if not changes:
        return {}
    per_pair: dict[Pair, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
    for c in changes:
        sums = per_pair[(c.location_id, c.material_id)]
        for i, (_, d) in enumerate(c.deltas.items()):
            sums[i] += d
    pairs = sorted(per_pair, key=lambda p: (p[1], p[0]))
    columns = list(zip(*(per_pair[p] for p in pairs), strict=True))
    locations, materials = zip(*pairs, strict=True)
    d = func.unnest(arrays.ids(locations), arrays.ids(materials), *(arrays.ints(col) for col in columns))
    d = d.table_valued("location_id", "material_id", *BUCKETS).render_derived(name="d")
    guards = [getattr(StockLevel, b) + d.c[b] >= 0 for b in BUCKETS]
    updated = await session.execute(
        StockLevel.__table__.update()
        .where(StockLevel.location_id == d.c.location_id, StockLevel.material_id == d.c.material_id, *guards)
        .values(**{b: getattr(StockLevel, b) + d.c[b] for b in BUCKETS}, updated_at=func.now())
        .returning(*StockLevel.__table__.c)
    )
    levels = {(r.location_id, r.material_id): snapshot(r) for r in updated}
    if len(levels) != len(pairs):
        missing = next(p for p in pairs if p not in levels)
        raise UserError(
            "INSUFFICIENT_STOCK",
            f"not enough stock at location {missing[0]} for the change of material {missing[1]}",
            "quantity",
        )
    await session.execute(
        insert(StockMovement),
        [
            {
                "kind": c.kind,
                "material_id": c.material_id,
                "location_id": c.location_id,
                "d_on_hand": c.deltas.on_hand,
                "d_reserved": c.deltas.reserved,
                "d_in_transit": c.deltas.in_transit,
                "d_defective": c.deltas.defective,
                "d_safety": c.deltas.safety_stock,
                "reason": c.reason[:300],
                "reference": reference[:200],
                "actor": actor,
            }
            for c in changes
        ],
    )
    wanted = arrays.id_table(set(locations))
    active = set(
        (
            await session.scalars(
                select(Location.id)
                .join(wanted, Location.id == wanted.c.id)
                .where(Location.status == LocationStatus.active)
            )
        ).all()
    )
    network: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (location_id, material_id), sums in per_pair.items():
        if location_id in active:
            n = network[material_id]
            n[0], n[1], n[2] = n[0] + sums[0], n[1] + sums[1], n[2] + sums[4]
    await network_deltas(session, {m: tuple(v) for m, v in network.items() if any(v)})
    return levels


async def network_deltas(session: AsyncSession, deltas: dict[int, tuple[int, int, int]]) -> None:
    """``network_delta`` for many materials: material id -> (on hand, reserved, safety stock) deltas.
    Rows are locked in material order first (as reservations take them), then updated in one go."""
    if not deltas:
        return
    materials = sorted(deltas)
    locked = set(await _lock_network(session, materials))
    if missing := [m for m in materials if m not in locked]:
        new = arrays.id_table(missing)
        zero = [literal(0).label(b) for b in ("on_hand", "reserved", "safety_stock")]
        await session.execute(
            insert(NetworkStock)
            .from_select(["material_id", "on_hand", "reserved", "safety_stock"], select(new.c.id, *zero))
            .on_conflict_do_nothing(index_elements=[NetworkStock.material_id])
        )
        await _lock_network(session, missing)  # rows created by someone else meanwhile
    on_hand, reserved, safety = zip(*(deltas[m] for m in materials), strict=True)
    d = func.unnest(arrays.ids(materials), arrays.ints(on_hand), arrays.ints(reserved), arrays.ints(safety))
    d = d.table_valued("material_id", "on_hand", "reserved", "safety_stock").render_derived(name="d")
    rows = await session.execute(
        NetworkStock.__table__.update()
        .where(NetworkStock.material_id == d.c.material_id)
        .values(
            on_hand=NetworkStock.on_hand + d.c.on_hand,
            reserved=NetworkStock.reserved + d.c.reserved,
            safety_stock=NetworkStock.safety_stock + d.c.safety_stock,
        )
        .returning(
            NetworkStock.material_id,
            NetworkStock.on_hand - NetworkStock.reserved - NetworkStock.safety_stock,
            d.c.on_hand - d.c.reserved - d.c.safety_stock,
        )
    )
    await signals.stock_changed_many(session, [tuple(r) for r in rows])


async def _lock_network(session: AsyncSession, materials: list[int]) -> list[int]:
    """Lock the network rows of ``materials`` in material order; returns the ids that have one."""
    wanted = arrays.id_table(materials)
    return list(
        (
            await session.scalars(
                select(NetworkStock.material_id)
                .join(wanted, NetworkStock.material_id == wanted.c.id)
                .order_by(NetworkStock.material_id)
                .with_for_update(of=NetworkStock.__table__)
            )
        ).all()
    )


# ---- counts and receipts ---------------------------------------------------------------------------

MAX_ROWS = 10_000


@dataclass(frozen=True)
class CountRow:
    location_id: int
    material_id: int
    counted: int  # on hand becomes this
    safety_stock: int | None = None  # left unchanged when None


@dataclass(frozen=True)
class ReceiveRow:
    location_id: int
    material_id: int
    quantity: int


@dataclass
class Counted:
    """The level after the row (None: no level exists and the row changed nothing) and whether the row
    changed it."""

    level: StockLevel | None
    changed: bool


def _field(i: int, name: str) -> list[str]:
    return ["rows", str(i), name]


def _check_size(rows: list) -> None:
    if not 0 < len(rows) <= MAX_ROWS:
        raise UserError("INVALID_ROWS", f"give 1-{MAX_ROWS:,} rows", "rows")


async def _check_exist(session: AsyncSession, rows: list, *, receiving: bool = False) -> None:
    """Every location and material of ``rows`` exists (and, when receiving, no location is closed)."""
    locations, materials = id_table({r.location_id for r in rows}), id_table({r.material_id for r in rows})
    query = union_all(
        select(literal("l").label("kind"), Location.id, Location.status == LocationStatus.closed).join(
            locations, Location.id == locations.c.id
        ),
        select(literal("m").label("kind"), Material.id, literal(False)).join(
            materials, Material.id == materials.c.id
        ),
    )
    found = {(kind, row_id): closed for kind, row_id, closed in (await session.execute(query)).all()}
    for i, r in enumerate(rows):
        if ("l", r.location_id) not in found:
            raise NotFound("location", _field(i, "locationId"))
        if ("m", r.material_id) not in found:
            raise NotFound("material", _field(i, "materialId"))
        if receiving and found[("l", r.location_id)]:
            raise UserError(
                "LOCATION_CLOSED", "this location is closed: it cannot receive goods", _field(i, "locationId")
            )


async def count_many(
    session: AsyncSession, rows: list[CountRow], *, actor: str = "system", reference: str = ""
) -> list[Counted]:
    """Stock counts for many location x material pairs (each at most once): on hand becomes what was
    counted, and safety stock what is given. Rows equal to the current level write nothing, so counting
    the same figures again is a no-op. Returns one ``Counted`` per row, in order."""
    _check_size(rows)
    seen: set[Pair] = set()
    for i, r in enumerate(rows):
        check_quantity(r.counted, _field(i, "counted"), allow_zero=True)
        if r.safety_stock is not None:
            check_quantity(r.safety_stock, _field(i, "safetyStock"), allow_zero=True)
        if (r.location_id, r.material_id) in seen:
            raise UserError(
                "DUPLICATE_ROW", "this location and material are counted twice", _field(i, "materialId")
            )
        seen.add((r.location_id, r.material_id))
    await _check_exist(session, rows)

    current = await levels_for_update(session, list(seen))
    new = [
        (r.location_id, r.material_id)
        for r in rows
        if (r.location_id, r.material_id) not in current and (r.counted or r.safety_stock)
    ]
    current |= await create_levels(session, new)

    changes: list[Change] = []
    for r in rows:
        level = current.get((r.location_id, r.material_id))
        on_hand, safety = (level.on_hand, level.safety_stock) if level else (0, 0)
        if r.counted != on_hand:
            changes.append(
                Change(
                    MovementKind.count,
                    r.location_id,
                    r.material_id,
                    Deltas(on_hand=r.counted - on_hand),
                    f"counted {r.counted}, was {on_hand}",
                )
            )
        if r.safety_stock is not None and r.safety_stock != safety:
            delta = Deltas(safety_stock=r.safety_stock - safety)
            changes.append(Change(MovementKind.safety, r.location_id, r.material_id, delta))
    levels = await apply_many(session, changes, reference=reference, actor=actor)
    return [
        Counted(levels[p], True) if p in levels else Counted(current.get(p), False)
        for p in ((r.location_id, r.material_id) for r in rows)
    ]


async def receive_many(
    session: AsyncSession,
    rows: list[ReceiveRow],
    *,
    reference: str = "",
    reason: str = "",
    actor: str = "system",
) -> list[StockLevel]:
    """Goods arrived, many rows at once: one receipt movement per row. Returns the level after the
    batch for each row, in order."""
    _check_size(rows)
    for i, r in enumerate(rows):
        check_quantity(r.quantity, _field(i, "quantity"))
    await _check_exist(session, rows, receiving=True)
    pairs = sorted({(r.location_id, r.material_id) for r in rows}, key=lambda p: (p[1], p[0]))
    current = await levels_for_update(session, pairs)
    await create_levels(session, [p for p in pairs if p not in current])
    changes = [
        Change(MovementKind.receipt, r.location_id, r.material_id, Deltas(on_hand=r.quantity), reason)
        for r in rows
    ]
    levels = await apply_many(session, changes, reference=reference, actor=actor)
    return [levels[(r.location_id, r.material_id)] for r in rows]
