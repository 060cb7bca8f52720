"""GraphQL for the catalog: materials and sales products (listings are in app/api/channels.py, CSV in
app/api/catalog_csv.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import date, datetime
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app import fields
from app.api.errors import UserErrorType, in_tenant
from app.api.permissions import requires
from app.api.relay import TenantScopedNode, decode_tenant_node_id, load_nodes, paginate
from app.api.scopes import guarded_by
from app.catalog import service
from app.catalog.models import Material, Product, ProductKind
from app.errors import NotFound, UserError

ProductKindEnum = strawberry.enum(ProductKind, name="ProductKind")
P = TypeVar("P")


# ---- helpers shared by the catalog and channel modules --------------------------------------------------


def given(input: Any, *, skip: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """The input fields the caller set (UNSET ones are left out), keyed like the model attributes."""
    return {k: v for k, v in vars(input).items() if v is not strawberry.UNSET and k not in skip}


def row_id(
    info: Info, gid: strawberry.ID | None, type_name: str, what: str, field: str | list[str] = "id"
) -> int:
    found = decode_tenant_node_id(info, gid, type_name)
    if found is None:
        raise NotFound(what, field)
    return found


async def mutate(
    info: Info, work: Callable[[Any], Awaitable[Any]], ok: Callable[[Any], P], failed: Callable[..., P]
) -> P:
    """``in_tenant``, its result made into the mutation's payload (``ok``) or its user errors (``failed``)."""
    result, errors = await in_tenant(info, work)
    return failed(user_errors=errors) if errors else ok(result)


_MATERIAL_COLUMNS = (
    "id",
    "code",
    "barcode",
    "name",
    "attributes",
    "weight_g",
    "volume_cm3",
    *service.MATERIAL_FLAGS,
    "low_stock_threshold",
    "created_at",
    "updated_at",
)
_PRODUCT_COLUMNS = (
    "id",
    "code",
    "name",
    "kind",
    "expected_ship_date",
    *service.PRODUCT_FLAGS,
    "created_at",
    "updated_at",
)


# ---- types -------------------------------------------------------------------------------------------


@guarded_by("catalog:read")
@strawberry.type(name="Material", description="A stock-keeping unit: what a warehouse counts.")
class MaterialNode(TenantScopedNode):
    id: relay.NodeID[int]
    code: str
    barcode: str | None
    name: str
    attributes: JSON = strawberry.field(description='Free attributes, e.g. {"colour": "red", "size": "M"}.')
    weight_g: int | None
    volume_cm3: int | None
    serial_tracked: bool
    batch_tracked: bool
    cold_chain: bool
    fragile: bool
    high_value: bool
    low_stock_threshold: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Material) -> MaterialNode:
        return cls(**{name: getattr(row, name) for name in _MATERIAL_COLUMNS})

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = info.context.loaders.material
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


@strawberry.type
class ProductComponent:
    quantity: int = strawberry.field(description="Units of the material in one unit of the product.")
    material_id: strawberry.Private[int]

    @strawberry.field
    async def material(self, info: Info) -> MaterialNode:
        return MaterialNode.from_row(await info.context.loaders.material.load(self.material_id))


@guarded_by("catalog:read")
@strawberry.type(name="Product", description="What is sold (or, for gifts, given away).")
class ProductNode(TenantScopedNode):
    id: relay.NodeID[int]
    code: str
    name: str
    kind: ProductKindEnum
    presale: bool
    expected_ship_date: date | None
    allow_backorder: bool
    active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The materials one unit takes; empty for virtual and service products.")
    async def components(self, info: Info) -> list[ProductComponent]:
        parts = await info.context.loaders.product_components.load(self.id)
        return [ProductComponent(material_id=m, quantity=q) for m, q in parts]

    @classmethod
    def from_row(cls, row: Product) -> ProductNode:
        return cls(**{name: getattr(row, name) for name in _PRODUCT_COLUMNS})

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        loader = info.context.loaders.product
        return await load_nodes(info, loader, node_ids, cls.from_row, tenant_scoped=True)


# ---- queries -----------------------------------------------------------------------------------------


@strawberry.input
class MaterialFilter:
    search: str | None = strawberry.field(default=None, description="Part of the code, name or barcode.")
    serial_tracked: bool | None = None
    batch_tracked: bool | None = None
    cold_chain: bool | None = None
    fragile: bool | None = None
    high_value: bool | None = None


@strawberry.input
class ProductFilter:
    search: str | None = strawberry.field(default=None, description="Part of the code or name.")
    kind: ProductKindEnum | None = None
    presale: bool | None = None
    active: bool | None = None


@strawberry.type
class CatalogQueries:
    @strawberry.field(permission_classes=requires("catalog:read"), description="Materials, newest first.")
    async def materials(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: MaterialFilter | None = None,
    ) -> relay.Connection[MaterialNode]:
        flt = filter or MaterialFilter()
        flags = {flag: getattr(flt, flag) for flag in service.MATERIAL_FLAGS}
        query = service.materials_query(flt.search, flags)
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, Material.id, MaterialNode.from_row, first=first, after=after
            )

    @strawberry.field(
        permission_classes=requires("catalog:read"), description="Sales products, newest first."
    )
    async def products(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: ProductFilter | None = None,
    ) -> relay.Connection[ProductNode]:
        flt = filter or ProductFilter()
        query = service.products_query(flt.search, flt.kind, flt.presale, flt.active)
        async with info.context.tenant_session() as session:
            return await paginate(session, query, Product.id, ProductNode.from_row, first=first, after=after)


# ---- mutations ---------------------------------------------------------------------------------------


@strawberry.input
class CreateMaterialInput:
    code: str
    name: str
    barcode: str | None = None
    attributes: JSON | None = None
    weight_g: int | None = None
    volume_cm3: int | None = None
    serial_tracked: bool = False
    batch_tracked: bool = False
    cold_chain: bool = False
    fragile: bool = False
    high_value: bool = False
    low_stock_threshold: int | None = None


@strawberry.input(description="Fields left out stay as they are; null clears an optional field.")
class UpdateMaterialInput:
    id: strawberry.ID
    code: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    barcode: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    weight_g: int | None = strawberry.UNSET
    volume_cm3: int | None = strawberry.UNSET
    serial_tracked: bool | None = strawberry.UNSET
    batch_tracked: bool | None = strawberry.UNSET
    cold_chain: bool | None = strawberry.UNSET
    fragile: bool | None = strawberry.UNSET
    high_value: bool | None = strawberry.UNSET
    low_stock_threshold: int | None = strawberry.UNSET


@strawberry.type
class MaterialPayload:
    material: MaterialNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class ComponentInput:
    material_id: strawberry.ID
    quantity: int = strawberry.field(description="Whole units per product, 1 to 10,000.")


_KIND_RULES = (
    "single and gift: exactly one component with quantity 1; bundle: 1-100 components;"
    " virtual and service: none."
)


@strawberry.input
class CreateProductInput:
    code: str
    name: str
    kind: ProductKindEnum
    components: list[ComponentInput] = strawberry.field(default_factory=list, description=_KIND_RULES)
    presale: bool = False
    expected_ship_date: date | None = strawberry.field(default=None, description="Required for presale.")
    allow_backorder: bool = False
    active: bool = True


@strawberry.input(description="Fields left out stay as they are; components, when given, replace all.")
class UpdateProductInput:
    id: strawberry.ID
    code: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    kind: ProductKindEnum | None = strawberry.UNSET
    components: list[ComponentInput] | None = strawberry.field(
        default=strawberry.UNSET, description=_KIND_RULES
    )
    presale: bool | None = strawberry.UNSET
    expected_ship_date: date | None = strawberry.UNSET
    allow_backorder: bool | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.type
class ProductPayload:
    product: ProductNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _components(info: Info, items: list[ComponentInput] | None) -> list[tuple[int, int]] | None:
    if items is None or items is strawberry.UNSET:
        return None
    if len(items) > fields.MAX_COMPONENTS:  # before decoding ids: the cap bounds the work
        raise UserError("TOO_MANY_COMPONENTS", f"at most {fields.MAX_COMPONENTS} components", "components")
    return [
        (
            row_id(info, c.material_id, "Material", "material", ["components", str(i), "materialId"]),
            c.quantity,
        )
        for i, c in enumerate(items)
    ]


def _product_built(info: Info):
    def build(row: Product) -> ProductPayload:
        with suppress(KeyError):  # DataLoader.clear raises for keys it never loaded
            info.context.loaders.product_components.clear(row.id)
        return ProductPayload(product=ProductNode.from_row(row))

    return build


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def create_material(self, info: Info, input: CreateMaterialInput) -> MaterialPayload:
        return await mutate(
            info,
            lambda s: service.create_material(s, given(input)),
            lambda row: MaterialPayload(material=MaterialNode.from_row(row)),
            MaterialPayload,
        )

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def update_material(self, info: Info, input: UpdateMaterialInput) -> MaterialPayload:
        async def work(session):
            material_id = row_id(info, input.id, "Material", "material")
            return await service.update_material(session, material_id, given(input))

        return await mutate(
            info, work, lambda row: MaterialPayload(material=MaterialNode.from_row(row)), MaterialPayload
        )

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        async def work(session):
            components = _components(info, input.components) or []
            return await service.create_product(session, given(input, skip=("components",)), components)

        return await mutate(info, work, _product_built(info), ProductPayload)

    @strawberry.mutation(permission_classes=requires("catalog:write"))
    async def update_product(self, info: Info, input: UpdateProductInput) -> ProductPayload:
        async def work(session):
            product_id = row_id(info, input.id, "Product", "product")
            if input.components is None:
                raise UserError(
                    "INVALID_COMPONENTS", "components cannot be null; give [] for none", "components"
                )
            components = _components(info, input.components)
            return await service.update_product(
                session, product_id, given(input, skip=("id", "components")), components
            )

        return await mutate(info, work, _product_built(info), ProductPayload)
