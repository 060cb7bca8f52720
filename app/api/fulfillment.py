"""GraphQL of fulfilment: an order's fulfilment orders (with lines, shipments and connector deliveries)
and ``setLocationConnector``, which shows a connector's signing secret once, when it is made.

Relations load through per-request DataLoaders (``_loaders``): a page of fulfilment orders costs a
constant number of SQL statements.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.catalog import MaterialNode
from app.api.errors import UserErrorType, in_tenant
from app.api.inventory.types import LocationNode
from app.api.orders.common import ADMIN, READ, READ_SCOPE, gid, need_row
from app.api.relay import TenantScopedNode, decode_tenant_node_id, load_nodes
from app.api.scopes import guarded_by
from app.fulfillment import connectors
from app.fulfillment.models import (
    ConnectorDelivery,
    DeliveryStatus,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentStatus,
    LocationConnector,
    Shipment,
)
from app.orders.models import OrderLine

FulfillmentStatusEnum = strawberry.enum(FulfillmentStatus, name="FulfillmentStatus")
DeliveryStatusEnum = strawberry.enum(DeliveryStatus, name="ConnectorDeliveryStatus")


class _Loaders:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.fulfillment_order = self._rows(FulfillmentOrder)
        self.lines = self._children(FulfillmentOrderLine, FulfillmentOrderLine.fulfillment_order_id)
        self.shipments = self._children(Shipment, Shipment.fulfillment_order_id)
        self.deliveries = self._children(ConnectorDelivery, ConnectorDelivery.fulfillment_order_id)
        self.external_line_id = self._rows(OrderLine)

    def _rows(self, model) -> DataLoader[int, Any]:
        async def load(keys: list[int]) -> list[Any]:
            async with self._ctx.tenant_session() as session:
                found = {
                    r.id: r for r in (await session.scalars(select(model).where(model.id.in_(keys)))).all()
                }
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load)

    def _children(self, model, parent) -> DataLoader[int, list[Any]]:
        async def load(keys: list[int]) -> list[list[Any]]:
            async with self._ctx.tenant_session() as session:
                rows = (await session.scalars(select(model).where(parent.in_(keys)).order_by(model.id))).all()
            grouped: dict[int, list[Any]] = defaultdict(list)
            for row in rows:
                grouped[getattr(row, parent.key)].append(row)
            return [grouped.get(k, []) for k in keys]

        return DataLoader(load_fn=load)


def loaders(info: Info) -> _Loaders:
    found = info.context._loaders.get("fulfillment")
    if found is None:
        found = info.context._loaders["fulfillment"] = _Loaders(info.context)
    return found


@strawberry.type(name="FulfillmentOrderLine")
class FulfillmentOrderLineType:
    quantity: int
    material_row_id: strawberry.Private[int]
    order_line_row_id: strawberry.Private[int | None]

    @strawberry.field
    async def material(self, info: Info) -> MaterialNode | None:
        row = await info.context.loaders.material.load(self.material_row_id)
        return MaterialNode.from_row(row) if row else None

    @strawberry.field(description="The channel's id of the order line (null if the lines were rewritten).")
    async def external_line_id(self, info: Info) -> str | None:
        if self.order_line_row_id is None:
            return None
        row = await loaders(info).external_line_id.load(self.order_line_row_id)
        return row.external_line_id if row else None


@strawberry.type(name="Shipment")
class ShipmentType:
    carrier: str | None
    tracking_number: str | None
    parcels: JSON
    shipped_at: datetime
    delivered_at: datetime | None
    sla_due_at: datetime | None = strawberry.field(description="No carrier scan by then: one alert.")
    last_scan_at: datetime | None = strawberry.field(description="The carrier's latest scan (in_transit).")
    alerted_at: datetime | None = strawberry.field(description="When the SLA alert fired (once).")


@strawberry.type(name="ConnectorDelivery", description="One message to the location's connector.")
class ConnectorDeliveryType:
    event: str
    status: DeliveryStatusEnum
    attempts: int
    last_error: str | None
    response_code: int | None
    next_attempt_at: datetime | None = strawberry.field(description="Null when sent, or when it gave up.")
    sent_at: datetime | None


@guarded_by(READ_SCOPE)
@strawberry.type(name="FulfillmentOrder", description="What one location ships for an order.")
class FulfillmentOrderNode(TenantScopedNode):
    id: relay.NodeID[int]
    status: FulfillmentStatusEnum
    group: str = strawberry.field(description="all, or in_stock / presale when presale ships apart.")
    carrier: str | None
    accept_by: datetime | None = strawberry.field(description="Stores: accept before this time.")
    pickup_by: datetime | None = strawberry.field(
        description="Pick-ups ready at the store: cancelled if not collected by then."
    )
    reason: str | None = strawberry.field(description="Why it was rejected or cancelled.")
    created_at: datetime
    updated_at: datetime
    order_row_id: strawberry.Private[int]
    location_row_id: strawberry.Private[int]

    @strawberry.field
    def order_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Order", self.order_row_id)

    @strawberry.field
    async def location(self, info: Info) -> LocationNode | None:
        row = await info.context.loaders.inventory.location.load(self.location_row_id)
        return LocationNode.from_row(row) if row else None

    @strawberry.field
    async def lines(self, info: Info) -> list[FulfillmentOrderLineType]:
        rows = await loaders(info).lines.load(self.id)
        return [
            FulfillmentOrderLineType(
                quantity=r.quantity, material_row_id=r.material_id, order_line_row_id=r.order_line_id
            )
            for r in rows
        ]

    @strawberry.field
    async def shipments(self, info: Info) -> list[ShipmentType]:
        rows = await loaders(info).shipments.load(self.id)
        return [
            ShipmentType(
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                parcels=r.parcels or [],
                shipped_at=r.shipped_at,
                delivered_at=r.delivered_at,
                sla_due_at=r.sla_due_at,
                last_scan_at=r.last_scan_at,
                alerted_at=r.alerted_at,
            )
            for r in rows
        ]

    @strawberry.field
    async def deliveries(self, info: Info) -> list[ConnectorDeliveryType]:
        rows = await loaders(info).deliveries.load(self.id)
        return [
            ConnectorDeliveryType(
                event=r.event,
                status=r.status,
                attempts=r.attempts,
                last_error=r.last_error,
                response_code=r.response_code,
                next_attempt_at=r.next_attempt_at,
                sent_at=r.sent_at,
            )
            for r in rows
        ]

    @classmethod
    def from_row(cls, row: FulfillmentOrder) -> FulfillmentOrderNode:
        return cls(
            id=row.id,
            status=row.status,
            group=row.group,
            carrier=row.carrier,
            accept_by=row.accept_by,
            pickup_by=row.pickup_by,
            reason=row.reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
            order_row_id=row.order_id,
            location_row_id=row.location_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = loaders(info).fulfillment_order
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


@strawberry.type(name="LocationConnector")
class LocationConnectorType:
    url: str
    active: bool
    updated_at: datetime
    location_row_id: strawberry.Private[int]

    @strawberry.field
    def location_id(self, info: Info) -> strawberry.ID:
        return gid(info, "Location", self.location_row_id)

    @strawberry.field(description="Where the location's system posts its callbacks (signed with the secret).")
    def callback_path(self, info: Info) -> str:
        return f"/webhooks/fulfilment/{gid(info, 'Location', self.location_row_id)}"

    @classmethod
    def from_row(cls, row: LocationConnector) -> LocationConnectorType:
        return cls(url=row.url, active=row.active, updated_at=row.updated_at, location_row_id=row.location_id)


@strawberry.input
class SetLocationConnectorInput:
    location_id: strawberry.ID
    url: str = strawberry.field(description="http(s) URL that receives fulfilment orders (signed JSON).")
    active: bool = True
    rotate_secret: bool = strawberry.field(default=False, description="Make a new secret (shown once).")


@strawberry.type
class SetLocationConnectorPayload:
    connector: LocationConnectorType | None = None
    secret: str | None = strawberry.field(
        default=None, description="The signing secret: only when just made (new connector or rotated)."
    )
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class FulfillmentQueries:
    @strawberry.field(permission_classes=READ, description="An order's fulfilment orders, oldest first.")
    async def fulfillment_orders(self, info: Info, order_id: strawberry.ID) -> list[FulfillmentOrderNode]:
        row_id = decode_tenant_node_id(info, order_id, "Order")
        if row_id is None:  # garbage, or another tenant's order: it does not exist here
            return []
        async with info.context.tenant_session() as session:
            rows = (
                await session.scalars(
                    select(FulfillmentOrder)
                    .where(FulfillmentOrder.order_id == row_id)
                    .order_by(FulfillmentOrder.id)
                )
            ).all()
        return [FulfillmentOrderNode.from_row(r) for r in rows]


@strawberry.type
class FulfillmentMutations:
    @strawberry.mutation(
        permission_classes=ADMIN,
        description="Connect a location to its WMS/POS: fulfilment orders are posted there, signed.",
    )
    async def set_location_connector(
        self, info: Info, input: SetLocationConnectorInput
    ) -> SetLocationConnectorPayload:
        async def work(session):
            location_id = need_row(info, input.location_id, "Location", "location", "locationId")
            connector, secret = await connectors.set_connector(
                session, location_id, input.url, active=input.active, rotate_secret=input.rotate_secret
            )
            await session.refresh(connector)
            return LocationConnectorType.from_row(connector), secret

        result, errors = await in_tenant(info, work)
        if errors:
            return SetLocationConnectorPayload(user_errors=errors)
        return SetLocationConnectorPayload(connector=result[0], secret=result[1])
