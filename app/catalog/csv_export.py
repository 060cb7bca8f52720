"""CSV exports in exactly the columns the imports read, so an export edited and imported again
round-trips."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import csv_io
from app.catalog.csv_import import LISTING_COLUMNS, MATERIAL_COLUMNS, PRODUCT_COLUMNS
from app.catalog.models import ChannelListing, Material, Product, ProductComponent
from app.channels.models import Channel


def _header(columns: tuple[tuple[str, ...], tuple[str, ...]]) -> list[str]:
    return [*columns[0], *columns[1]]


async def export_materials(session: AsyncSession) -> str:
    header = _header(MATERIAL_COLUMNS)
    rows = (await session.scalars(select(Material).order_by(Material.id))).all()
    return csv_io.write(header, ([getattr(row, c) for c in header] for row in rows))


async def export_products(session: AsyncSession) -> str:
    header = _header(PRODUCT_COLUMNS)
    parts: dict[int, list[str]] = {}
    components = await session.execute(
        select(ProductComponent.product_id, Material.code, ProductComponent.quantity)
        .join(Material, Material.id == ProductComponent.material_id)
        .order_by(ProductComponent.product_id, Material.code)
    )
    for product_id, code, qty in components:
        parts.setdefault(product_id, []).append(f"{code}*{qty}")
    rows = (await session.scalars(select(Product).order_by(Product.id))).all()
    return csv_io.write(
        header,
        (
            [";".join(parts.get(row.id, [])) if c == "components" else getattr(row, c) for c in header]
            for row in rows
        ),
    )


async def export_listings(session: AsyncSession) -> str:
    rows = await session.execute(
        select(
            Channel.code,
            ChannelListing.external_item_id,
            Product.code,
            ChannelListing.external_sku_id,
            ChannelListing.title,
            ChannelListing.active,
        )
        .join(Channel, Channel.id == ChannelListing.channel_id)
        .join(Product, Product.id == ChannelListing.product_id)
        .order_by(ChannelListing.id)
    )
    return csv_io.write(_header(LISTING_COLUMNS), rows)
