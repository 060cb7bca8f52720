"""Inventory operations: locations, stock changes (each one a ledger movement), pools, settings, alerts.

Every stock change names a location that must exist (NOT_FOUND otherwise, before anything is written);
goods cannot be received into, or transferred to, a closed location (LOCATION_CLOSED). Changes that
reduce stock (counts, adjustments, defects, pausing a location) always apply, even when that leaves the
network with more reserved than it can sell: reality wins, and the low-stock signal says so.
``count_many`` and ``receive_many`` are the batched forms, a constant number of statements per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.catalog.models import Material
from app.channels.models import Channel
from app.db import session_tenant
from app.errors import NotFound, UserError
from app.inventory import ledger, signals
from app.inventory.batch import CountRow, ReceiveRow, count_many, receive_many  # noqa: F401  (public API)
from app.inventory.ledger import Deltas, check_quantity
from app.inventory.models import (
    CAPABILITIES,
    AllocationPool,
    InventorySettings,
    Location,
    LocationKind,
    LocationStatus,
    MovementKind,
    PoolMode,
    StockLevel,
)
from app.inventory.reservations import Reserved, ReserveLine, release, reserve  # noqa: F401  (public API)

MAX_CODE = 60


async def _material(session: AsyncSession, material_id: int) -> Material:
    material = await session.get(Material, material_id)
    if material is None:
        raise NotFound("material", "materialId")
    return material


async def _location(session: AsyncSession, location_id: int) -> Location:
    location = await session.get(Location, location_id)
    if location is None:
        raise NotFound("location", "locationId")
    return location


async def _receiving(session: AsyncSession, location_id: int, field: str = "locationId") -> LocationStatus:
    """The status of a location goods may arrive at: it exists and is not closed."""
    status = await session.scalar(select(Location.status).where(Location.id == location_id))
    if status is None:
        raise NotFound("location", field)
    if status is LocationStatus.closed:
        raise UserError("LOCATION_CLOSED", "this location is closed: it cannot receive goods", field)
    return status


# ---- locations -------------------------------------------------------------------------------------


@dataclass
class LocationInput:
    code: str
    name: str
    kind: LocationKind
    address: str = ""
    city: str = ""
    province: str = ""
    region: str = ""
    lat: float | None = None
    lng: float | None = None
    priority: int = 100
    capabilities: tuple[str, ...] = ("ship",)
    daily_capacity: int | None = None
    tags: tuple[str, ...] = ()


def _validate_location(data: LocationInput) -> None:
    if not data.code or len(data.code) > MAX_CODE:
        raise UserError("INVALID_CODE", f"code must be 1-{MAX_CODE} characters", "code")
    if not data.name.strip():
        raise UserError("INVALID_NAME", "name is required", "name")
    if (data.lat is None) != (data.lng is None):
        raise UserError("INVALID_COORDINATES", "give both lat and lng, or neither", "lat")
    if data.lat is not None and not (-90 <= data.lat <= 90 and -180 <= data.lng <= 180):
        raise UserError("INVALID_COORDINATES", "lat must be within ±90 and lng within ±180", "lat")
    unknown = set(data.capabilities) - set(CAPABILITIES)
    if unknown:
        raise UserError(
            "INVALID_CAPABILITY",
            f"unknown capabilities {sorted(unknown)}; use {CAPABILITIES}",
            "capabilities",
        )
    if data.daily_capacity is not None and data.daily_capacity < 0:
        raise UserError("INVALID_CAPACITY", "daily capacity cannot be negative", "dailyCapacity")


async def create_location(session: AsyncSession, data: LocationInput) -> Location:
    _validate_location(data)
    if await session.scalar(select(Location.id).where(Location.code == data.code)):
        raise UserError("DUPLICATE_CODE", f"a location with code {data.code!r} exists", "code")
    location = Location(
        **{**data.__dict__, "capabilities": list(data.capabilities), "tags": list(data.tags)},
        status=LocationStatus.active,
    )
    session.add(location)
    await session.flush()
    return location


async def set_location_status(
    session: AsyncSession, location_id: int, status: LocationStatus, reason: str | None = None
) -> Location:
    """Pausing or closing a location takes its stock out of what the network sells, at once."""
    location = await _location(session, location_id)
    if status is not LocationStatus.active and not (reason or "").strip():
        raise UserError("REASON_REQUIRED", "say why the location is paused or closed", "reason")
    location.status = status
    location.status_reason = reason if status is not LocationStatus.active else None
    await session.flush()
    if status is not LocationStatus.active:
        # Its fulfilment orders not accepted yet move elsewhere (app.fulfillment.outage).
        await outbox.enqueue(
            session,
            "location_outage",
            tenant_id=session_tenant(session).id,
            location_id=location_id,
            since=datetime.now(UTC).isoformat(),
        )
    materials = (
        await session.scalars(select(StockLevel.material_id).where(StockLevel.location_id == location_id))
    ).all()
    if materials:
        changes = await ledger.recompute_network(session, list(materials))
        await signals.stock_changed_many(session, changes)
    return location


# ---- stock changes ---------------------------------------------------------------------------------


async def receive(
    session,
    location_id: int,
    material_id: int,
    quantity: int,
    *,
    reference: str = "",
    reason: str = "",
    actor: str = "system",
) -> StockLevel:
    check_quantity(quantity)
    status = await _receiving(session, location_id)
    await _material(session, material_id)
    return await ledger.apply(
        session,
        MovementKind.receipt,
        material_id,
        location_id,
        Deltas(on_hand=quantity),
        reference=reference,
        reason=reason,
        actor=actor,
        status=status,
    )


async def adjust(
    session, location_id: int, material_id: int, delta: int, *, reason: str, actor: str = "system"
) -> StockLevel:
    """A signed correction of on hand, with a mandatory reason."""
    if delta == 0:
        raise UserError("INVALID_QUANTITY", "an adjustment of 0 changes nothing", "delta")
    check_quantity(abs(delta), "delta")
    if not reason.strip():
        raise UserError("REASON_REQUIRED", "adjustments need a reason", "reason")
    status = await ledger.location_status(session, location_id)
    await _material(session, material_id)
    return await ledger.apply(
        session,
        MovementKind.adjustment,
        material_id,
        location_id,
        Deltas(on_hand=delta),
        reason=reason,
        actor=actor,
        status=status,
    )


async def count(
    session, location_id: int, material_id: int, counted: int, *, actor: str = "system", reference: str = ""
) -> StockLevel:
    """A stock count sets on hand to what was counted; the ledger records the difference."""
    check_quantity(counted, "counted", allow_zero=True)
    status = await ledger.location_status(session, location_id)
    await _material(session, material_id)
    current = (
        await session.scalar(
            select(StockLevel.on_hand)
            .where(StockLevel.location_id == location_id, StockLevel.material_id == material_id)
            .with_for_update()
        )
        or 0
    )
    return await ledger.apply(
        session,
        MovementKind.count,
        material_id,
        location_id,
        Deltas(on_hand=counted - current),
        reference=reference,
        actor=actor,
        reason=f"counted {counted}, was {current}",
        status=status,
    )


async def set_safety_stock(
    session,
    location_id: int,
    material_id: int,
    safety_stock: int,
    *,
    actor: str = "system",
    reference: str = "",
) -> StockLevel:
    check_quantity(safety_stock, "safetyStock", allow_zero=True)
    status = await ledger.location_status(session, location_id)
    await _material(session, material_id)
    current = (
        await session.scalar(
            select(StockLevel.safety_stock)
            .where(StockLevel.location_id == location_id, StockLevel.material_id == material_id)
            .with_for_update()
        )
        or 0
    )
    return await ledger.apply(
        session,
        MovementKind.safety,
        material_id,
        location_id,
        Deltas(safety_stock=safety_stock - current),
        reference=reference,
        actor=actor,
        status=status,
    )


async def mark_defective(
    session, location_id: int, material_id: int, quantity: int, *, reason: str, actor: str = "system"
) -> StockLevel:
    """Move units from on hand to defective (never sellable)."""
    check_quantity(quantity)
    return await ledger.apply(
        session,
        MovementKind.adjustment,
        material_id,
        location_id,
        Deltas(on_hand=-quantity, defective=quantity),
        reason=reason or "defective",
        actor=actor,
    )


async def transfer(
    session,
    from_location_id: int,
    to_location_id: int,
    material_id: int,
    quantity: int,
    *,
    reference: str = "",
    actor: str = "system",
) -> None:
    """Ship units between locations: they leave on hand at the source and are in transit at the target."""
    check_quantity(quantity)
    if from_location_id == to_location_id:
        raise UserError("INVALID_TRANSFER", "source and target are the same location", "toLocationId")
    source = await ledger.location_status(session, from_location_id)
    target = await _receiving(session, to_location_id, "toLocationId")
    await ledger.apply(
        session,
        MovementKind.transfer,
        material_id,
        from_location_id,
        Deltas(on_hand=-quantity),
        reference=reference,
        actor=actor,
        reason=f"to location {to_location_id}",
        status=source,
    )
    await ledger.apply(
        session,
        MovementKind.transfer,
        material_id,
        to_location_id,
        Deltas(in_transit=quantity),
        reference=reference,
        actor=actor,
        reason=f"from location {from_location_id}",
        status=target,
    )


async def receive_transfer(
    session, location_id: int, material_id: int, quantity: int, *, reference: str = "", actor: str = "system"
) -> StockLevel:
    """Transferred units arrived. Allowed at a location closed since the transfer left (the units exist
    and are on their way), which a transfer *to* a closed location is not."""
    check_quantity(quantity)
    return await ledger.apply(
        session,
        MovementKind.transfer,
        material_id,
        location_id,
        Deltas(on_hand=quantity, in_transit=-quantity),
        reference=reference,
        actor=actor,
        reason="transfer received",
    )


# ---- pools and settings ----------------------------------------------------------------------------


async def set_pool(
    session: AsyncSession, channel_id: int, mode: PoolMode, value: float = 0, material_id: int | None = None
) -> AllocationPool:
    if await session.get(Channel, channel_id) is None:
        raise NotFound("channel", "channelId")
    if material_id is not None:
        await _material(session, material_id)
    if value < 0 or (mode is PoolMode.percent and value > 100) or value > ledger.MAX_QUANTITY:
        raise UserError("INVALID_POOL", "quota must be 0 or more; percent between 0 and 100", "value")
    existing = await session.scalar(
        select(AllocationPool).where(
            AllocationPool.channel_id == channel_id,
            AllocationPool.material_id.is_(None)
            if material_id is None
            else AllocationPool.material_id == material_id,
        )
    )
    pool = existing or AllocationPool(channel_id=channel_id, material_id=material_id)
    pool.mode, pool.value = mode, value
    session.add(pool)
    await session.flush()
    return pool


async def set_protect_below(session: AsyncSession, units: int) -> None:
    """Below this many available units, only core channels may sell."""
    check_quantity(units, "units", allow_zero=True)
    stmt = insert(InventorySettings).values(id=1, protect_below=units)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[InventorySettings.id], set_={"protect_below": units})
    )
