"""Path-aware reading of decoded JSON payloads.

``Node`` wraps one JSON object together with its path from the payload root ("payload.OrderItems[1]"), so
every accessor can raise an :class:`AdapterError` that says exactly which field is missing or malformed.
Empty strings count as absent: Chinese platform APIs return ``""`` for fields that have no value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.channels.adapters import _values as v
from app.channels.normalized import AdapterError

_MISSING = object()


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
    try:
        return json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise AdapterError(
            "$", f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


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
            raise self.error(key, f"{value!r} is not an identifier")
        out = str(value).strip()
        if not out:
            raise self.error(key, "is empty")
        return out

    def opt_ident(self, key: str) -> str | None:
        return None if self.raw(key) is None else self.ident(key)

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str | int | Decimal):
            raise self.error(key, f"{value!r} is not text")
        return v.text(value)

    def money(self, key: str, default: Decimal | None = None) -> Decimal:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        return v.money(value, self.at(key))

    def cents(self, key: str, default: Decimal | None = None) -> Decimal:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        return v.cents(value, self.at(key))

    def whole(self, key: str, *, minimum: int | None = None) -> int:
        return v.whole(self.need(key), self.at(key), minimum=minimum)

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
        raise self.error(key, f"{value!r} is not true/false")

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
