"""Inventory queries: filtered connections over the tenant's rows and the computed stock views."""

from __future__ import annotations

import base64

import strawberry
from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.types import Info

from app.api.inventory.filters import (
    AllocationPoolFilter,
    LocationFilter,
    ReservationFilter,
    StockLevelFilter,
    StockMovementFilter,
    by_id,
    levels_query,
    locations_query,
    movements_query,
    pools_query,
    reservations_query,
)
from app.api.inventory.ids import MAX_IDS, opt_id, row_id
from app.api.inventory.types import (
    AllocationPoolNode,
    AvailableToPromise,
    InventorySettings,
    LocationNode,
    MaterialAvailability,
    NetworkStockLevel,
    ProductAvailability,
    ReservationNode,
    StockAlertNode,
    StockLevelNode,
    StockMovementNode,
    StockPublicationNode,
)
from app.api.permissions import requires
from app.api.relay import DEFAULT_PAGE, MAX_PAGE, connection, paginate
from app.catalog import service as catalog
from app.catalog.models import STOCKED_KINDS, Material, Product
from app.errors import UserError
from app.inventory import atp
from app.inventory.models import (
    AllocationPool,
    Location,
    NetworkStock,
    Reservation,
    StockAlert,
    StockLevel,
    StockMovement,
    StockPublication,
)

READ = requires("inventory:read")


def _level_cursor(location_id: int, material_id: int) -> str:
    return base64.urlsafe_b64encode(f"s:{location_id}:{material_id}".encode()).decode()


def _level_after(cursor: str) -> tuple[int, int]:
    try:
        kind, *keys = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
    except (ValueError, UnicodeDecodeError):
        kind, keys = "", []
    if kind != "s" or len(keys) != 2 or not all(k.isascii() and k.isdigit() and len(k) <= 18 for k in keys):
        raise UserError("INVALID_CURSOR", "cursor is not valid", "after")
    return int(keys[0]), int(keys[1])


async def paginate_levels(
    session: AsyncSession, query: Select, *, first: int | None, after: str | None
) -> relay.Connection[StockLevelNode]:
    """Keyset pagination on the (location, material) primary key, which paginate() cannot use."""
    if first is not None and not 0 <= first <= MAX_PAGE:
        raise UserError("INVALID_PAGE_SIZE", f"first must be between 0 and {MAX_PAGE}", "first")
    limit = DEFAULT_PAGE if first is None else first
    key = tuple_(StockLevel.location_id, StockLevel.material_id)
    if after:
        query = query.where(key > tuple_(*_level_after(after)))
    query = query.order_by(StockLevel.location_id, StockLevel.material_id).limit(limit + 1)
    rows = list((await session.scalars(query)).all())

    def edge(r):
        return StockLevelNode.from_row(r), _level_cursor(r.location_id, r.material_id)

    return connection(rows, limit, after, edge)


def _row_ids(info: Info, gids: list[strawberry.ID], type_name: str, field: str) -> list[int | None]:
    if len(gids) > MAX_IDS:
        raise UserError("TOO_MANY_IDS", f"give at most {MAX_IDS} ids", field)
    return [row_id(info, g, type_name) for g in gids]


async def _existing(session: AsyncSession, model, ids: list[int | None]) -> set[int]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return set()
    return set((await session.scalars(select(model.id).where(model.id.in_(wanted)))).all())


async def _atp(session: AsyncSession, channel_id: int | None, material_ids: list[int]) -> dict[int, int]:
    """Per channel (pools, protection) when one is given, else what the network can sell."""
    if channel_id is not None:
        return await atp.channel_atp(session, channel_id, material_ids)
    rows = await session.scalars(select(NetworkStock).where(NetworkStock.material_id.in_(material_ids)))
    found = {n.material_id: max(n.on_hand - n.reserved - n.safety_stock, 0) for n in rows}
    return {m: found.get(m, 0) for m in material_ids}


@strawberry.type
class InventoryQueries:
    @strawberry.field(permission_classes=READ, description="Locations, in the order they were created.")
    async def locations(
        self,
        info: Info,
        filter: LocationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[LocationNode]:
        async with info.context.tenant_session() as session:
            return await paginate(
                session,
                locations_query(filter or LocationFilter()),
                Location.id,
                LocationNode.from_row,
                first=first,
                after=after,
                newest_first=False,
            )

    @strawberry.field(permission_classes=READ, description="Stock per location and material.")
    async def stock_levels(
        self,
        info: Info,
        filter: StockLevelFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[StockLevelNode]:
        async with info.context.tenant_session() as session:
            return await paginate_levels(
                session, levels_query(info, filter or StockLevelFilter()), first=first, after=after
            )

    @strawberry.field(permission_classes=READ, description="The stock ledger, newest first.")
    async def stock_movements(
        self,
        info: Info,
        filter: StockMovementFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[StockMovementNode]:
        query = movements_query(info, filter or StockMovementFilter())
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, StockMovement.id, StockMovementNode.from_row, first=first, after=after
            )

    @strawberry.field(permission_classes=READ, description="Reservations, newest first.")
    async def reservations(
        self,
        info: Info,
        filter: ReservationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[ReservationNode]:
        query = reservations_query(info, filter or ReservationFilter())
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, Reservation.id, ReservationNode.from_row, first=first, after=after
            )

    @strawberry.field(permission_classes=READ)
    async def allocation_pools(
        self,
        info: Info,
        filter: AllocationPoolFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[AllocationPoolNode]:
        query = pools_query(info, filter or AllocationPoolFilter())
        async with info.context.tenant_session() as session:
            return await paginate(
                session,
                query,
                AllocationPool.id,
                AllocationPoolNode.from_row,
                first=first,
                after=after,
                newest_first=False,
            )

    @strawberry.field(permission_classes=READ, description="Low-stock alerts, newest first.")
    async def stock_alerts(
        self,
        info: Info,
        material_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[StockAlertNode]:
        query = by_id(info, select(StockAlert), StockAlert.material_id, material_id, "Material")
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, StockAlert.id, StockAlertNode.from_row, first=first, after=after
            )

    @strawberry.field(permission_classes=READ, description="Channel stock publications, newest first.")
    async def stock_publications(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[StockPublicationNode]:
        async with info.context.tenant_session() as session:
            return await paginate(
                session,
                select(StockPublication),
                StockPublication.id,
                StockPublicationNode.from_row,
                first=first,
                after=after,
            )

    @strawberry.field(
        permission_classes=READ,
        description="Network stock per material, in the order given; null for ids that are not yours.",
    )
    async def network_stock(
        self, info: Info, material_ids: list[strawberry.ID]
    ) -> list[NetworkStockLevel | None]:
        ids = _row_ids(info, material_ids, "Material", "materialIds")
        async with info.context.tenant_session() as session:
            known = await _existing(session, Material, ids)
            rows = {
                n.material_id: n
                for n in await session.scalars(
                    select(NetworkStock).where(NetworkStock.material_id.in_(known))
                )
            }
        out: list[NetworkStockLevel | None] = []
        for material_id in ids:
            if material_id not in known:
                out.append(None)
                continue
            n = rows.get(material_id)
            on_hand, reserved, safety = (n.on_hand, n.reserved, n.safety_stock) if n else (0, 0, 0)
            out.append(
                NetworkStockLevel(
                    material_row_id=material_id,
                    on_hand=on_hand,
                    reserved=reserved,
                    safety_stock=safety,
                    available=on_hand - reserved - safety,
                )
            )
        return out

    @strawberry.field(
        permission_classes=READ,
        description="What a channel may sell now (its pool, low-stock protection); without a channel,"
        " what the whole network may sell. A product is limited by its scarcest component.",
    )
    async def available_to_promise(
        self,
        info: Info,
        channel_id: strawberry.ID | None = None,
        material_ids: list[strawberry.ID] | None = None,
        product_ids: list[strawberry.ID] | None = None,
    ) -> AvailableToPromise:
        m_ids = _row_ids(info, material_ids or [], "Material", "materialIds")
        p_ids = _row_ids(info, product_ids or [], "Product", "productIds")
        async with info.context.tenant_session() as session:
            channel = opt_id(info, channel_id, "Channel", "channel", "channelId")
            known_materials = await _existing(session, Material, m_ids)
            wanted = {i for i in p_ids if i is not None}
            products = {
                p.id: p
                for p in (
                    await session.scalars(select(Product).where(Product.id.in_(wanted))) if wanted else []
                )
            }
            components = await catalog.explode(session, sorted(products)) if products else {}
            all_materials = known_materials | {m for parts in components.values() for m, _ in parts}
            if channel is not None or all_materials:
                by_material = await _atp(session, channel, sorted(all_materials))
            else:
                by_material = {}
        materials = [
            MaterialAvailability(material_row_id=m, available=by_material[m])
            if m in known_materials
            else None
            for m in m_ids
        ]
        return AvailableToPromise(
            materials=materials,
            products=[
                _product_availability(products[p], components.get(p, []), by_material)
                if p in products
                else None
                for p in p_ids
            ],
        )

    @strawberry.field(permission_classes=READ)
    async def inventory_settings(self, info: Info) -> InventorySettings:
        async with info.context.tenant_session() as session:
            return InventorySettings(protect_below=await atp.protect_below(session))


def _product_availability(product: Product, parts, by_material: dict[int, int]) -> ProductAvailability:
    if product.kind not in STOCKED_KINDS:
        available = None
    elif not product.active or not parts:
        available = 0  # inactive, or a stocked product with no components: cannot be sold
    else:
        available = atp.product_atp(parts, by_material)
    return ProductAvailability(product_row_id=product.id, available=available)
