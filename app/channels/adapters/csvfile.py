"""CSV order import: one row per order line, rows grouped into orders by an order-id column.

``parse_csv(text, mapping)`` reads the file with a column mapping ``{field: column}``; a mapping value
starting with ``=`` is a constant for every row (``{"currency": "=CNY", "timezone": "=Asia/Shanghai"}``).
Fields (``*`` required):

* order: ``order_id``\\*, ``placed_at``\\*, ``currency``\\*, ``status`` (one of the normalised statuses,
  default ``paid``), ``paid_at``, ``updated_at`` (default ``placed_at``), ``business_model``, ``shipping``,
  ``order_discount`` (allocated over the lines), ``tax``, ``carrier``, ``buyer_note``, ``seller_note``,
  ``buyer_id``, ``buyer_name``, ``buyer_phone``, ``buyer_email``, ``buyer_nick``, ``ship_name``,
  ``ship_phone``, ``country``, ``province``, ``city``, ``district``, ``street``, ``postcode``,
  ``invoice_title``, ``invoice_tax_id``, ``invoice_type``, ``timezone`` (for times written without an
  offset);
* line: ``sku_id``\\* (or ``item_id``), ``item_id``, ``line_id`` (default: position in the order),
  ``title``, ``quantity``\\*, ``unit_price``\\*, ``line_discount``, ``is_gift``.

Order fields are read from an order's first row; a later row that says otherwise is an error. The result
lists, in file order, a ``NormalizedOrder`` for every order whose rows are all valid and an
``AdapterError`` (with ``line`` = the file line, the header being line 1) for every bad row; an order with
a bad row is skipped whole, never imported without the line. A mapping that names an unknown field or a
column missing from the header raises ``AdapterError`` at once: the whole file is unreadable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.channels.adapters import _values as v
from app.channels.adapters.base import ChannelAdapter, ListingRef, Raw, check_quantity
from app.channels.adapters.generic import ORDER_FORMAT, GenericAdapter
from app.channels.normalized import (
    BUSINESS_MODELS,
    MAX_ID,
    MAX_NOTE,
    MAX_TEXT,
    MAX_TITLE,
    STATUSES,
    AdapterError,
    NormalizedOrder,
    check_text,
)

ORDER_FIELDS = (
    "order_id",
    "placed_at",
    "currency",
    "status",
    "paid_at",
    "updated_at",
    "business_model",
    "shipping",
    "order_discount",
    "tax",
    "carrier",
    "buyer_note",
    "seller_note",
    "buyer_id",
    "buyer_name",
    "buyer_phone",
    "buyer_email",
    "buyer_nick",
    "ship_name",
    "ship_phone",
    "country",
    "province",
    "city",
    "district",
    "street",
    "postcode",
    "invoice_title",
    "invoice_tax_id",
    "invoice_type",
    "timezone",
)
LINE_FIELDS = ("line_id", "item_id", "sku_id", "title", "quantity", "unit_price", "line_discount", "is_gift")
REQUIRED = ("order_id", "placed_at", "currency", "quantity", "unit_price")
DEFAULT_MAPPING = {name: name for name in ORDER_FIELDS + LINE_FIELDS}
_LIMITS = {  # characters per cell; every other field MAX_TEXT
    **dict.fromkeys(("order_id", "line_id", "item_id", "sku_id"), MAX_ID),
    "title": MAX_TITLE,
    "buyer_note": MAX_NOTE,
    "seller_note": MAX_NOTE,
}

# CSV field -> path in the generic JSON format (which does the actual validation)
_TARGET = {
    "order_id": ("id",),
    "buyer_id": ("buyer", "id"),
    "buyer_name": ("buyer", "name"),
    "buyer_phone": ("buyer", "phone"),
    "buyer_email": ("buyer", "email"),
    "buyer_nick": ("buyer", "nick"),
    "ship_name": ("shipping_address", "name"),
    "ship_phone": ("shipping_address", "phone"),
    "invoice_title": ("invoice", "title"),
    "invoice_tax_id": ("invoice", "tax_id"),
    "invoice_type": ("invoice", "type"),
    "line_id": ("id",),
    "line_discount": ("discount",),
    **{k: ("shipping_address", k) for k in ("country", "province", "city", "district", "street", "postcode")},
}


@dataclass
class _Order:
    first_line: int
    values: dict[str, str] = field(default_factory=dict)
    value_lines: dict[str, int] = field(default_factory=dict)
    lines: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    bad: bool = False


def _check_mapping(mapping: Mapping[str, str], header: list[str]) -> None:
    known = set(ORDER_FIELDS) | set(LINE_FIELDS)
    for name, column in mapping.items():
        if name not in known:
            raise AdapterError(f"mapping.{name}", f"is not a CSV field (fields: {', '.join(sorted(known))})")
        if not column.startswith("=") and column not in header:
            raise AdapterError(
                f"mapping.{name}", f"column {column!r} is not in the header ({', '.join(header)})"
            )
    missing = [name for name in REQUIRED if name not in mapping]
    if "sku_id" not in mapping and "item_id" not in mapping:
        missing.append("sku_id or item_id")
    if missing:
        raise AdapterError("mapping", f"required fields are not mapped: {', '.join(missing)}")


def _read(row: list[str], header: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    cells = dict(zip(header, row, strict=False))
    out = {}
    for name, column in mapping.items():
        value = column[1:] if column.startswith("=") else (cells.get(column) or "")
        if value.strip():
            out[name] = value.strip()
    return out


def _zone(name: str | None, column: str) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AdapterError(column, f"{name!r} is not a time zone name such as 'Asia/Shanghai'") from None


def _check_row(values: dict[str, str], mapping: Mapping[str, str]) -> None:
    """Validate one row's cells in place (times become ISO with offset); raise on the first bad cell."""

    def col(name: str) -> str:
        return _column(mapping, name)

    for name, value in values.items():  # every cell within its length, without control characters
        check_text(col(name), value, _LIMITS.get(name, MAX_TEXT))
    if "sku_id" not in values and "item_id" not in values:
        raise AdapterError(col("sku_id"), "is empty: a line needs a SKU or an item id")
    for name in REQUIRED:
        if name not in values:
            raise AdapterError(col(name), "is empty")
    v.quantity(values["quantity"], col("quantity"))
    for name in ("unit_price", "line_discount", "shipping", "order_discount", "tax"):
        if name in values:
            v.exact_money(values[name], col(name))
    zone = _zone(values.get("timezone"), col("timezone"))
    for name in ("placed_at", "paid_at", "updated_at"):
        if name in values:
            values[name] = v.iso_time(values[name], col(name), assume=zone).isoformat()
    for name, allowed in (("status", STATUSES), ("business_model", BUSINESS_MODELS)):
        if name in values and values[name].lower() not in allowed:
            raise AdapterError(col(name), f"{values[name]!r} is not one of {', '.join(allowed)}")
        if name in values:
            values[name] = values[name].lower()
    if not (len(values["currency"]) == 3 and values["currency"].isalpha()):
        raise AdapterError(col("currency"), f"{values['currency']!r} is not a currency code such as CNY")
    if "is_gift" in values and values["is_gift"].lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise AdapterError(col("is_gift"), f"{values['is_gift']!r} is not true/false")


def _to_generic(order: _Order, platform: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": ORDER_FORMAT, "status": "paid", "lines": []}
    if platform == "b2b":
        doc["business_model"] = "b2b"
    status = order.values.get("status", "paid")
    if "paid_at" not in order.values and status in ("paid", "partially_shipped", "shipped", "completed"):
        doc["paid_at"] = order.values["placed_at"]  # a shop or POS sale is paid when it is placed
    for name, value in order.values.items():
        if name == "timezone":
            continue
        path = _TARGET.get(name, (name,))
        if len(path) == 2:
            doc.setdefault(path[0], {})[path[1]] = value
        else:
            doc[path[0]] = value
    for position, (_, values) in enumerate(order.lines, start=1):
        line: dict[str, Any] = {"id": str(position)}
        for name in LINE_FIELDS:
            if name in values:
                line[_TARGET.get(name, (name,))[0]] = values[name]
        doc["lines"].append(line)
    return doc


def _column(mapping: Mapping[str, str], name: str) -> str:
    column = mapping.get(name, name)
    return name if column.startswith("=") else column


def _locate(path: str, order: _Order, mapping: Mapping[str, str]) -> tuple[int, str]:
    """The file line and CSV column of an error the generic parser reported at ``path``."""
    if path.startswith("lines["):
        index, _, rest = path[len("lines[") :].partition("]")
        name = {".id": "line_id", ".discount": "line_discount"}.get(rest, rest.lstrip("."))
        return order.lines[int(index)][0], _column(mapping, name) if name else "lines"
    reverse = {".".join(target): name for name, target in _TARGET.items() if name not in LINE_FIELDS}
    name = reverse.get(path, path)
    return order.value_lines.get(name, order.first_line), _column(mapping, name)


def parse_csv(
    text: str, mapping: Mapping[str, str] | None = None, *, platform: str = "csv"
) -> list[NormalizedOrder | AdapterError]:
    mapping = dict(mapping or DEFAULT_MAPPING)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise AdapterError("header", "the file is empty") from None
    _check_mapping(mapping, header)
    orders: dict[str, _Order] = {}
    results: list[tuple[int, NormalizedOrder | AdapterError]] = []
    end_of_previous = reader.line_num
    for row in reader:
        line_no, end_of_previous = end_of_previous + 1, reader.line_num  # a quoted cell may span lines
        if not any(cell.strip() for cell in row):
            continue
        values = _read(row, header, mapping)
        shown = dict(values)  # as written, for messages
        order_id = values.get("order_id")
        order = orders.setdefault(order_id, _Order(line_no)) if order_id else None
        try:
            _check_row(values, mapping)
            for name in ORDER_FIELDS:
                if order is None or name not in values:
                    continue
                if name not in order.values:
                    order.values[name], order.value_lines[name] = values[name], line_no
                elif order.values[name] != values[name]:
                    raise AdapterError(
                        _column(mapping, name),
                        f"{shown[name]!r} differs from line {order.value_lines[name]} of the same order",
                    )
        except AdapterError as exc:
            skipped = f" (order {order_id} skipped)" if order_id else ""
            results.append((line_no, AdapterError(exc.path, exc.message + skipped, line=line_no)))
            if order is not None:
                order.bad = True
            continue
        assert order is not None  # order_id is required, so _check_row raised without one
        order.lines.append((line_no, values))
    adapter = GenericAdapter(platform)
    for order_id, order in orders.items():
        if order.bad:
            continue
        try:
            results.append((order.first_line, adapter.parse_order(_to_generic(order, platform))))
        except AdapterError as exc:  # order-level problems: allocation, totals
            line, column = _locate(exc.path, order, mapping)
            results.append(
                (line, AdapterError(column, f"{exc.message} (order {order_id} skipped)", line=line))
            )
    results.sort(key=lambda pair: pair[0])
    return [result for _, result in results]


class CsvAdapter(ChannelAdapter):
    """The CSV importer as an adapter: ``parse_order`` takes a file holding exactly one order."""

    platform = "csv"
    inventory_api = "stock export row {item_id, sku_id, quantity}"

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self.mapping = dict(mapping or DEFAULT_MAPPING)

    def parse_order(self, raw: Raw) -> NormalizedOrder:
        if isinstance(raw, Mapping):
            raise AdapterError("$", "a CSV payload is text, got a JSON object")
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        results = parse_csv(text, self.mapping)
        for result in results:
            if isinstance(result, AdapterError):
                raise result
        if len(results) != 1:
            raise AdapterError(
                "$", f"holds {len(results)} orders; parse_order takes one (use parse_csv for files)"
            )
        return results[0]

    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]:
        return {
            "item_id": listing.external_item_id,
            "sku_id": listing.external_sku_id,
            "quantity": check_quantity(quantity),
        }


ADAPTERS = (CsvAdapter(),)
