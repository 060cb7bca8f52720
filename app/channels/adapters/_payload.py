"""Path-aware reading of decoded JSON payloads.

``Node`` wraps one JSON object together with its path from the payload root ("payload.OrderItems[1]"), so
every accessor can raise an :class:`AdapterError` that says exactly which field is missing or malformed.
Empty strings count as absent: Chinese platform APIs return ``""`` for fields that have no value.
Identifiers and texts are bounded as they are read (``normalized.check_text``), and the JSON decoder
refuses documents nested deeper than ``MAX_DEPTH``, measured without recursion before it runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from app.channels.adapters import _values as v
from app.channels.normalized import MAX_ID, MAX_TEXT, AdapterError, check_text, shown

MAX_DEPTH = 64  # nested arrays and objects in one JSON document

# A JSON string, or an unterminated one up to the end (where json stops as well). Possessive, so a run
# of quotes and backslashes is scanned once, not once per quote.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in JSON ``text`` nest deeper than ``limit``: counted over the text's
    brackets outside strings, without recursion (a 100,000-deep document is measured, not recursed)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def loads(text: str, what: str = "payload", parse_float: Any = Decimal) -> Any:
    """``json.loads`` with Decimal floats, bounded: too deep, NaN/Infinity or a number too long to read
    is an :class:`AdapterError`, like any other invalid JSON."""
    if too_deep(text):
        raise AdapterError("$", f"{what} is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_float=parse_float, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise AdapterError(
            "$", f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _Constant as exc:
        raise AdapterError("$", f"{what} is not valid JSON: {exc} is not a number") from None
    except ValueError:  # an integer of more digits than Python converts
        raise AdapterError("$", f"{what} is not valid JSON: a number is too long") from None


def decode(raw: bytes | str | Mapping[str, Any], what: str = "payload") -> Any:
    """JSON text (bytes/str) or an already-decoded mapping. Floats are read as Decimal, never binary."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AdapterError("$", f"{what} is not UTF-8 text (byte {exc.start})") from None
    if not isinstance(raw, str):
        raise AdapterError("$", f"{what} must be JSON text or an object, got {type(raw).__name__}")
    return loads(raw, what)


class Node:
    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise AdapterError(path or "$", f"expected an object, got {_kind(data)}")
        self.data = data
        self.path = path

    @classmethod
    def load(cls, raw: bytes | str | Mapping[str, Any], what: str = "payload") -> Node:
        return cls(decode(raw, what))

    # -- structure -------------------------------------------------------------------------------------

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> AdapterError:
        return AdapterError(self.at(key), message)

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    def raw(self, key: str) -> Any:
        value = self.data.get(key)
        return None if value == "" else value

    def need(self, key: str) -> Any:
        value = self.raw(key)
        if value is None:
            raise self.error(key, "is required" if key not in self.data else "is empty")
        return value

    def obj(self, key: str) -> Node:
        return Node(self.need(key), self.at(key))

    def opt_obj(self, key: str) -> Node | None:
        value = self.raw(key)
        return None if value is None else Node(value, self.at(key))

    def objs(self, key: str, *, required: bool = True) -> list[Node]:
        value = self.need(key) if required else (self.raw(key) or [])
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_kind(value)}")
        return [Node(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    # -- scalars ---------------------------------------------------------------------------------------

    def ident(self, key: str) -> str:
        """A required identifier: numbers become their decimal text (Taobao tid, Shopify id)."""
        value = self.need(key)
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self.error(key, f"{shown(value)} is not an identifier")
        out = str(value).strip()
        if not out:
            raise self.error(key, "is empty")
        return check_text(self.at(key), out, MAX_ID)

    def opt_ident(self, key: str) -> str | None:
        return None if self.raw(key) is None else self.ident(key)

    def text(self, key: str, limit: int = MAX_TEXT) -> str | None:
        """Text of at most ``limit`` characters (``normalized.MAX_NOTE`` for notes, ``MAX_TITLE`` for
        titles), without control characters."""
        value = self.raw(key)
        if value is not None and not isinstance(value, str | int | Decimal):
            raise self.error(key, f"{shown(value)} is not text")
        return check_text(self.at(key), v.text(value), limit)

    def money(self, key: str, default: Decimal | None = None, *, signed: bool = False) -> Decimal:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        return v.money(value, self.at(key), signed=signed)

    def cents(self, key: str, default: Decimal | None = None) -> Decimal:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        return v.cents(value, self.at(key))

    def whole(self, key: str, *, minimum: int | None = None) -> int:
        return v.whole(self.need(key), self.at(key), minimum=minimum)

    def quantity(self, key: str, *, minimum: int = 1) -> int:
        return v.quantity(self.need(key), self.at(key), minimum=minimum)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "1", "yes"):
            return True
        if str(value).strip().lower() in ("false", "0", "no"):
            return False
        raise self.error(key, f"{shown(value)} is not true/false")

    def iso_time(
        self, key: str, *, required: bool = True, assume: timezone | ZoneInfo | None = None
    ) -> datetime | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        return v.iso_time(value, self.at(key), assume=assume)

    def local_time(self, key: str, *, required: bool = True) -> datetime | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        return v.local_time(value, self.at(key))

    def unix_time(self, key: str, *, required: bool = True) -> datetime | None:
        value = self.raw(key)
        if value is None or value == 0:
            if required:
                raise self.error(key, "is required")
            return None
        return v.unix_time(value, self.at(key))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
