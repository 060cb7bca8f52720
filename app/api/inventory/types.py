"""GraphQL types of inventory: the Relay nodes (tenant-scoped ids) and the computed stock views."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.inventory.ids import gid, opt_gid
from app.api.relay import TenantScopedNode, load_nodes
from app.api.scopes import guarded_by
from app.inventory.models import (
    AllocationPool,
    Location,
    LocationKind,
    LocationStatus,
    MovementKind,
    PoolMode,
    Reservation,
    ReservationStatus,
    StockAlert,
    StockLevel,
    StockMovement,
    StockPublication,
)

READ = "inventory:read"

LocationKindEnum = strawberry.enum(LocationKind, name="LocationKind")
LocationStatusEnum = strawberry.enum(LocationStatus, name="LocationStatus")
MovementKindEnum = strawberry.enum(MovementKind, name="StockMovementKind")
ReservationStatusEnum = strawberry.enum(ReservationStatus, name="ReservationStatus")
PoolModeEnum = strawberry.enum(PoolMode, name="PoolMode")


def _loaders(info: Info):
    return info.context.loaders.inventory


@strawberry.type
class MaterialRef:
    material_row_id: strawberry.Private[int]

    @strawberry.field(description="Global id of the material (stock-keeping unit).")
    def material_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Material", self.material_row_id)

    @strawberry.field
    async def material_code(self, info: Info) -> str:
        row = await info.context.loaders.material.load(self.material_row_id)
        return row.code if row else ""


@guarded_by(READ)
@strawberry.type(name="Location")
class LocationNode(TenantScopedNode):
    """A warehouse, store, 3PL or drop-ship supplier that holds stock."""

    id: relay.NodeID[int]
    code: str
    name: str
    kind: LocationKindEnum
    status: LocationStatusEnum
    status_reason: str | None
    address: str
    city: str
    province: str
    region: str
    lat: float | None
    lng: float | None
    priority: int = strawberry.field(description="Lower ships first on ties.")
    capabilities: list[str]
    daily_capacity: int | None
    tags: list[str]
    accept_timeout_minutes: int = strawberry.field(
        description="A store's time to accept a fulfilment order before it is re-routed."
    )
    pickup_hold_hours: int = strawberry.field(
        description="How long a pick-up waits at the counter before it is cancelled."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: Location) -> LocationNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            kind=row.kind,
            status=row.status,
            status_reason=row.status_reason,
            address=row.address,
            city=row.city,
            province=row.province,
            region=row.region,
            lat=row.lat,
            lng=row.lng,
            priority=row.priority,
            capabilities=list(row.capabilities or []),
            daily_capacity=row.daily_capacity,
            tags=list(row.tags or []),
            accept_timeout_minutes=row.accept_timeout_minutes,
            pickup_hold_hours=row.pickup_hold_hours,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, _loaders(info).location, node_ids, cls.from_row, tenant_scoped=True)


async def _location(info: Info, location_id: int | None) -> LocationNode | None:
    if location_id is None:
        return None
    row = await _loaders(info).location.load(location_id)
    return LocationNode.from_row(row) if row else None


@guarded_by(READ)
@strawberry.type(name="StockLevel")
class StockLevelNode(TenantScopedNode, MaterialRef):
    """One material at one location. Its id names both: ``<location row>:<material row>``."""

    id: relay.NodeID[str]
    on_hand: int
    reserved: int
    in_transit: int
    defective: int = strawberry.field(description="Damaged units; never sellable, not in on hand.")
    safety_stock: int
    available: int = strawberry.field(
        description="onHand - reserved - safetyStock; below 0 when stock was lost after it was promised."
    )
    updated_at: datetime
    location_row_id: strawberry.Private[int]

    @strawberry.field
    async def location(self, info: Info) -> LocationNode | None:
        return await _location(info, self.location_row_id)

    @classmethod
    def from_row(cls, row: StockLevel) -> StockLevelNode:
        return cls(
            id=f"{row.location_id}:{row.material_id}",
            on_hand=row.on_hand,
            reserved=row.reserved,
            in_transit=row.in_transit,
            defective=row.defective,
            safety_stock=row.safety_stock,
            available=row.on_hand - row.reserved - row.safety_stock,
            updated_at=row.updated_at,
            location_row_id=row.location_id,
            material_row_id=row.material_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        principal = info.context.principal
        keys = [level_key(info, raw) for raw in node_ids]
        if principal is None or cls.required_scope not in principal.scopes:
            return [None] * len(keys)
        rows = await _loaders(info).stock_level.load_many([k for k in keys if k is not None])
        found = {(r.location_id, r.material_id): r for r in rows if r is not None}
        return [cls.from_row(found[k]) if k in found else None for k in keys]


def level_key(info: Info, node_id: str) -> tuple[int, int] | None:
    """(location row, material row) from ``<tenant>.<location>:<material>``; None unless the caller's."""
    principal = info.context.principal
    tenant, _, rest = str(node_id).partition(".")
    location, _, material = rest.partition(":")
    if principal is None or tenant != str(principal.tenant.id):
        return None
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in (location, material)):
        return None
    return int(location), int(material)


@guarded_by(READ)
@strawberry.type(name="StockMovement")
class StockMovementNode(TenantScopedNode, MaterialRef):
    """One append-only ledger entry; replaying them reproduces every level."""

    id: relay.NodeID[int]
    kind: MovementKindEnum
    d_on_hand: int
    d_reserved: int
    d_in_transit: int
    d_defective: int
    d_safety: int
    reason: str
    reference: str
    actor: str
    created_at: datetime
    location_row_id: strawberry.Private[int | None]

    @strawberry.field(description="Null for network-level reservations (no location chosen yet).")
    async def location(self, info: Info) -> LocationNode | None:
        return await _location(info, self.location_row_id)

    @classmethod
    def from_row(cls, row: StockMovement) -> StockMovementNode:
        return cls(
            id=row.id,
            kind=row.kind,
            d_on_hand=row.d_on_hand,
            d_reserved=row.d_reserved,
            d_in_transit=row.d_in_transit,
            d_defective=row.d_defective,
            d_safety=row.d_safety,
            reason=row.reason,
            reference=row.reference,
            actor=row.actor,
            created_at=row.created_at,
            location_row_id=row.location_id,
            material_row_id=row.material_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(
            info, _loaders(info).stock_movement, node_ids, cls.from_row, tenant_scoped=True
        )


@guarded_by(READ)
@strawberry.type(name="Reservation")
class ReservationNode(TenantScopedNode, MaterialRef):
    """Units of one material held for a reference (an order) at network level."""

    id: relay.NodeID[int]
    reference: str
    quantity: int
    backordered: int = strawberry.field(description="Part taken beyond stock (presale or backorder).")
    status: ReservationStatusEnum
    created_at: datetime
    released_at: datetime | None
    channel_row_id: strawberry.Private[int | None]

    @strawberry.field
    def channel_id(self, info: Info) -> strawberry.ID | None:
        return opt_gid(info, "Channel", self.channel_row_id)

    @classmethod
    def from_row(cls, row: Reservation) -> ReservationNode:
        return cls(
            id=row.id,
            reference=row.reference,
            quantity=row.quantity,
            backordered=row.backordered,
            status=row.status,
            created_at=row.created_at,
            released_at=row.released_at,
            channel_row_id=row.channel_id,
            material_row_id=row.material_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, _loaders(info).reservation, node_ids, cls.from_row, tenant_scoped=True)


@guarded_by(READ)
@strawberry.type(name="AllocationPool")
class AllocationPoolNode(TenantScopedNode):
    """A channel's share of stock, for one material or (materialId null) as the channel's default."""

    id: relay.NodeID[int]
    mode: PoolModeEnum
    value: float = strawberry.field(description="Units (quota) or percent of sellable stock (percent).")
    channel_row_id: strawberry.Private[int]
    material_row_id: strawberry.Private[int | None]

    @strawberry.field
    def channel_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Channel", self.channel_row_id)

    @strawberry.field
    def material_id(self, info: Info) -> strawberry.ID | None:
        return opt_gid(info, "Material", self.material_row_id)

    @classmethod
    def from_row(cls, row: AllocationPool) -> AllocationPoolNode:
        return cls(
            id=row.id,
            mode=row.mode,
            value=float(row.value),
            channel_row_id=row.channel_id,
            material_row_id=row.material_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(
            info, _loaders(info).allocation_pool, node_ids, cls.from_row, tenant_scoped=True
        )


@guarded_by(READ)
@strawberry.type(name="StockAlert")
class StockAlertNode(TenantScopedNode, MaterialRef):
    """Network availability of a material fell below its low-stock threshold."""

    id: relay.NodeID[int]
    available: int
    threshold: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: StockAlert) -> StockAlertNode:
        return cls(
            id=row.id,
            available=row.available,
            threshold=row.threshold,
            created_at=row.created_at,
            material_row_id=row.material_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, _loaders(info).stock_alert, node_ids, cls.from_row, tenant_scoped=True)


@guarded_by(READ)
@strawberry.type(name="StockPublication")
class StockPublicationNode(TenantScopedNode):
    """A quantity pushed (or, until adapters exist, recorded for) one channel listing."""

    id: relay.NodeID[int]
    quantity: int
    payload: JSON
    status: str
    error: str | None
    created_at: datetime
    listing_row_id: strawberry.Private[int]

    @strawberry.field
    def listing_id(self, info: Info) -> strawberry.ID:
        return gid(info, "ChannelListing", self.listing_row_id)

    @classmethod
    def from_row(cls, row: StockPublication) -> StockPublicationNode:
        return cls(
            id=row.id,
            quantity=row.quantity,
            payload=row.payload,
            status=row.status,
            error=row.error,
            created_at=row.created_at,
            listing_row_id=row.listing_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(
            info, _loaders(info).stock_publication, node_ids, cls.from_row, tenant_scoped=True
        )


@strawberry.type
class NetworkStockLevel(MaterialRef):
    """What the whole network holds of a material: active locations only, every reservation."""

    on_hand: int
    reserved: int
    safety_stock: int
    available: int = strawberry.field(description="onHand - reserved - safetyStock (below 0 = oversold).")


@strawberry.type
class MaterialAvailability(MaterialRef):
    available: int


@strawberry.type
class ProductAvailability:
    product_row_id: strawberry.Private[int]
    available: int | None = strawberry.field(
        description="Whole units sellable (a bundle: the minimum over its components); null = not"
        " limited by stock (virtual and service products)."
    )

    @strawberry.field
    def product_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Product", self.product_row_id)


@strawberry.type
class AvailableToPromise:
    materials: list[MaterialAvailability | None] = strawberry.field(
        description="In the order of materialIds; null for ids that are not yours."
    )
    products: list[ProductAvailability | None] = strawberry.field(
        description="In the order of productIds; null for ids that are not yours."
    )


@strawberry.type
class InventorySettings:
    protect_below: int = strawberry.field(
        description="Below this many available units, only core channels may sell."
    )
