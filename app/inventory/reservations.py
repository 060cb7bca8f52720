"""Reserving and releasing stock for an order, at network level (routing later picks locations).

Each material is reserved by one conditional UPDATE (``… WHERE available - floor >= qty``) and, for a
channel with a capped pool, one conditional upsert of its usage: under any concurrency exactly the
stock that exists is sold, and nothing locks more than the rows of the materials involved. Materials are
always taken in id order, so two orders sharing materials never deadlock. All-or-nothing: if one line
cannot be reserved the caller's transaction is rolled back.

A reference is reserved at most once: ``reserve`` first takes a transaction-scoped advisory lock on the
(tenant, reference) pair, so a second call for the same reference waits for the first to commit or roll
back and then answers with what it reserved (or reserves, if it rolled back). Calls for different
references never wait for each other there (a hash collision only makes two of them take turns). A
transaction that reserves several references takes their locks one after the other; callers that do so
concurrently should keep their references in one order.

A presale reservation holds only what existed; the rest is ``backordered``. ``fill_backorder`` later
turns that part into real reserved units, all of it or nothing, by the same conditional UPDATE, so
filling backorders can never sell a unit twice either.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.errors import NotFound, UserError
from app.inventory import atp, signals
from app.inventory.ledger import check_quantity
from app.inventory.models import (
    ChannelUsage,
    MovementKind,
    NetworkStock,
    PoolMode,
    Reservation,
    ReservationStatus,
    StockMovement,
)

MAX_LINES = 500


@dataclass(frozen=True)
class ReserveLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Reserved:
    material_id: int
    quantity: int
    backordered: int


AVAILABLE = NetworkStock.on_hand - NetworkStock.reserved - NetworkStock.safety_stock


class InsufficientStock(UserError):
    """INSUFFICIENT_STOCK naming the material that was short (callers that queue orders block it)."""

    def __init__(self, material_id: int, message: str, field: list[str] | str | None = None):
        super().__init__("INSUFFICIENT_STOCK", message, field)
        self.material_id = material_id


async def reserve(
    session: AsyncSession,
    lines: list[ReserveLine],
    *,
    reference: str,
    channel_id: int | None = None,
    actor: str = "system",
) -> list[Reserved]:
    """Reserve every line or raise INSUFFICIENT_STOCK. Idempotent on ``reference``: calling it again,
    also concurrently, returns what the first call reserved; a reference whose reservations were
    released raises RESERVATION_RELEASED (take a new reference to reserve again). Lines of virtual and
    service products hold no stock: an order of only those reserves nothing and returns []."""
    if not reference or len(reference) > 200:
        raise UserError("INVALID_REFERENCE", "reference must be 1-200 characters", "reference")
    if not lines or len(lines) > MAX_LINES:
        raise UserError("INVALID_LINES", f"give 1-{MAX_LINES} lines", "lines")
    await _lock_reference(session, reference)
    existing = (
        await session.scalars(
            select(Reservation).where(Reservation.reference == reference).order_by(Reservation.material_id)
        )
    ).all()
    if any(r.status is ReservationStatus.released for r in existing):
        raise UserError(
            "RESERVATION_RELEASED",
            f"the reservation {reference!r} was released; reserve under a new reference",
            "reference",
        )
    if existing:
        return [Reserved(r.material_id, r.quantity, r.backordered) for r in existing]

    needs = await _explode(session, lines)
    if not needs:
        return []  # nothing here holds stock
    rules = await atp.channel_rules(session, channel_id, list(needs)) if channel_id is not None else None
    results: list[Reserved] = []
    changes: list[tuple[int, int, int]] = []  # (material, available after, delta) for the signals
    for material_id in sorted(needs):
        quantity, backorder_ok, line_index = needs[material_id]
        taken = await _take(session, material_id, quantity, rules, changes, allow_short=backorder_ok)
        if taken is None:
            raise InsufficientStock(
                material_id,
                f"not enough stock for line {line_index + 1} (needs {quantity} of material {material_id})",
                ["lines", str(line_index), "quantity"],
            )
        results.append(Reserved(material_id, quantity, quantity - taken))
    await signals.stock_changed_many(session, changes)
    await session.execute(
        insert(Reservation),
        [
            {
                "reference": reference,
                "channel_id": channel_id,
                "material_id": r.material_id,
                "quantity": r.quantity,
                "backordered": r.backordered,
                "status": ReservationStatus.active,
            }
            for r in results
        ],
    )
    session.add_all(
        StockMovement(
            kind=MovementKind.reservation,
            material_id=r.material_id,
            location_id=None,
            d_reserved=r.quantity - r.backordered,
            reference=reference,
            actor=actor,
        )
        for r in results
        if r.quantity > r.backordered
    )
    return results


async def _lock_reference(session: AsyncSession, reference: str) -> None:
    """Until this transaction ends, no other ``reserve`` of this tenant's ``reference`` gets past here.
    Advisory locks are per database: the key includes the tenant schema, so tenants never wait on each
    other's references."""
    tenant = session.info.get("tenant")
    key = f"reserve:{tenant.schema_name if tenant else ''}:{reference}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def _explode(session: AsyncSession, lines: list[ReserveLine]) -> dict[int, tuple[int, bool, int]]:
    """material id -> (total quantity, backorder allowed, first line index)."""
    for i, line in enumerate(lines):
        check_quantity(line.quantity, ["lines", str(i), "quantity"])
    products = await catalog.explode(session, sorted({line.product_id for line in lines}))
    needs: dict[int, list] = defaultdict(lambda: [0, True, None])
    for i, line in enumerate(lines):
        product = products.get(line.product_id)
        if product is None or not product.active:
            raise NotFound("product", ["lines", str(i), "productId"])
        if not product.stocked:
            continue  # virtual and service products hold no stock
        for material_id, per_unit in product:
            need = needs[material_id]
            need[0] += per_unit * line.quantity
            need[1] = need[1] and product.may_go_short  # short only if every line using it may go short
            need[2] = i if need[2] is None else need[2]
    return {m: (q, ok, i) for m, (q, ok, i) in needs.items()}


async def _take(
    session: AsyncSession,
    material_id: int,
    quantity: int,
    rules: atp.ChannelRules | None,
    changes: list[tuple[int, int, int]],
    *,
    allow_short: bool,
) -> int | None:
    """Units actually reserved (== quantity unless allow_short), or None if it cannot be done. The
    change is appended to ``changes`` for one batched low-stock/sync signal per reservation."""
    floor = rules.floor() if rules else 0
    want = quantity
    if allow_short:
        available = (
            await session.scalar(select(AVAILABLE).where(NetworkStock.material_id == material_id)) or 0
        )
        want = max(0, min(quantity, available - floor))
    if want == 0:
        return 0 if allow_short else None
    if rules is not None and not await _use_pool(session, rules, material_id, want):
        return 0 if allow_short else None
    available = await session.scalar(
        update(NetworkStock)
        .where(NetworkStock.material_id == material_id, AVAILABLE - floor >= want)
        .values(reserved=NetworkStock.reserved + want)
        .returning(AVAILABLE)
    )
    if available is None:
        if not allow_short:
            return None
        # Someone took stock since we looked: go short on all of it rather than retry.
        if rules is not None:
            await _use_pool(session, rules, material_id, -want)
        return 0
    changes.append((material_id, available, -want))
    return want


async def _use_pool(session: AsyncSession, rules: atp.ChannelRules, material_id: int, quantity: int) -> bool:
    """Count units against the channel's usage, refusing to pass its pool limit."""
    limit = None
    pool = rules.pool_for(material_id)
    if quantity > 0 and pool is not None and pool.mode is not PoolMode.shared:
        network = await session.get(NetworkStock, material_id)
        if network is not None:
            limit = atp.pool_limit(pool, network.on_hand, network.safety_stock)
        if limit is not None and quantity > limit:
            return False
    stmt = insert(ChannelUsage).values(
        channel_id=rules.channel_id, material_id=material_id, reserved=max(quantity, 0)
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[ChannelUsage.channel_id, ChannelUsage.material_id],
        set_={"reserved": ChannelUsage.reserved + quantity},
        where=(ChannelUsage.reserved + quantity <= limit) if limit is not None else None,
    ).returning(ChannelUsage.reserved)
    return (await session.scalar(upsert)) is not None


async def release(session: AsyncSession, reference: str, *, actor: str = "system", reason: str = "") -> int:
    """Give back every active reservation of ``reference``. Idempotent; returns units released."""
    rows = (
        await session.scalars(
            select(Reservation)
            .where(Reservation.reference == reference, Reservation.status == ReservationStatus.active)
            .order_by(Reservation.material_id)
            .with_for_update()
        )
    ).all()
    released = 0
    for r in rows:
        held = r.quantity - r.backordered
        if held:
            available = await session.scalar(
                update(NetworkStock)
                .where(NetworkStock.material_id == r.material_id)
                .values(reserved=NetworkStock.reserved - held)
                .returning(AVAILABLE)
            )
            if r.channel_id is not None:
                await session.execute(
                    update(ChannelUsage)
                    .where(ChannelUsage.channel_id == r.channel_id, ChannelUsage.material_id == r.material_id)
                    .values(reserved=func.greatest(ChannelUsage.reserved - held, 0))
                )
            session.add(
                StockMovement(
                    kind=MovementKind.release,
                    material_id=r.material_id,
                    location_id=None,
                    d_reserved=-held,
                    reference=reference,
                    reason=reason[:300],
                    actor=actor,
                )
            )
            await signals.stock_changed(session, r.material_id, available, held)
        r.status = ReservationStatus.released
        r.released_at = func.now()
        released += held
    return released


async def fill_backorder(session: AsyncSession, reference: str, *, actor: str = "system") -> int:
    """Reserve for real the backordered units of ``reference``'s active reservations: every material
    in full, in material order, or raise InsufficientStock (naming the first one short) having changed
    what the caller then rolls back, as ``reserve`` does. The channel's rules (floor, pool) apply as
    when it reserved. Returns the units filled; 0 when nothing is backordered (a second call)."""
    await _lock_reference(session, reference)
    rows = (
        await session.scalars(
            select(Reservation)
            .where(
                Reservation.reference == reference,
                Reservation.status == ReservationStatus.active,
                Reservation.backordered > 0,
            )
            .order_by(Reservation.material_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    if not rows:
        return 0
    channel_id = rows[0].channel_id
    materials = [r.material_id for r in rows]
    rules = await atp.channel_rules(session, channel_id, materials) if channel_id is not None else None
    changes: list[tuple[int, int, int]] = []
    for r in rows:
        if await _take(session, r.material_id, r.backordered, rules, changes, allow_short=False) is None:
            raise InsufficientStock(
                r.material_id,
                f"not enough stock to fill the backorder of {r.backordered} of material {r.material_id}",
                "reference",
            )
    await signals.stock_changed_many(session, changes)
    session.add_all(
        StockMovement(
            kind=MovementKind.reservation,
            material_id=r.material_id,
            location_id=None,
            d_reserved=r.backordered,
            reference=reference,
            reason="backorder filled",
            actor=actor,
        )
        for r in rows
    )
    filled = sum(r.backordered for r in rows)
    for r in rows:
        r.backordered = 0
    await session.flush()
    return filled
