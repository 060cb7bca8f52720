"""Materials and sales products: create, update, list, and explode products into materials.

Plain async functions taking a tenant session. Values are dicts keyed by model attribute; updates pass
only the keys to change. Checks live in ``app.fields`` and ``check_*`` below, shared with the
CSV imports.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, any_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app import fields as f
from app.catalog.models import STOCKED_KINDS, Material, Product, ProductComponent, ProductKind
from app.errors import NotFound, UserError
from app.records import flush, search_filter

MATERIAL_FLAGS = ("serial_tracked", "batch_tracked", "cold_chain", "fragile", "high_value")
MATERIAL_MEASURES = {
    "weight_g": "weight (g)",
    "volume_cm3": "volume (cm3)",
    "low_stock_threshold": "low-stock threshold",
}
PRODUCT_FLAGS = ("presale", "allow_backorder", "active")

Components = list[tuple[int, int]]  # (material id, quantity per unit of the product)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# ---- checks ------------------------------------------------------------------------------------------


def clean_material(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        field = camel(key)
        if key == "code":
            out[key] = f.clean_code(value)
        elif key == "name":
            out[key] = f.clean_text(value, field, "name", 300)
        elif key == "barcode":
            out[key] = f.clean_barcode(value)
        elif key == "attributes":
            out[key] = f.clean_attributes(value)
        elif key in MATERIAL_MEASURES:
            out[key] = f.clean_measure(value, field, MATERIAL_MEASURES[key])
        elif key in MATERIAL_FLAGS:
            out[key] = f.clean_flag(value, field, key.replace("_", " "))
        else:
            raise ValueError(f"not a material field: {key}")
    if new:
        _require(out, ("code", "name"))
    return out


def clean_product(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        field = camel(key)
        if key == "code":
            out[key] = f.clean_code(value)
        elif key == "name":
            out[key] = f.clean_text(value, field, "name", 300)
        elif key == "kind":
            out[key] = _kind(value)
        elif key == "expected_ship_date":
            out[key] = f.clean_date(value, field, "expected ship date")
        elif key in PRODUCT_FLAGS:
            out[key] = f.clean_flag(value, field, key.replace("_", " "))
        else:
            raise ValueError(f"not a product field: {key}")
    if new:
        _require(out, ("code", "name", "kind"))
    return out


def _require(values: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in values:
            raise UserError("REQUIRED", f"{key} is required", camel(key))


def _kind(value: Any) -> ProductKind:
    try:
        return ProductKind(value)
    except ValueError:
        kinds = ", ".join(k.value for k in ProductKind)
        raise UserError("INVALID_KIND", f"kind must be one of: {kinds}", "kind") from None


def check_components(kind: ProductKind, components: Components) -> None:
    """Quantities, no repeated material, and the shape each kind needs."""
    if len(components) > f.MAX_COMPONENTS:
        raise UserError("TOO_MANY_COMPONENTS", f"at most {f.MAX_COMPONENTS} components", "components")
    seen: set[int] = set()
    for i, (material_id, qty) in enumerate(components):
        f.clean_quantity(qty, ["components", str(i), "quantity"])
        if material_id in seen:
            raise UserError(
                "DUPLICATE_COMPONENT",
                "a material appears twice; give it once with the total quantity",
                ["components", str(i), "materialId"],
            )
        seen.add(material_id)
    if kind in (ProductKind.single, ProductKind.gift):
        if len(components) != 1 or components[0][1] != 1:
            raise UserError(
                "INVALID_COMPONENTS",
                f"a {kind.value} product has exactly one component with quantity 1",
                "components",
            )
    elif kind is ProductKind.bundle:
        if not components:
            raise UserError("INVALID_COMPONENTS", "a bundle needs at least one component", "components")
    elif components:
        raise UserError(
            "INVALID_COMPONENTS",
            f"a {kind.value} product has no components (it holds no stock)",
            "components",
        )


def check_presale(presale: bool, expected_ship_date: date | None) -> date | None:
    """The ship date to store: required for presale, dropped otherwise."""
    if presale and expected_ship_date is None:
        raise UserError(
            "SHIP_DATE_REQUIRED", "a presale product needs an expected ship date", "expectedShipDate"
        )
    return expected_ship_date if presale else None


async def _ensure_free(session: AsyncSession, column, value: Any, exclude_id: int | None, what: str) -> None:
    query = select(column.class_.id).where(column == value)
    if exclude_id is not None:
        query = query.where(column.class_.id != exclude_id)
    if await session.scalar(query.limit(1)) is not None:
        name = column.key
        raise UserError(f"DUPLICATE_{name.upper()}", f"a {what} with {name} {value!r} already exists", name)


_CONSTRAINTS = {
    "uq_materials_code": ("DUPLICATE_CODE", "a material with this code already exists", "code"),
    "uq_materials_barcode": ("DUPLICATE_BARCODE", "a material with this barcode already exists", "barcode"),
    "uq_products_code": ("DUPLICATE_CODE", "a product with this code already exists", "code"),
}


# ---- materials ---------------------------------------------------------------------------------------


async def create_material(session: AsyncSession, values: dict[str, Any]) -> Material:
    values = clean_material(values, new=True)
    await _ensure_free(session, Material.code, values["code"], None, "material")
    if values.get("barcode"):
        await _ensure_free(session, Material.barcode, values["barcode"], None, "material")
    row = Material(**{"attributes": {}, **{k: False for k in MATERIAL_FLAGS}, **values})
    session.add(row)
    await flush(session, _CONSTRAINTS)
    return row


async def update_material(session: AsyncSession, material_id: int, values: dict[str, Any]) -> Material:
    row = await session.get(Material, material_id)
    if row is None:
        raise NotFound("material")
    values = clean_material(values, new=False)
    if "code" in values:
        await _ensure_free(session, Material.code, values["code"], row.id, "material")
    if values.get("barcode"):
        await _ensure_free(session, Material.barcode, values["barcode"], row.id, "material")
    for key, value in values.items():
        setattr(row, key, value)
    await flush(session, _CONSTRAINTS)
    await session.refresh(row)
    return row


def materials_query(search: str | None = None, flags: dict[str, bool] | None = None) -> Select:
    """Base query for listing; flags are exact matches on MATERIAL_FLAGS (None = either)."""
    query = search_filter(select(Material), search, Material.code, Material.name, Material.barcode)
    for flag, value in (flags or {}).items():
        if flag not in MATERIAL_FLAGS:
            raise ValueError(flag)
        if value is not None:
            query = query.where(getattr(Material, flag).is_(value))
    return query


# ---- products ----------------------------------------------------------------------------------------


async def _check_materials_exist(session: AsyncSession, components: Components) -> None:
    ids = [m for m, _ in components]
    found = set((await session.scalars(select(Material.id).where(Material.id.in_(ids)))).all())
    for i, material_id in enumerate(ids):
        if material_id not in found:
            raise NotFound("material", ["components", str(i), "materialId"])


async def _replace_components(session: AsyncSession, product_id: int, components: Components) -> None:
    await session.execute(delete(ProductComponent).where(ProductComponent.product_id == product_id))
    if components:
        await session.execute(
            insert(ProductComponent),
            [{"product_id": product_id, "material_id": m, "quantity": q} for m, q in components],
        )


async def components_of(session: AsyncSession, product_ids: list[int]) -> dict[int, Components]:
    rows = await session.execute(
        select(ProductComponent.product_id, ProductComponent.material_id, ProductComponent.quantity)
        .where(ProductComponent.product_id.in_(product_ids))
        .order_by(ProductComponent.product_id, ProductComponent.material_id)
    )
    out: dict[int, Components] = {pid: [] for pid in product_ids}
    for product_id, material_id, qty in rows:
        out[product_id].append((material_id, qty))
    return out


async def create_product(session: AsyncSession, values: dict[str, Any], components: Components) -> Product:
    values = clean_product(values, new=True)
    check_components(values["kind"], components)
    values["expected_ship_date"] = check_presale(
        values.get("presale", False), values.get("expected_ship_date")
    )
    await _check_materials_exist(session, components)
    await _ensure_free(session, Product.code, values["code"], None, "product")
    row = Product(**{"presale": False, "allow_backorder": False, "active": True, **values})
    session.add(row)
    await flush(session, _CONSTRAINTS)
    await _replace_components(session, row.id, components)
    return row


async def update_product(
    session: AsyncSession, product_id: int, values: dict[str, Any], components: Components | None = None
) -> Product:
    """Changes the given fields; ``components``, when given, replace the current ones."""
    row = await session.get(Product, product_id)
    if row is None:
        raise NotFound("product")
    values = clean_product(values, new=False)
    kind = values.get("kind", row.kind)
    if components is not None or kind is not row.kind:
        current = components if components is not None else (await components_of(session, [row.id]))[row.id]
        check_components(kind, current)
    presale = values.get("presale", row.presale)
    values["expected_ship_date"] = check_presale(
        presale, values.get("expected_ship_date", row.expected_ship_date)
    )
    if components:
        await _check_materials_exist(session, components)
    if "code" in values:
        await _ensure_free(session, Product.code, values["code"], row.id, "product")
    for key, value in values.items():
        setattr(row, key, value)
    await flush(session, _CONSTRAINTS)
    if components is not None:
        await _replace_components(session, row.id, components)
    await session.refresh(row)
    return row


def products_query(
    search: str | None = None,
    kind: ProductKind | None = None,
    presale: bool | None = None,
    active: bool | None = None,
) -> Select:
    query = search_filter(select(Product), search, Product.code, Product.name)
    if kind is not None:
        query = query.where(Product.kind == kind)
    if presale is not None:
        query = query.where(Product.presale.is_(presale))
    if active is not None:
        query = query.where(Product.active.is_(active))
    return query


class Exploded(list[tuple[int, int]]):
    """What one unit of a product takes from stock: ``(material id, quantity)`` pairs (so it compares
    equal to a plain list of them), plus the product facts reserving needs, read in the same query."""

    __slots__ = ("active", "kind", "may_go_short")

    def __init__(self, kind: ProductKind, active: bool, may_go_short: bool) -> None:
        super().__init__()
        self.kind = kind
        self.active = active
        self.may_go_short = may_go_short  # presale or backorder: may be sold beyond stock

    @property
    def stocked(self) -> bool:
        return self.kind in STOCKED_KINDS


async def explode(session: AsyncSession, product_ids: list[int]) -> dict[int, Exploded]:
    """What one unit of each product takes from stock: a bundle its components, a single or gift its
    material, virtual and service products nothing. Unknown ids are left out of the result. Each value
    also carries the product's kind, whether it is active and whether it may go short, so callers need
    not load the products again."""
    rows = await session.execute(
        select(
            Product.id,
            Product.kind,
            Product.active,
            Product.presale,
            Product.allow_backorder,
            ProductComponent.material_id,
            ProductComponent.quantity,
        )
        .outerjoin(ProductComponent, ProductComponent.product_id == Product.id)
        .where(Product.id == any_(arrays.ids(set(product_ids))))
        .order_by(Product.id, ProductComponent.material_id)
    )
    out: dict[int, Exploded] = {}
    for product_id, kind, active, presale, backorder, material_id, qty in rows:
        parts = out.get(product_id)
        if parts is None:
            parts = out[product_id] = Exploded(kind, active, presale or backorder)
        if kind in STOCKED_KINDS and material_id is not None:
            parts.append((material_id, qty))
    return out


async def rows_by_ids(session: AsyncSession, model, ids: list[int]) -> list[Any]:
    return list((await session.scalars(select(model).where(model.id.in_(ids)))).all())
