"""Filter inputs of the inventory lists and the SELECTs they become.

An id in a filter that is not the caller's (another tenant's, another type, garbage) matches nothing.
"""

from __future__ import annotations

import strawberry
from sqlalchemy import Select, false, select
from strawberry.types import Info

from app.api.filters import contains, text_is
from app.api.inventory.ids import row_id
from app.api.inventory.types import (
    LocationKindEnum,
    LocationStatusEnum,
    MovementKindEnum,
    ReservationStatusEnum,
)
from app.inventory.models import AllocationPool, Location, Reservation, StockLevel, StockMovement

NOTHING = -1


@strawberry.input
class LocationFilter:
    status: LocationStatusEnum | None = None
    kind: LocationKindEnum | None = None
    search: str | None = strawberry.field(default=None, description="Part of the code, name or city.")
    tag: str | None = None


@strawberry.input
class StockLevelFilter:
    location_id: strawberry.ID | None = None
    material_id: strawberry.ID | None = None
    low_only: bool = strawberry.field(
        default=False, description="Only levels with nothing to sell above their safety stock."
    )


@strawberry.input
class StockMovementFilter:
    material_id: strawberry.ID | None = None
    location_id: strawberry.ID | None = None
    kind: MovementKindEnum | None = None
    reference: str | None = None


@strawberry.input
class ReservationFilter:
    reference: str | None = None
    status: ReservationStatusEnum | None = None
    channel_id: strawberry.ID | None = None
    material_id: strawberry.ID | None = None


@strawberry.input
class AllocationPoolFilter:
    channel_id: strawberry.ID | None = None
    material_id: strawberry.ID | None = None


def by_id(info: Info, query: Select, column, gid, type_name: str) -> Select:
    if gid is None:
        return query
    return query.where(column == (row_id(info, gid, type_name) or NOTHING))


def locations_query(f: LocationFilter) -> Select:
    query = select(Location)
    if f.status is not None:
        query = query.where(Location.status == f.status)
    if f.kind is not None:
        query = query.where(Location.kind == f.kind)
    if f.tag:
        query = query.where(false() if "\x00" in f.tag else Location.tags.contains([f.tag]))
    if f.search and f.search.strip():
        pattern = contains(f.search)
        query = query.where(
            Location.code.ilike(pattern) | Location.name.ilike(pattern) | Location.city.ilike(pattern)
        )
    return query


def levels_query(info: Info, f: StockLevelFilter) -> Select:
    query = select(StockLevel)
    query = by_id(info, query, StockLevel.location_id, f.location_id, "Location")
    query = by_id(info, query, StockLevel.material_id, f.material_id, "Material")
    if f.low_only:
        query = query.where(StockLevel.on_hand - StockLevel.reserved <= StockLevel.safety_stock)
    return query


def movements_query(info: Info, f: StockMovementFilter) -> Select:
    query = select(StockMovement)
    query = by_id(info, query, StockMovement.material_id, f.material_id, "Material")
    query = by_id(info, query, StockMovement.location_id, f.location_id, "Location")
    if f.kind is not None:
        query = query.where(StockMovement.kind == f.kind)
    return text_is(query, StockMovement.reference, f.reference)


def reservations_query(info: Info, f: ReservationFilter) -> Select:
    query = select(Reservation)
    query = by_id(info, query, Reservation.channel_id, f.channel_id, "Channel")
    query = by_id(info, query, Reservation.material_id, f.material_id, "Material")
    if f.status is not None:
        query = query.where(Reservation.status == f.status)
    return text_is(query, Reservation.reference, f.reference)


def pools_query(info: Info, f: AllocationPoolFilter) -> Select:
    query = by_id(info, select(AllocationPool), AllocationPool.channel_id, f.channel_id, "Channel")
    return by_id(info, query, AllocationPool.material_id, f.material_id, "Material")
