"""GraphQL for sales channels and channel listings (a channel's item/SKU -> one of our products)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from sqlalchemy import false
from strawberry import relay
from strawberry.types import Info

from app.api.catalog import ProductNode, given, mutate, row_id
from app.api.errors import UserErrorType
from app.api.permissions import requires
from app.api.relay import TenantScopedNode, decode_tenant_node_id, load_nodes, paginate
from app.api.scopes import guarded_by
from app.catalog import listings
from app.catalog.models import ChannelListing
from app.channels import service
from app.channels.models import PLATFORMS, Channel

Platform = strawberry.enum(enum.Enum("Platform", {p: p for p in PLATFORMS}), name="Platform")
ADMIN_SCOPE = "tenant:admin"


def webhook_path(tenant_id: int, channel_id: int) -> str:
    """The path a channel posts its payloads to (app/api/webhooks.py): its global id names the channel,
    the signature made with the channel's own secret proves the sender."""
    return f"/webhooks/channels/{relay.to_base64('Channel', f'{tenant_id}.{channel_id}')}"


@guarded_by("catalog:read")
@strawberry.type(name="Channel", description="A place the brand sells: a marketplace store, web shop, POS...")
class ChannelNode(TenantScopedNode):
    id: relay.NodeID[int]
    code: str
    name: str
    platform: Platform
    is_core: bool = strawberry.field(description="Core channels keep selling when stock runs low.")
    active: bool
    timezone: str = strawberry.field(description="IANA zone of the platform's local times.")
    currency: str
    default_carrier: str | None = strawberry.field(description='E.g. "SF": this channel\'s orders ship so.')
    created_at: datetime
    secret: strawberry.Private[str]

    @strawberry.field(description="Where the channel posts its orders (HMAC-SHA256 signed).")
    def webhook_url(self, info: Info) -> str:
        principal = info.context.require_principal()
        return str(info.context.request.base_url).rstrip("/") + webhook_path(principal.tenant.id, self.id)

    @strawberry.field(description="The key that signs this channel's webhooks; only for tenant admins.")
    def webhook_secret(self, info: Info) -> str | None:
        principal = info.context.principal
        return self.secret if principal is not None and ADMIN_SCOPE in principal.scopes else None

    @classmethod
    def from_row(cls, row: Channel) -> ChannelNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            platform=Platform(row.platform),
            is_core=row.is_core,
            active=row.active,
            timezone=row.timezone,
            currency=row.currency,
            default_carrier=row.default_carrier,
            created_at=row.created_at,
            secret=row.webhook_secret,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = info.context.loaders.channel
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


@guarded_by("catalog:read")
@strawberry.type(name="ChannelListing", description="A channel's own item (and SKU) id, mapped to a product.")
class ChannelListingNode(TenantScopedNode):
    id: relay.NodeID[int]
    external_item_id: str
    external_sku_id: str = strawberry.field(description='"" when the channel item has no SKUs.')
    title: str
    active: bool
    last_published_qty: int | None
    created_at: datetime
    channel_id: strawberry.Private[int]
    product_id: strawberry.Private[int]

    @strawberry.field
    async def channel(self, info: Info) -> ChannelNode:
        return ChannelNode.from_row(await info.context.loaders.channel.load(self.channel_id))

    @strawberry.field
    async def product(self, info: Info) -> ProductNode:
        return ProductNode.from_row(await info.context.loaders.product.load(self.product_id))

    @classmethod
    def from_row(cls, row: ChannelListing) -> ChannelListingNode:
        return cls(
            id=row.id,
            external_item_id=row.external_item_id,
            external_sku_id=row.external_sku_id,
            title=row.title,
            active=row.active,
            last_published_qty=row.last_published_qty,
            created_at=row.created_at,
            channel_id=row.channel_id,
            product_id=row.product_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = info.context.loaders.channel_listing
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


# ---- queries -----------------------------------------------------------------------------------------


@strawberry.input
class ChannelFilter:
    search: str | None = strawberry.field(default=None, description="Part of the code or name.")
    platform: Platform | None = None
    active: bool | None = None


@strawberry.input
class ChannelListingFilter:
    channel_id: strawberry.ID | None = None
    product_id: strawberry.ID | None = None


@strawberry.type
class ChannelQueries:
    @strawberry.field(permission_classes=requires("catalog:read"), description="Channels, newest first.")
    async def channels(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: ChannelFilter | None = None,
    ) -> relay.Connection[ChannelNode]:
        flt = filter or ChannelFilter()
        platform = flt.platform.value if flt.platform is not None else None
        query = service.channels_query(flt.search, platform, flt.active)
        async with info.context.tenant_session() as session:
            return await paginate(session, query, Channel.id, ChannelNode.from_row, first=first, after=after)

    @strawberry.field(permission_classes=requires("catalog:read"), description="Listings, newest first.")
    async def channel_listings(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: ChannelListingFilter | None = None,
    ) -> relay.Connection[ChannelListingNode]:
        flt = filter or ChannelListingFilter()
        ids = {}
        for key, type_name in (("channel_id", "Channel"), ("product_id", "Product")):
            if getattr(flt, key) is not None:
                ids[key] = decode_tenant_node_id(info, getattr(flt, key), type_name)
        query = listings.listings_query(**ids)
        if None in ids.values():  # an id that is not ours matches nothing
            query = query.where(false())
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, ChannelListing.id, ChannelListingNode.from_row, first=first, after=after
            )


# ---- mutations ---------------------------------------------------------------------------------------


@strawberry.input
class CreateChannelInput:
    code: str
    name: str
    platform: Platform
    is_core: bool = False
    active: bool = True
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    default_carrier: str | None = None


@strawberry.input(description="Fields left out stay as they are.")
class UpdateChannelInput:
    id: strawberry.ID
    code: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    platform: Platform | None = strawberry.UNSET
    is_core: bool | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    default_carrier: str | None = strawberry.UNSET


@strawberry.input
class RotateChannelWebhookSecretInput:
    id: strawberry.ID


@strawberry.type
class ChannelPayload:
    channel: ChannelNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class CreateChannelListingInput:
    channel_id: strawberry.ID
    product_id: strawberry.ID = strawberry.field(description="Any kind but gift (gifts are never sold).")
    external_item_id: str
    external_sku_id: str = ""
    title: str = ""
    active: bool = True


@strawberry.type
class ChannelListingPayload:
    channel_listing: ChannelListingNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class DeleteChannelListingInput:
    id: strawberry.ID


@strawberry.type
class DeleteChannelListingPayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _channel_values(input) -> dict:
    values = given(input)
    if values.get("platform") is not None:
        values["platform"] = values["platform"].value
    return values


def _channel_payload(row: Channel) -> ChannelPayload:
    return ChannelPayload(channel=ChannelNode.from_row(row))


def _listing_payload(row: ChannelListing) -> ChannelListingPayload:
    return ChannelListingPayload(channel_listing=ChannelListingNode.from_row(row))


@strawberry.type
class ChannelMutations:
    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def create_channel(self, info: Info, input: CreateChannelInput) -> ChannelPayload:
        return await mutate(
            info,
            lambda s: service.create_channel(s, _channel_values(input)),
            _channel_payload,
            ChannelPayload,
        )

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def update_channel(self, info: Info, input: UpdateChannelInput) -> ChannelPayload:
        async def work(session):
            channel_id = row_id(info, input.id, "Channel", "channel")
            return await service.update_channel(session, channel_id, _channel_values(input))

        return await mutate(info, work, _channel_payload, ChannelPayload)

    @strawberry.mutation(
        permission_classes=requires(ADMIN_SCOPE),
        description="Issue a new webhook secret; the old one stops working at once.",
    )
    async def rotate_channel_webhook_secret(
        self, info: Info, input: RotateChannelWebhookSecretInput
    ) -> ChannelPayload:
        async def work(session):
            return await service.rotate_webhook_secret(session, row_id(info, input.id, "Channel", "channel"))

        return await mutate(info, work, _channel_payload, ChannelPayload)

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def create_channel_listing(
        self, info: Info, input: CreateChannelListingInput
    ) -> ChannelListingPayload:
        async def work(session):
            return await listings.create_listing(
                session,
                channel_id=row_id(info, input.channel_id, "Channel", "channel", "channelId"),
                product_id=row_id(info, input.product_id, "Product", "product", "productId"),
                external_item_id=input.external_item_id,
                external_sku_id=input.external_sku_id,
                title=input.title,
                active=input.active,
            )

        return await mutate(info, work, _listing_payload, ChannelListingPayload)

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def delete_channel_listing(
        self, info: Info, input: DeleteChannelListingInput
    ) -> DeleteChannelListingPayload:
        async def work(session):
            await listings.delete_listing(
                session, row_id(info, input.id, "ChannelListing", "channel listing")
            )
            return input.id

        return await mutate(
            info, work, lambda gid: DeleteChannelListingPayload(deleted_id=gid), DeleteChannelListingPayload
        )
