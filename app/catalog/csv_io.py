"""CSV as brands' spreadsheets write it: reading with line numbers, typed cells, writing.

Problems with the file as a whole (too big, missing columns) raise UserError; problems with one row
become a ``RowError`` with the row's first physical line (quoted cells may span lines), so the good
rows can still be imported.

Cells starting with ``= + - @`` are written with a leading apostrophe, so a spreadsheet opening an
export does not run a channel's listing title as a formula; reading strips that apostrophe again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.errors import UserError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_REPORTED_ERRORS = 1_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class CellError(ValueError):
    """A cell that cannot be read; the message names the column."""


@dataclass
class RowError:
    line: int
    message: str
    code: str = "INVALID_ROW"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    def fail(self, line: int, message: str, code: str = "INVALID_ROW") -> None:
        self.errors.append(RowError(line, message, code))


@dataclass
class Row:
    line: int
    cells: dict[str, str]


def read(
    text: str, *, required: Iterable[str], optional: Iterable[str]
) -> tuple[list[str], list[Row], ImportResult]:
    """Header and rows (blank lines skipped); ragged rows are already reported in the result."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    if size > MAX_BYTES:
        raise UserError("CSV_TOO_LARGE", f"the file must be at most {MAX_BYTES // (1024 * 1024)} MB", "csv")
    if size < 0 or "\x00" in text:
        raise UserError(
            "CSV_MALFORMED", "the file is not UTF-8 text (was a spreadsheet uploaded as is?)", "csv"
        )
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    result = ImportResult()
    rows: list[Row] = []
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        _check_header(header, list(required), list(optional))
        while True:
            line = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                break
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                result.fail(line, f"expected {len(header)} cells, found {len(record)}", "RAGGED_ROW")
            elif len(rows) >= MAX_ROWS:
                raise UserError("CSV_TOO_LARGE", f"the file must have at most {MAX_ROWS:,} rows", "csv")
            else:
                rows.append(
                    Row(line, {name: _unescape(cell) for name, cell in zip(header, record, strict=True)})
                )
    except csv.Error as exc:
        raise UserError("CSV_MALFORMED", f"line {reader.line_num}: {exc}", "csv") from None
    return header, rows, result


def _check_header(header: list[str], required: list[str], optional: list[str]) -> None:
    if not header or not any(header):
        raise UserError("CSV_EMPTY", f"the first line must name the columns: {', '.join(required)}", "csv")
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in required and name not in optional]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if missing:
        raise UserError("CSV_MISSING_COLUMNS", f"missing column(s): {', '.join(missing)}", "csv")
    if unknown:
        known = ", ".join(required + optional)
        raise UserError(
            "CSV_UNKNOWN_COLUMNS", f"unknown column(s): {', '.join(unknown)} (known: {known})", "csv"
        )
    if repeated:
        raise UserError("CSV_REPEATED_COLUMNS", f"repeated column(s): {', '.join(repeated)}", "csv")


def _unescape(cell: str) -> str:
    cell = cell.strip()
    if cell.startswith("'") and cell[1:2] in _FORMULA_START and cell[1:2]:
        return cell[1:]
    return cell


def _escape(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


# ---- cells -------------------------------------------------------------------------------------------


def as_bool(cell: str, column: str, *, default: bool) -> bool:
    value = cell.lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CellError(f"{column}: {cell!r} is not true/false (use true, false, yes, no, 1 or 0)")


def as_int(cell: str, column: str) -> int | None:
    if not cell:
        return None
    if not _INT_RE.match(cell):
        raise CellError(f"{column}: {cell!r} is not a whole number")
    return int(cell)


def as_date(cell: str, column: str) -> date | None:
    if not cell:
        return None
    try:
        return date.fromisoformat(cell)
    except ValueError:
        raise CellError(f"{column}: {cell!r} is not a date (YYYY-MM-DD)") from None


def as_json_object(cell: str, column: str) -> Any:
    if not cell:
        return {}
    try:
        return json.loads(cell)
    except ValueError:
        raise CellError(f'{column}: not valid JSON (write e.g. {{"colour": "red"}})') from None


# ---- writing -----------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else ""
    return str(value)


def write(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_escape(cell(value)) for value in row])
    return out.getvalue()
