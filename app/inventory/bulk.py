"""Bulk stock import: set on hand (as a count) and optionally safety stock for many location x
material rows. Shared by the ``bulkSetStock`` and ``importStockCsv`` mutations and ``oms import stock``.

Rows go in chunks, each chunk in its own transaction: a 100k-row file makes steady, visible progress
without one huge transaction. Each row is checked first (shape, quantities, duplicates, then its codes,
resolved per chunk in one query): a bad row is reported with its line and skipped, good rows are kept.
The good rows of a chunk are then applied together by ``service.count_many``, a constant number of
set-based statements per chunk that still writes each change to the ledger as its own movement; a row
equal to the current level writes nothing, which makes re-running an import a no-op. Network rows are
locked in material order, the order reservations lock them in, so an import and live orders never
deadlock.
"""

from __future__ import annotations

import csv
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import literal, select, union_all
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material
from app.errors import UserError
from app.inventory import service
from app.inventory.ledger import MAX_QUANTITY
from app.inventory.models import Location, StockLevel

log = logging.getLogger(__name__)

CHUNK_SIZE = 500  # rows per transaction: long enough to amortise, short enough not to hold stock rows
COLUMNS = ("location_code", "material_code", "on_hand", "safety_stock")
REQUIRED = COLUMNS[:3]
MAX_CODE = 80
_INT_RE = re.compile(r"^[+-]?\d+$")

OpenSession = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass
class StockRow:
    """One input row as given. ``line`` is what errors are reported against (row index or CSV line)."""

    line: int
    location_code: Any = None
    material_code: Any = None
    on_hand: Any = None
    safety_stock: Any = None
    errors: list[UserError] = field(default_factory=list)  # shape errors found while reading


@dataclass
class RowResult:
    line: int
    errors: list[UserError] = field(default_factory=list)
    level: StockLevel | None = None
    changed: bool = False


@dataclass
class ImportSummary:
    reference: str
    total: int = 0
    applied: int = 0  # rows that changed stock
    unchanged: int = 0
    failed: list[RowResult] = field(default_factory=list)

    def add(self, results: list[RowResult]) -> None:
        for r in results:
            self.total += 1
            if r.errors:
                self.failed.append(r)
            elif r.changed:
                self.applied += 1
            else:
                self.unchanged += 1


@dataclass
class _Valid:
    result: RowResult
    location_code: str
    material_code: str
    on_hand: int
    safety_stock: int | None
    location_id: int = 0
    material_id: int = 0


def new_reference() -> str:
    """One reference for every movement of an import, so its ledger entries can be listed together."""
    return f"stock-import:{datetime.now(UTC):%Y%m%dT%H%M%S}:{secrets.token_hex(3)}"


# ---- checking rows ---------------------------------------------------------------------------------


def to_count(value: Any, name: str) -> int:
    """A whole, non-negative number of units, from an int or its text."""
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError("INVALID_QUANTITY", f"{name} must be a whole number of units", name)
    if value < 0:
        raise UserError("INVALID_QUANTITY", f"{name} cannot be negative (got {value})", name)
    if value > MAX_QUANTITY:
        raise UserError("INVALID_QUANTITY", f"{name} must be at most {MAX_QUANTITY:,} (got {value:,})", name)
    return value


def to_code(value: Any, name: str) -> str:
    code = value.strip() if isinstance(value, str) else ""
    if not code or len(code) > MAX_CODE or any(ord(ch) < 32 for ch in code):
        raise UserError(
            "INVALID_CODE", f"{name} must be 1-{MAX_CODE} characters, no control characters", name
        )
    return code


def _check(row: StockRow, seen: dict[tuple[str, str], int], unit: str) -> _Valid | RowResult:
    result = RowResult(row.line, list(row.errors))
    if result.errors:
        return result
    values: dict[str, Any] = {}
    checks = (
        ("location_code", to_code, row.location_code),
        ("material_code", to_code, row.material_code),
        ("on_hand", to_count, row.on_hand),
        ("safety_stock", to_count, row.safety_stock),
    )
    for name, check, value in checks:
        if name == "safety_stock" and (value is None or value == ""):
            values[name] = None
            continue
        try:
            values[name] = check(value, name)
        except UserError as exc:
            result.errors.append(exc)
    if result.errors:
        return result
    key = (values["location_code"], values["material_code"])
    if key in seen:
        result.errors.append(
            UserError("DUPLICATE_ROW", f"this location and material were already given on {unit} {seen[key]}")
        )
        return result
    seen[key] = row.line
    return _Valid(result, **values)


# ---- applying --------------------------------------------------------------------------------------


async def import_rows(
    open_session: OpenSession,
    rows: Iterable[StockRow],
    *,
    actor: str,
    reference: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[list[RowResult]], Any] | None = None,
    unit: str = "line",
) -> ImportSummary:
    """Apply every good row; report the others. ``open_session()`` opens one tenant transaction;
    ``unit`` is what a row's position is called in messages ("line" in a file, "row" in a list)."""
    summary = ImportSummary(reference or new_reference())
    seen: dict[tuple[str, str], int] = {}
    for chunk in _chunks(rows, chunk_size):
        checked = [_check(row, seen, unit) for row in chunk]
        valid = [c for c in checked if isinstance(c, _Valid)]
        if valid:
            await _apply_chunk(open_session, valid, actor, summary.reference)
        results = [c.result if isinstance(c, _Valid) else c for c in checked]
        summary.add(results)
        if on_chunk is not None:
            on_chunk(results)
    return summary


def _chunks(rows: Iterable[StockRow], size: int) -> Iterator[list[StockRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


async def _apply_chunk(open_session: OpenSession, rows: list[_Valid], actor: str, reference: str) -> None:
    """One transaction. A database failure (say, a deadlock) is retried once, then the chunk's rows
    are reported as failed and the import goes on."""
    for attempt in (1, 2):
        for row in rows:
            row.result.errors, row.result.level, row.result.changed = [], None, False
        try:
            async with open_session() as session:
                await _apply_rows(session, rows, actor, reference)
            return
        except DBAPIError:
            log.warning("stock import chunk failed (attempt %s)", attempt, exc_info=True)
    for row in rows:
        row.result.errors = [
            UserError("CHUNK_FAILED", "the database refused this row's chunk; nothing in it was saved")
        ]
        row.result.level, row.result.changed = None, False


async def _apply_rows(session: AsyncSession, rows: list[_Valid], actor: str, reference: str) -> None:
    locations, materials = await _resolve(
        session, {r.location_code for r in rows}, {r.material_code for r in rows}
    )
    found: list[_Valid] = []
    for row in rows:
        if row.location_code not in locations:
            row.result.errors.append(
                UserError("NOT_FOUND", f"no location with code {row.location_code!r}", "location_code")
            )
        if row.material_code not in materials:
            row.result.errors.append(
                UserError("NOT_FOUND", f"no material with code {row.material_code!r}", "material_code")
            )
        if not row.result.errors:
            row.location_id, row.material_id = locations[row.location_code], materials[row.material_code]
            found.append(row)
    if not found:
        return
    counted = await service.count_many(
        session,
        [service.CountRow(r.location_id, r.material_id, r.on_hand, r.safety_stock) for r in found],
        actor=actor,
        reference=reference,
    )
    for row, result in zip(found, counted, strict=True):
        row.result.level, row.result.changed = result.level, result.changed


async def _resolve(
    session: AsyncSession, location_codes: set[str], material_codes: set[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Both kinds of code in one round trip."""
    query = union_all(
        select(literal("l").label("kind"), Location.code, Location.id).where(
            Location.code.in_(location_codes)
        ),
        select(literal("m").label("kind"), Material.code, Material.id).where(
            Material.code.in_(material_codes)
        ),
    )
    locations: dict[str, int] = {}
    materials: dict[str, int] = {}
    for kind, code, row_id in (await session.execute(query)).all():
        (locations if kind == "l" else materials)[code] = row_id
    return locations, materials


# ---- CSV -------------------------------------------------------------------------------------------


def read_csv(lines: Iterable[str]) -> Iterator[StockRow]:
    """Rows of a ``location_code,material_code,on_hand[,safety_stock]`` file with their line numbers.

    A header that is missing or wrong raises INVALID_CSV (nothing is imported); a malformed row is
    yielded with its error so the rest of the file still imports.
    """
    reader = csv.reader(lines)
    header: list[str] | None = None
    for cells in reader:
        if any(c.strip() for c in cells):
            header = [c.strip().lower().lstrip("\ufeff") for c in cells]
            break
    if header is None:
        raise UserError("INVALID_CSV", "the file is empty; expected a header: " + ",".join(COLUMNS), "csv")
    missing = [c for c in REQUIRED if c not in header]
    unknown = sorted({c for c in header if c not in COLUMNS})
    if missing or unknown or len(set(header)) != len(header):
        raise UserError(
            "INVALID_CSV",
            f"line {reader.line_num}: the header must name {', '.join(REQUIRED)} and optionally"
            f" safety_stock, each once (missing: {missing or 'none'}; unknown: {unknown or 'none'})",
            "csv",
        )
    index = {name: i for i, name in enumerate(header)}
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield StockRow(start, errors=[UserError("INVALID_ROW", f"cannot read this line: {exc}")])
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield StockRow(
                start,
                errors=[UserError("INVALID_ROW", f"expected {len(header)} columns, found {len(cells)}")],
            )
            continue
        yield StockRow(
            start,
            location_code=cells[index["location_code"]],
            material_code=cells[index["material_code"]],
            on_hand=cells[index["on_hand"]],
            safety_stock=cells[index["safety_stock"]] if "safety_stock" in index else None,
        )


def describe(result: RowResult) -> Iterator[str]:
    """One CSV row's errors for people: ``line 7: on_hand cannot be negative (got -3) (INVALID_QUANTITY)``"""
    for exc in result.errors:
        yield f"line {result.line}: {exc.message} ({exc.code})"
