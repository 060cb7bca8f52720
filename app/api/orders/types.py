"""GraphQL types of orders: the Order node and what hangs off it (lines, holds, timeline, customer).

Every relation resolves through a DataLoader (``loaders.py``), so a page of orders with their lines,
holds and channel costs the same few statements whatever its size.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.catalog import MaterialNode, ProductNode
from app.api.channels import ChannelNode
from app.api.orders.common import READ_SCOPE, gid
from app.api.orders.loaders import order_loaders
from app.api.relay import MAX_PAGE, TenantScopedNode, connection, decode_cursor, encode_cursor, load_nodes
from app.api.scopes import guarded_by
from app.customers.models import Customer
from app.errors import UserError
from app.orders.models import Order, OrderEvent, OrderHold, OrderLine, OrderMerge, OrderStatus

OrderStatusEnum = strawberry.enum(OrderStatus, name="OrderStatus")
EVENTS_PAGE = 50


def status_of(value: str | None) -> OrderStatus | None:
    return OrderStatus(value) if value in OrderStatus.__members__ else None


@guarded_by(READ_SCOPE)
@strawberry.type(name="Customer", description="One buyer across channels (identifiers shown masked).")
class CustomerNode(TenantScopedNode):
    id: relay.NodeID[int]
    name: str
    masked_phone: str | None
    masked_email: str | None
    tags: list[str]
    order_count: int
    blacklisted: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Customer) -> CustomerNode:
        return cls(
            id=row.id,
            name=row.name,
            masked_phone=row.phone_masked,
            masked_email=row.email_masked,
            tags=list(row.tags or []),
            order_count=row.order_count,
            blacklisted=row.blacklisted,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = order_loaders(info).customer
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


@strawberry.type
class OrderAmounts:
    """Money as decimal strings with two places, in ``currency``."""

    currency: str
    subtotal: Decimal = strawberry.field(description="Lines before discounts.")
    shipping: Decimal
    discount: Decimal = strawberry.field(description="Every discount, allocated over the lines.")
    tax: Decimal = strawberry.field(description="Tax on top of prices (0 where prices include it).")
    total: Decimal
    paid: Decimal


@strawberry.type
class OrderBuyer:
    name: str | None
    nick: str | None
    platform_buyer_id: str | None


@strawberry.type
class OrderAddress:
    name: str | None
    phone: str | None
    country: str | None
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    postcode: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> OrderAddress:
        data = data or {}
        return cls(**{key: data.get(key) for key in cls.__annotations__})


@strawberry.type
class OrderInvoice:
    title: str | None
    tax_id: str | None
    type: str | None


@strawberry.type
class OrderLineMaterial:
    quantity: int = strawberry.field(description="Units of the material this line takes in all.")
    material_row_id: strawberry.Private[int]

    @strawberry.field
    async def material(self, info: Info) -> MaterialNode | None:
        row = await info.context.loaders.material.load(self.material_row_id)
        return MaterialNode.from_row(row) if row else None


@strawberry.type
class OrderLineType:
    external_line_id: str
    external_item_id: str
    external_sku_id: str
    title: str
    kind: str | None = strawberry.field(description="The product's kind; null while the line is unresolved.")
    quantity: int
    unit_price: Decimal
    discount: Decimal
    total: Decimal
    is_gift: bool
    presale: bool
    row_id: strawberry.Private[int]
    product_row_id: strawberry.Private[int | None]

    @strawberry.field(description="Null when no listing of the channel resolves the line yet.")
    async def product(self, info: Info) -> ProductNode | None:
        if self.product_row_id is None:
            return None
        row = await info.context.loaders.product.load(self.product_row_id)
        return ProductNode.from_row(row) if row else None

    @strawberry.field(description="The stock-keeping units the line takes (bundles give several).")
    async def materials(self, info: Info) -> list[OrderLineMaterial]:
        rows = await order_loaders(info).line_materials.load(self.row_id)
        return [OrderLineMaterial(quantity=r.quantity, material_row_id=r.material_id) for r in rows]

    @classmethod
    def from_row(cls, row: OrderLine) -> OrderLineType:
        return cls(
            external_line_id=row.external_line_id,
            external_item_id=row.external_item_id,
            external_sku_id=row.external_sku_id,
            title=row.title,
            kind=row.kind,
            quantity=row.quantity,
            unit_price=row.unit_price,
            discount=row.discount,
            total=row.total,
            is_gift=row.is_gift,
            presale=row.presale,
            row_id=row.id,
            product_row_id=row.product_id,
        )


@strawberry.type(name="OrderHold", description="Why an order waits: an audit rule or an operator.")
class OrderHoldType:
    code: str
    weight: int
    reason: str
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: OrderHold) -> OrderHoldType:
        return cls(
            code=row.code,
            weight=row.weight,
            reason=row.reason,
            created_at=row.created_at,
            created_by=row.created_by,
        )


@guarded_by(READ_SCOPE)
@strawberry.type(name="OrderEvent", description="One step of an order's timeline.")
class OrderEventNode(TenantScopedNode):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="received, updated, status, hold, release, note, address, …")
    from_status: OrderStatusEnum | None
    to_status: OrderStatusEnum | None
    actor: str
    message: str
    details: JSON
    created_at: datetime
    order_row_id: strawberry.Private[int]

    @strawberry.field
    async def order(self, info: Info) -> OrderNode | None:
        row = await order_loaders(info).order.load(self.order_row_id)
        return OrderNode.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: OrderEvent) -> OrderEventNode:
        return cls(
            id=row.id,
            kind=row.kind,
            from_status=status_of(row.from_status),
            to_status=status_of(row.to_status),
            actor=row.actor,
            message=row.message,
            details=row.details or {},
            created_at=row.created_at,
            order_row_id=row.order_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = order_loaders(info).event
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


@strawberry.type(name="OrderMerge", description="Orders of one buyer to one address shipped together.")
class OrderMergeType:
    id: strawberry.ID
    created_at: datetime
    created_by: str
    row_id: strawberry.Private[int]

    @strawberry.field(description="The orders in the merge (this one included), oldest first.")
    async def orders(self, info: Info) -> list[OrderNode]:
        return [OrderNode.from_row(r) for r in await order_loaders(info).merge_members.load(self.row_id)]

    @classmethod
    def from_row(cls, info: Info, row: OrderMerge) -> OrderMergeType:
        return cls(
            id=gid(info, "OrderMerge", row.id),
            created_at=row.created_at,
            created_by=row.created_by,
            row_id=row.id,
        )


@guarded_by(READ_SCOPE)
@strawberry.type(name="Order", description="What was bought on one channel, in the unified shape.")
class OrderNode(TenantScopedNode):
    id: relay.NodeID[int]
    number: str = strawberry.field(description="Our order number, unique in the tenant.")
    external_id: str = strawberry.field(description="The channel's own order id.")
    status: OrderStatusEnum
    channel_status: str = strawberry.field(description="The channel's status, normalised (paid, …).")
    business_model: str
    fingerprint: str = strawberry.field(description="Same buyer + address: candidates for merging.")
    amounts: OrderAmounts
    placed_at: datetime
    paid_at: datetime | None
    promised_ship_by: datetime | None
    requested_carrier: str | None
    buyer: OrderBuyer
    shipping_address: OrderAddress
    buyer_note: str | None
    seller_note: str | None
    invoice: OrderInvoice | None
    version: int
    created_at: datetime
    updated_at: datetime
    channel_row_id: strawberry.Private[int]
    customer_row_id: strawberry.Private[int | None]
    merge_row_id: strawberry.Private[int | None] = None

    @strawberry.field
    async def channel(self, info: Info) -> ChannelNode | None:
        row = await info.context.loaders.channel.load(self.channel_row_id)
        return ChannelNode.from_row(row) if row else None

    @strawberry.field
    async def customer(self, info: Info) -> CustomerNode | None:
        if self.customer_row_id is None:
            return None
        row = await order_loaders(info).customer.load(self.customer_row_id)
        return CustomerNode.from_row(row) if row else None

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLineType]:
        return [OrderLineType.from_row(r) for r in await order_loaders(info).lines.load(self.id)]

    @strawberry.field(description="Shipped together with other orders of the same buyer and address.")
    async def merge(self, info: Info) -> OrderMergeType | None:
        """The merge the order is in now, if any."""
        if self.merge_row_id is None:
            return None
        row = await order_loaders(info).merge.load(self.merge_row_id)
        return OrderMergeType.from_row(info, row) if row else None

    @strawberry.field(description="Active holds, oldest first (released ones are in the timeline).")
    async def holds(self, info: Info) -> list[OrderHoldType]:
        return [OrderHoldType.from_row(r) for r in await order_loaders(info).holds.load(self.id)]

    @strawberry.field(description="The timeline, oldest first.")
    async def events(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[OrderEventNode]:
        if first is not None and not 0 <= first <= MAX_PAGE:
            raise UserError("INVALID_PAGE_SIZE", f"first must be between 0 and {MAX_PAGE}", "first")
        limit = EVENTS_PAGE if first is None else first
        after_id = decode_cursor(after) if after else 0
        rows = await order_loaders(info).event_page.load((self.id, after_id, limit + 1))
        return connection(rows, limit, after, lambda r: (OrderEventNode.from_row(r), encode_cursor(r.id)))

    @classmethod
    def from_row(cls, row: Order) -> OrderNode:
        buyer = row.buyer or {}
        invoice = row.invoice
        return cls(
            id=row.id,
            number=row.number,
            external_id=row.external_id,
            status=OrderStatus(row.status),
            channel_status=row.channel_status,
            business_model=row.business_model,
            fingerprint=row.fingerprint,
            amounts=OrderAmounts(
                currency=row.currency,
                subtotal=row.subtotal,
                shipping=row.shipping,
                discount=row.discount,
                tax=row.tax,
                total=row.total,
                paid=row.paid,
            ),
            placed_at=row.placed_at,
            paid_at=row.paid_at,
            promised_ship_by=row.promised_ship_by,
            requested_carrier=row.requested_carrier,
            buyer=OrderBuyer(
                name=buyer.get("name"),
                nick=buyer.get("nick"),
                platform_buyer_id=buyer.get("platform_buyer_id"),
            ),
            shipping_address=OrderAddress.from_dict(row.address),
            buyer_note=row.buyer_note,
            seller_note=row.seller_note,
            invoice=OrderInvoice(
                title=invoice.get("title"), tax_id=invoice.get("tax_id"), type=invoice.get("type")
            )
            if invoice
            else None,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            channel_row_id=row.channel_id,
            customer_row_id=row.customer_id,
            merge_row_id=row.merge_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = order_loaders(info).order
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)
