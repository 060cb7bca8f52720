"""The contract every channel adapter fulfils.

An adapter is pure translation: payload in, normalised dataclass out (or the request body a platform API
expects). No database, no network, no clock: the same payload always gives the same result, so the inbox
can replay a stored payload at any time. Payloads are ``bytes``/``str`` (as received) or an
already-decoded ``dict``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from app.channels.normalized import AdapterError, NormalizedCancel, NormalizedOrder, NormalizedRefund

Raw = bytes | str | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ListingRef:
    """Which platform listing a stock figure is for (``catalog.ChannelListing``'s external ids).

    Some inventory APIs key stock by other ids as well: Shopify by inventory item and location.
    """

    external_item_id: str
    external_sku_id: str = ""
    external_inventory_id: str | None = None
    external_location_id: str | None = None


class ChannelAdapter(abc.ABC):
    """One platform's payload formats. Subclasses live one per module in this package."""

    platform: str  # a class attribute, or set per instance when one module serves several platforms
    #: the platform operation ``render_inventory_update`` builds a body for ("taobao.item.quantity.update")
    inventory_api: ClassVar[str]
    #: header carrying the platform's own webhook signature, or None when the channel-level HMAC applies
    signature_header: ClassVar[str | None] = None

    @abc.abstractmethod
    def parse_order(self, raw: Raw) -> NormalizedOrder: ...

    def parse_cancel(self, raw: Raw) -> NormalizedCancel:
        raise AdapterError("$", f"{self.platform} delivers no cancellation payloads")

    def parse_refund(self, raw: Raw) -> NormalizedRefund:
        raise AdapterError("$", f"{self.platform} delivers no refund payloads")

    @abc.abstractmethod
    def render_inventory_update(self, listing: ListingRef, quantity: int) -> dict[str, Any]: ...

    def verify_signature(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        raise NotImplementedError(f"{self.platform} has no platform signature scheme; use the channel HMAC")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} platform={self.platform!r}>"


def check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValueError(f"stock quantity must be a whole number >= 0, got {quantity!r}")
    return quantity


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
