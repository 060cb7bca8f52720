"""Builders for inventory tests: rows created directly in a tenant schema (the catalog API is tested
on its own)."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from app.catalog.models import Material, Product, ProductComponent, ProductKind
from app.channels.models import Channel
from app.db import TenantRef
from app.inventory import service
from app.inventory.models import LocationKind
from tenants.models import Tenant


async def tenant_ref(db, slug: str) -> TenantRef:
    async with db.control_session() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    return TenantRef(tenant.id, tenant.schema_name)


def code(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def material(session, **kw) -> Material:
    m = Material(code=kw.pop("code", code("MAT")), name=kw.pop("name", "Material"), attributes={}, **kw)
    session.add(m)
    await session.flush()
    return m


async def product(session, components: list[tuple[Material, int]], kind=ProductKind.single, **kw) -> Product:
    p = Product(code=kw.pop("code", code("SP")), name=kw.pop("name", "Product"), kind=kind, **kw)
    session.add(p)
    await session.flush()
    session.add_all(ProductComponent(product_id=p.id, material_id=m.id, quantity=q) for m, q in components)
    await session.flush()
    return p


async def location(session, **kw):
    data = service.LocationInput(
        code=kw.pop("code", code("LOC")),
        name=kw.pop("name", "Warehouse"),
        kind=kw.pop("kind", LocationKind.warehouse),
        **kw,
    )
    return await service.create_location(session, data)


async def channel(session, is_core: bool = False, **kw) -> Channel:
    c = Channel(
        code=kw.pop("code", code("CH")),
        name="Channel",
        platform=kw.pop("platform", "tmall"),
        is_core=is_core,
        active=True,
    )
    session.add(c)
    await session.flush()
    return c
