"""Channel listings: a channel's own (item id, SKU id) -> one of our sales products.

``resolve_listing`` is how order ingest turns a channel's order line into a product.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import fields as f
from app.catalog.models import ChannelListing, Product, ProductKind
from app.channels.models import Channel
from app.errors import NotFound, UserError
from app.records import flush

_CONSTRAINTS = {
    "uq_channel_listings_channel_id_external_item_id_external_sku_id": (
        "DUPLICATE_LISTING",
        "this channel already lists that item and SKU",
        "externalSkuId",
    )
}


def clean_listing_keys(item_id: Any, sku_id: Any) -> tuple[str, str]:
    return (
        f.clean_text(item_id, "externalItemId", "external item id", 120),
        f.clean_text(sku_id, "externalSkuId", "external SKU id", 120, required=False),
    )


def check_sellable(kind: ProductKind) -> None:
    if kind is ProductKind.gift:
        raise UserError(
            "NOT_SELLABLE",
            "gift products are only given away, so they cannot be listed on a channel",
            "productId",
        )


async def create_listing(
    session: AsyncSession,
    *,
    channel_id: int,
    product_id: int,
    external_item_id: str,
    external_sku_id: str | None = None,
    title: str | None = None,
    active: bool = True,
) -> ChannelListing:
    item_id, sku_id = clean_listing_keys(external_item_id, external_sku_id)
    title = f.clean_text(title, "title", "title", 300, required=False)
    if await session.get(Channel, channel_id) is None:
        raise NotFound("channel", "channelId")
    product = await session.get(Product, product_id)
    if product is None:
        raise NotFound("product", "productId")
    check_sellable(product.kind)
    if await _find(session, channel_id, item_id, sku_id) is not None:
        raise UserError("DUPLICATE_LISTING", "this channel already lists that item and SKU", "externalSkuId")
    row = ChannelListing(
        channel_id=channel_id,
        external_item_id=item_id,
        external_sku_id=sku_id,
        product_id=product_id,
        title=title,
        active=f.clean_flag(active, "active", "active"),
    )
    session.add(row)
    await flush(session, _CONSTRAINTS)
    return row


async def delete_listing(session: AsyncSession, listing_id: int) -> None:
    row = await session.get(ChannelListing, listing_id)
    if row is None:
        raise NotFound("channel listing")
    await session.delete(row)
    await session.flush()


async def _find(session: AsyncSession, channel_id: int, item_id: str, sku_id: str) -> ChannelListing | None:
    return await session.scalar(
        select(ChannelListing).where(
            ChannelListing.channel_id == channel_id,
            ChannelListing.external_item_id == item_id,
            ChannelListing.external_sku_id == sku_id,
        )
    )


async def resolve_listing(
    session: AsyncSession, channel_id: int, external_item_id: str, external_sku_id: str | None
) -> Product | None:
    """The product a channel's (item, SKU) is listed as, or None when it is not listed.

    An item without SKUs is stored with external_sku_id "" (None is treated the same). Inactive
    listings still resolve: an order that arrives for them is real and must map to a product.
    """
    return await session.scalar(
        select(Product)
        .join(ChannelListing, ChannelListing.product_id == Product.id)
        .where(
            ChannelListing.channel_id == channel_id,
            ChannelListing.external_item_id == external_item_id,
            ChannelListing.external_sku_id == (external_sku_id or ""),
        )
    )


def listings_query(channel_id: int | None = None, product_id: int | None = None) -> Select:
    query = select(ChannelListing)
    if channel_id is not None:
        query = query.where(ChannelListing.channel_id == channel_id)
    if product_id is not None:
        query = query.where(ChannelListing.product_id == product_id)
    return query
