"""Field checks shared by the GraphQL mutations and the CSV imports, so both reject the same values
with the same words. Error fields are GraphQL input paths; CSV imports report the message with a line.

Text reaching PostgreSQL must not hold NUL (``text`` cannot store it, JSONB refuses ``\\u0000``), so
control characters are rejected here rather than failing as internal errors later.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from typing import Any

from app.errors import UserError

CODE_RE = re.compile(r"^[^\s;*]+$")  # ';' and '*' separate components in CSV: "MAT-1*1;MAT-2*3"
MAX_COMPONENTS = 100
MAX_COMPONENT_QTY = 10_000
MAX_MEASURE = 1_000_000_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_JSON = 4_000

Field = str | list[str]


def has_control(text: str) -> bool:
    """Control characters, and lone surrogates (valid in JSON escapes, not encodable as UTF-8)."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def clean_code(value: Any, field: Field = "code", *, max_len: int = 80) -> str:
    code = value.strip() if isinstance(value, str) else ""
    if not code or len(code) > max_len or not CODE_RE.match(code) or has_control(code):
        raise UserError(
            "INVALID_CODE", f"code must be 1-{max_len} characters without spaces, ';' or '*'", field
        )
    return code


def clean_text(value: Any, field: Field, what: str, max_len: int, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    bad_type = value is not None and not isinstance(value, str)
    if bad_type or (required and not text) or len(text) > max_len or has_control(text):
        span = f"1-{max_len}" if required else f"at most {max_len}"
        code = "INVALID_" + what.upper().replace(" ", "_")
        raise UserError(code, f"{what} must be {span} characters (no control characters)", field)
    return text


def clean_barcode(value: Any, field: Field = "barcode") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > 80 or not CODE_RE.match(text) or has_control(text):
        raise UserError("INVALID_BARCODE", "barcode must be 1-80 characters without spaces", field)
    return text


def clean_measure(value: Any, field: Field, what: str) -> int | None:
    """An optional whole number from 0 to MAX_MEASURE (weight in g, volume in cm3, thresholds)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MEASURE:
        raise UserError("INVALID_NUMBER", f"{what} must be a whole number from 0 to {MAX_MEASURE:,}", field)
    return value


def clean_flag(value: Any, field: Field, what: str) -> bool:
    if not isinstance(value, bool):
        raise UserError("INVALID_FLAG", f"{what} must be true or false", field)
    return value


def clean_date(value: Any, field: Field, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    raise UserError("INVALID_DATE", f"{what} must be a date (YYYY-MM-DD)", field)


def clean_attributes(value: Any, field: Field = "attributes") -> dict[str, Any]:
    """A flat JSON object of short keys and scalar values: {"colour": "red", "size": "M"}."""
    if value is None:
        return {}
    ok = isinstance(value, dict) and len(value) <= MAX_ATTRIBUTES
    if ok:
        ok = all(
            isinstance(k, str) and 0 < len(k) <= 50 and (v is None or isinstance(v, (str, int, float, bool)))
            for k, v in value.items()
        )
    if not ok:
        raise UserError(
            "INVALID_ATTRIBUTES",
            f"attributes must be a JSON object of at most {MAX_ATTRIBUTES} names (1-50 characters)"
            " with text, number, true/false or null values",
            field,
        )
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded) > MAX_ATTRIBUTES_JSON or "\\u0000" in encoded or has_control(encoded):
        raise UserError(
            "INVALID_ATTRIBUTES",
            f"attributes must be at most {MAX_ATTRIBUTES_JSON:,} characters of JSON without NUL characters",
            field,
        )
    return value


def clean_quantity(value: Any, field: Field) -> int:
    """A component quantity: a whole number from 1 to MAX_COMPONENT_QTY."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError("INVALID_QUANTITY", "quantity must be a whole number", field)
    if value < 1:
        raise UserError("INVALID_QUANTITY", f"quantity must be at least 1 (got {value})", field)
    if value > MAX_COMPONENT_QTY:
        raise UserError(
            "INVALID_QUANTITY", f"quantity must be at most {MAX_COMPONENT_QTY:,} (got {value:,})", field
        )
    return value
