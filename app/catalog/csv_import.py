"""CSV imports of materials, products and channel listings: upsert by code (listings by channel, item
and SKU), row-level errors, good rows kept.

Every row is checked with the same functions the GraphQL mutations use, and against the database in
bulk; the rows that pass are written in chunks with one upsert statement each. A chunk that still hits
a unique violation (a concurrent writer) is retried row by row, so only the conflicting rows fail.
Columns a file leaves out are left unchanged on existing rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import fields as f
from app.catalog import csv_io, listings
from app.catalog import service as svc
from app.catalog.csv_io import CellError, ImportResult, Row, as_bool, as_date, as_int, as_json_object
from app.catalog.models import ChannelListing, Material, Product, ProductComponent
from app.channels.models import Channel
from app.errors import UserError

CHUNK = 500
MATERIAL_COLUMNS = (
    ("code", "name"),
    (
        "barcode",
        "attributes",
        *svc.MATERIAL_MEASURES,
        *svc.MATERIAL_FLAGS,
    ),
)
PRODUCT_COLUMNS = (
    ("code", "name", "kind", "components"),
    ("presale", "expected_ship_date", "allow_backorder", "active"),
)
LISTING_COLUMNS = ("channel", "external_item_id", "product"), ("external_sku_id", "title", "active")

Checked = tuple[Row, dict[str, Any]]


def batched(items: Iterable[Any], size: int):
    """itertools.batched arrived in Python 3.12."""
    it = iter(items)
    while part := list(islice(it, size)):
        yield part


def _error(result: ImportResult, row: Row, exc: Exception) -> None:
    result.fail(
        row.line, str(exc) if isinstance(exc, CellError) else exc.message, getattr(exc, "code", "INVALID_ROW")
    )


def _unnest(values: Iterable[Any], column) -> Any:
    """``unnest(<one array parameter>)`` to join against.

    asyncpg's prepared statements soon run on a generic plan, where ``column IN (...)`` or
    ``= ANY($1)`` cannot hash the list: thousands of keys make that a scan times a linear search.
    Joined to the unnested array, the unique index is probed once per key instead.
    """
    return func.unnest(bindparam("keys", sorted(set(values)), type_=ARRAY(column.type))).column_valued("k")


async def _lookup(session: AsyncSession, key, value, keys: Iterable[Any]) -> dict[Any, Any]:
    """{key: value} for the keys that exist."""
    keys = set(keys)
    if not keys:
        return {}
    return dict((await session.execute(select(key, value).where(key == _unnest(keys, key)))).all())


async def _write(
    session: AsyncSession,
    rows: list[Checked],
    write: Callable[[list[Checked]], Awaitable[int]],
    result: ImportResult,
) -> None:
    """``write`` upserts a chunk and returns how many rows already existed."""
    for chunk in batched(rows, CHUNK):
        try:
            async with session.begin_nested():
                existed = await write(chunk)
        except IntegrityError:
            for one in chunk:
                try:
                    async with session.begin_nested():
                        existed = await write([one])
                except IntegrityError:
                    result.fail(
                        one[0].line,
                        "conflicts with a change made at the same time; import it again",
                        "CONFLICT",
                    )
                else:
                    result.created += 1 - existed
                    result.updated += existed
        else:
            result.created += len(chunk) - existed
            result.updated += existed


def _upsert(model, keys: list[str], changed: list[str], *, touch: bool = False):
    """INSERT .. ON CONFLICT DO UPDATE on the Core table: run with a list of rows it is compiled once
    and sent as one executemany (a multi-VALUES statement per chunk spends its time compiling)."""
    stmt = pg_insert(model.__table__)
    set_ = {c: stmt.excluded[c] for c in changed} | ({"updated_at": func.now()} if touch else {})
    return stmt.on_conflict_do_update(index_elements=keys, set_=set_)


def _unique(result: ImportResult, seen: dict[Any, int], key: Any, row: Row, what: str, code: str) -> bool:
    if key in seen:
        result.fail(row.line, f"{what} already appears on line {seen[key]}", code)
        return False
    seen[key] = row.line
    return True


# ---- materials ---------------------------------------------------------------------------------------


def _material_values(cells: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column, text in cells.items():
        if column == "attributes":
            values[column] = as_json_object(text, column)
        elif column in svc.MATERIAL_MEASURES:
            values[column] = as_int(text, column)
        elif column in svc.MATERIAL_FLAGS:
            values[column] = as_bool(text, column, default=False)
        else:
            values[column] = text
    return svc.clean_material(values, new=True)


async def import_materials(session: AsyncSession, text: str) -> ImportResult:
    header, rows, result = csv_io.read(text, required=MATERIAL_COLUMNS[0], optional=MATERIAL_COLUMNS[1])
    checked: list[Checked] = []
    codes: dict[str, int] = {}
    barcodes: dict[str, int] = {}
    for row in rows:
        try:
            values = _material_values(row.cells)
        except (CellError, UserError) as exc:
            _error(result, row, exc)
            continue
        barcode = values.get("barcode")
        if not _unique(result, codes, values["code"], row, f"code {values['code']!r}", "DUPLICATE_CODE"):
            continue
        if barcode and not _unique(
            result, barcodes, barcode, row, f"barcode {barcode!r}", "DUPLICATE_BARCODE"
        ):
            continue
        checked.append((row, values))
    owners = await _lookup(session, Material.barcode, Material.code, barcodes)
    keep: list[Checked] = []
    for row, values in checked:
        owner = owners.get(values.get("barcode"), values["code"])
        if owner != values["code"]:
            result.fail(
                row.line,
                f"barcode {values['barcode']!r} already belongs to material {owner!r}",
                "DUPLICATE_BARCODE",
            )
        else:
            keep.append((row, values))

    defaults = {
        "barcode": None,
        "attributes": {},
        **dict.fromkeys(svc.MATERIAL_MEASURES),
        **dict.fromkeys(svc.MATERIAL_FLAGS, False),
    }
    material_upsert = _upsert(Material, ["code"], [c for c in header if c != "code"], touch=True)

    async def write(chunk: list[Checked]) -> int:
        existing = await _lookup(session, Material.code, Material.id, (v["code"] for _, v in chunk))
        await session.execute(material_upsert, [{**defaults, **v} for _, v in chunk])
        return len(existing)

    await _write(session, keep, write, result)
    return result


# ---- products ----------------------------------------------------------------------------------------


def parse_components(text: str) -> list[tuple[str, int]]:
    """``MAT-1*1;MAT-2*3`` -> [("MAT-1", 1), ("MAT-2", 3)]; a code alone means quantity 1."""
    out: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        code, sep, qty = part.rpartition("*")
        code, qty = (code.strip(), qty.strip()) if sep else (part, "1")
        if not code:
            raise CellError(f"components: {part!r} names no material (write CODE*QUANTITY)")
        try:
            number = as_int(qty, "quantity")
        except CellError:
            number = None
        if number is None:
            raise CellError(f"components: quantity {qty!r} of {code} is not a whole number")
        try:
            f.clean_quantity(number, "components")
        except UserError as exc:
            raise UserError(exc.code, f"components: {code}: {exc.message}", "components") from None
        out.append((code, number))
    return out


def _product_values(cells: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    values: dict[str, Any] = {}
    for column, text in cells.items():
        if column in svc.PRODUCT_FLAGS:
            values[column] = as_bool(text, column, default=column == "active")
        elif column == "expected_ship_date":
            values[column] = as_date(text, column)
        elif column != "components":
            values[column] = text
    components = parse_components(cells["components"])
    values = svc.clean_product(values, new=True)
    if "presale" in values:
        values["expected_ship_date"] = svc.check_presale(values["presale"], values.get("expected_ship_date"))
    return values, components


async def import_products(session: AsyncSession, text: str) -> ImportResult:
    header, rows, result = csv_io.read(text, required=PRODUCT_COLUMNS[0], optional=PRODUCT_COLUMNS[1])
    if "expected_ship_date" in header and "presale" not in header:
        raise UserError("CSV_MISSING_COLUMNS", "expected_ship_date needs the presale column too", "csv")
    parsed: list[tuple[Row, dict[str, Any], list[tuple[str, int]]]] = []
    codes: dict[str, int] = {}
    for row in rows:
        try:
            values, components = _product_values(row.cells)
        except (CellError, UserError) as exc:
            _error(result, row, exc)
            continue
        if _unique(result, codes, values["code"], row, f"code {values['code']!r}", "DUPLICATE_CODE"):
            parsed.append((row, values, components))
    material_ids = await _lookup(
        session, Material.code, Material.id, (c for *_, comps in parsed for c, _ in comps)
    )
    checked: list[Checked] = []
    for row, values, components in parsed:
        unknown = [code for code, _ in components if code not in material_ids]
        try:
            if unknown:
                raise UserError("NOT_FOUND", f"unknown material code(s): {', '.join(unknown)}", "components")
            values["components"] = [(material_ids[code], qty) for code, qty in components]
            svc.check_components(values["kind"], values["components"])
        except UserError as exc:
            _error(result, row, exc)
            continue
        checked.append((row, values))

    defaults = {"presale": False, "expected_ship_date": None, "allow_backorder": False, "active": True}
    product_upsert = _upsert(
        Product, ["code"], [c for c in header if c not in ("code", "components")], touch=True
    )

    async def write(chunk: list[Checked]) -> int:
        existing = await _lookup(session, Product.code, Product.id, (v["code"] for _, v in chunk))
        rows = [{**defaults, **{k: x for k, x in v.items() if k != "components"}} for _, v in chunk]
        await session.execute(product_upsert, rows)
        ids = await _lookup(session, Product.code, Product.id, (v["code"] for _, v in chunk))
        await session.execute(delete(ProductComponent).where(ProductComponent.product_id.in_(ids.values())))
        parts = [
            {"product_id": ids[v["code"]], "material_id": m, "quantity": q}
            for _, v in chunk
            for m, q in v["components"]
        ]
        if parts:
            await session.execute(insert(ProductComponent), parts)
        return len(existing)

    await _write(session, checked, write, result)
    return result


# ---- channel listings --------------------------------------------------------------------------------


async def import_listings(session: AsyncSession, text: str) -> ImportResult:
    header, rows, result = csv_io.read(text, required=LISTING_COLUMNS[0], optional=LISTING_COLUMNS[1])
    channels = await _lookup(session, Channel.code, Channel.id, (r.cells["channel"] for r in rows))
    products = await _lookup(session, Product.code, Product.id, (r.cells["product"] for r in rows))
    kinds = await _lookup(session, Product.id, Product.kind, products.values())
    checked: list[Checked] = []
    keys: dict[tuple[int, str, str], int] = {}
    for row in rows:
        cells = row.cells
        try:
            item_id, sku_id = listings.clean_listing_keys(
                cells["external_item_id"], cells.get("external_sku_id", "")
            )
            values: dict[str, Any] = {"external_item_id": item_id, "external_sku_id": sku_id}
            if "title" in cells:
                values["title"] = f.clean_text(cells["title"], "title", "title", 300, required=False)
            if "active" in cells:
                values["active"] = as_bool(cells["active"], "active", default=True)
            if cells["channel"] not in channels:
                raise UserError("NOT_FOUND", f"unknown channel code {cells['channel']!r}", "channel")
            if cells["product"] not in products:
                raise UserError("NOT_FOUND", f"unknown product code {cells['product']!r}", "product")
            values["channel_id"] = channels[cells["channel"]]
            values["product_id"] = products[cells["product"]]
            listings.check_sellable(kinds[values["product_id"]])
        except (CellError, UserError) as exc:
            _error(result, row, exc)
            continue
        key = (values["channel_id"], item_id, sku_id)
        if _unique(result, keys, key, row, "this channel, item and SKU", "DUPLICATE_LISTING"):
            checked.append((row, values))

    defaults = {"title": "", "active": True}
    key_columns = (ChannelListing.channel_id, ChannelListing.external_item_id, ChannelListing.external_sku_id)
    changed = ["product_id", *(c for c in ("title", "active") if c in header)]
    listing_upsert = _upsert(ChannelListing, [c.key for c in key_columns], changed)

    async def write(chunk: list[Checked]) -> int:
        wanted = {(v["channel_id"], v["external_item_id"], v["external_sku_id"]) for _, v in chunk}
        items = _unnest((key[1] for key in wanted), ChannelListing.external_item_id)
        found = await session.execute(select(*key_columns).where(ChannelListing.external_item_id == items))
        existing = len(wanted & {tuple(key) for key in found})
        await session.execute(listing_upsert, [{**defaults, **v} for _, v in chunk])
        return existing

    await _write(session, checked, write, result)
    return result
