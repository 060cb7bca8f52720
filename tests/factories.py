"""Building blocks for order tests: a tenant's session, a channel, sellable products with stock.

Everything goes through the domain services (the same code the API runs), so a fixture cannot create a
state the product could not reach.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from app.catalog import listings
from app.catalog import service as catalog
from app.channels import service as channels
from app.db import TenantRef, control_session, tenant_session
from app.inventory import service as inventory
from app.inventory.models import LocationKind
from tenants import service as tenants


async def tenant_ref(slug: str) -> TenantRef:
    async with control_session() as session:
        return tenants.tenant_ref(await tenants.get_tenant(session, slug))


@dataclass
class Sellable:
    product_id: int
    material_id: int
    listing_item_id: str  # the channel's item id that resolves to the product
    listing_sku_id: str


async def make_channel(tenant: TenantRef, platform: str = "generic", **values):
    """A channel of ``platform`` (e.g. "shopify", "taobao"); returns the Channel row (with its secret)."""
    code = values.pop("code", f"{platform}-{secrets.token_hex(3)}")
    async with tenant_session(tenant) as session:
        return await channels.create_channel(
            session, {"code": code, "name": values.pop("name", code), "platform": platform, **values}
        )


async def make_location(tenant: TenantRef, code: str | None = None, **values) -> int:
    code = code or f"loc-{secrets.token_hex(3)}"
    data = inventory.LocationInput(
        code=code, name=values.pop("name", code), kind=values.pop("kind", LocationKind.warehouse), **values
    )
    async with tenant_session(tenant) as session:
        return (await inventory.create_location(session, data)).id


async def make_sellable(
    tenant: TenantRef,
    channel_id: int,
    *,
    stock: int = 10,
    location_id: int | None = None,
    kind: str = "single",
    presale: bool = False,
    item_id: str | None = None,
    sku_id: str = "",
) -> Sellable:
    """A material, a sales product of ``kind`` over it, ``stock`` units at a location, and a listing of
    the product on ``channel_id`` under ``item_id``/``sku_id``."""
    code = f"m-{secrets.token_hex(4)}"
    item_id = item_id or f"item-{secrets.token_hex(4)}"
    async with tenant_session(tenant) as session:
        material = await catalog.create_material(session, {"code": code, "name": f"Material {code}"})
        values = {"code": f"p-{code}", "name": f"Product {code}", "kind": kind}
        if presale:
            values.update(presale=True, expected_ship_date=date(2030, 1, 1))
        components = [] if kind in ("virtual", "service") else [(material.id, 1)]
        product = await catalog.create_product(session, values, components)
        await listings.create_listing(
            session,
            channel_id=channel_id,
            product_id=product.id,
            external_item_id=item_id,
            external_sku_id=sku_id,
        )
        if stock:
            if location_id is None:
                location_id = (
                    await inventory.create_location(
                        session,
                        inventory.LocationInput(
                            code=f"wh-{code}", name=f"Warehouse {code}", kind=LocationKind.warehouse
                        ),
                    )
                ).id
            await inventory.receive(session, location_id, material.id, stock, reason="test stock")
    return Sellable(product.id, material.id, item_id, sku_id)
