"""Builders for inventory tests: rows created directly in a tenant schema (the catalog API is tested
on its own)."""

from __future__ import annotations

import secrets

from app.catalog.models import Material, Product, ProductComponent, ProductKind
from app.channels.models import Channel
from app.inventory import service
from app.inventory.models import LocationKind
from tests.routing_support import gid


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


ERRORS = "userErrors { field message code }"
LEVEL = (
    "id onHand reserved inTransit defective safetyStock available materialId materialCode"
    " location { id code }"
)
RESERVATION = "id reference quantity backordered status materialId channelId"


async def mutate(gql, name: str, input: dict, auth: dict, fields: str = "") -> dict:
    """Run one inventory mutation; returns its payload."""
    input_type = name[0].upper() + name[1:] + "Input"
    doc = f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {fields} {ERRORS} }} }}"
    return (await gql(doc, {"input": input}, **auth))[name]


class Stock:
    """One tenant's inventory as seen through GraphQL: created rows, their global ids, its credential."""

    def __init__(self, gql, tenant, tref):
        self.gql, self.tenant, self.tref = gql, tenant, tref
        self.auth = {"token": tenant.token}

    def id(self, type_name: str, row_id: int) -> str:
        return gid(type_name, self.tref, row_id)

    async def __call__(self, doc: str, variables: dict | None = None) -> dict:
        return await self.gql(doc, variables, **self.auth)

    async def mutate(self, name: str, input: dict, fields: str = "") -> dict:
        return await mutate(self.gql, name, input, self.auth, fields)

    async def location(self, code: str, **extra) -> str:
        res = await self.mutate(
            "createLocation", {"code": code, "name": code, "kind": "warehouse", **extra}, "location { id }"
        )
        assert res["userErrors"] == [], res
        return res["location"]["id"]

    async def receive(self, location_id: str, material_id: str, quantity: int) -> dict:
        res = await self.mutate(
            "receiveStock",
            {"locationId": location_id, "materialId": material_id, "quantity": quantity},
            f"stockLevel {{ {LEVEL} }}",
        )
        assert res["userErrors"] == [], res
        return res["stockLevel"]

    async def reserve(self, reference: str, lines: list[tuple[str, int]], channel_id: str | None = None):
        return await self.mutate(
            "reserveStock",
            {
                "reference": reference,
                "channelId": channel_id,
                "lines": [{"productId": p, "quantity": q} for p, q in lines],
            },
            f"reservations {{ {RESERVATION} }}",
        )

    async def network(self, *material_ids: str) -> list[dict]:
        doc = (
            "query($ids: [ID!]!) { networkStock(materialIds: $ids) { materialId onHand reserved available } }"
        )
        return (await self(doc, {"ids": list(material_ids)}))["networkStock"]

    async def atp(self, channel_id=None, materials=(), products=()) -> dict:
        doc = """query($c: ID, $m: [ID!], $p: [ID!]) { availableToPromise(channelId: $c, materialIds: $m,
          productIds: $p) { materials { materialId available } products { productId available } } }"""
        variables = {"c": channel_id, "m": list(materials), "p": list(products)}
        return (await self(doc, variables))["availableToPromise"]
