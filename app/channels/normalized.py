"""The unified order model every channel adapter produces (see ``app/channels/adapters``).

Adapters translate a platform payload into these frozen dataclasses; the ingest pipeline
(``orders.ingest``) only ever sees this shape. Conventions, checked in ``__post_init__`` so an adapter bug
cannot leak a half-normalised order:

* money is ``decimal.Decimal`` with exactly two places (``Decimal("12.30")``), never float;
* every datetime is timezone-aware and in UTC;
* ``status`` is one of :data:`STATUSES`, ``business_model`` one of :data:`BUSINESS_MODELS`; the platform's
  own status string is kept verbatim in ``raw_status``;
* a line's ``discount`` is the part of every discount (line-level and order-level) allocated to that line,
  so ``sum(line.discount) == amounts.discount`` and ``line.total == line gross - line.discount``;
* ``amounts.total`` is what the order is worth (subtotal - discount + shipping + tax where tax is not
  included in prices); ``amounts.paid`` is what the buyer has paid so far (0.00 before payment);
* ``fulfilled_by_platform`` is True when the platform ships the order from its own warehouses (Amazon
  AFN): the brand's stock is not touched and the order is not routed (``orders.ingest``).

Every value is bounded here, whatever adapter made it: at most :data:`MAX_LINES` lines, quantities
1..:data:`MAX_QUANTITY`, amounts 0..:data:`MAX_MONEY`, ids, titles, notes and other texts within their
lengths and free of control characters (PostgreSQL refuses NUL). Adapters check the same bounds while
reading (with the payload's own field paths); these checks are what no adapter can skip.

Anything an adapter cannot parse raises :class:`AdapterError`, whose message names the field path, so the
inbox row that stores the raw payload can say exactly what is wrong and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

STATUSES = (
    "pending_payment",
    "paid",
    "partially_shipped",
    "shipped",
    "completed",
    "cancelled",
    "refunded",
)
BUSINESS_MODELS = ("b2c", "o2o", "b2b", "distribution")
CENT = Decimal("0.01")

MAX_LINES = 500  # lines per order
MAX_QUANTITY = 100_000  # units per line
MAX_MONEY = Decimal(10) ** 10  # any one amount (the money columns hold 12 digits before the point)
MAX_ID = 120  # external order, line, item and SKU ids: their columns are varchar(120)
MAX_TITLE = 300  # a line's title: its column is varchar(300)
MAX_NOTE = 2000  # buyer and seller notes
MAX_TEXT = 500  # every other text
# C0 controls but tab, newline and carriage return; DEL; lone surrogates (not encodable as UTF-8).
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class AdapterError(Exception):
    """A payload that cannot be normalised: ``path`` says where, ``message`` says what is wrong.

    ``line`` is set for file imports (CSV), 1-based and counting the header line.
    """

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        self.path = path
        self.message = message
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        prefix = f"line {self.line}: " if self.line is not None else ""
        return f"{prefix}{where}{self.message}"

    def at_line(self, line: int) -> AdapterError:
        return AdapterError(self.path, self.message, line=line)


def shown(value: object, limit: int = 60) -> str:
    """The value as a message shows it (numbers as written, text quoted), cut to ``limit`` characters:
    error messages never echo a huge value back."""
    text = str(value) if isinstance(value, Decimal | int) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def check_text(path: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    """``value`` if it is at most ``limit`` characters and holds no control character, else an error."""
    if value is None:
        return None
    if len(value) > limit:
        raise AdapterError(path, f"is {len(value)} characters long, at most {limit} are allowed")
    refused = _REFUSED.search(value)
    if refused:
        raise AdapterError(path, f"contains the control character U+{ord(refused.group()):04X}")
    return value


def _check_money(path: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value.as_tuple().exponent != -2:
        raise AdapterError(path, f"{shown(value)} is not money with exactly two decimal places")
    if not 0 <= value <= MAX_MONEY:
        raise AdapterError(path, f"{value} is not between 0 and {MAX_MONEY:f}")


def _check_time(path: str, value: object, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, datetime) or value.utcoffset() != timedelta(0) or value.tzinfo is not UTC:
        raise AdapterError(path, f"{value!r} is not an aware UTC datetime")


@dataclass(frozen=True, slots=True)
class Buyer:
    platform_buyer_id: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    nick: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    name: str | None = None
    phone: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, e.g. "CN", "US"
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class Invoice:
    title: str
    tax_id: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class NormalizedLine:
    external_line_id: str
    external_item_id: str
    external_sku_id: str  # "" when the item has no SKUs (matches ChannelListing.external_sku_id)
    title: str
    quantity: int
    unit_price: Decimal
    discount: Decimal  # every discount allocated to this line
    total: Decimal  # line gross - discount
    is_gift: bool = False  # a free gift-with-purchase line (not "gift wrapped")

    def __post_init__(self) -> None:
        check_text("lines.external_line_id", self.external_line_id, MAX_ID)
        base = f"lines[{self.external_line_id}]"
        check_text(f"{base}.external_item_id", self.external_item_id, MAX_ID)
        check_text(f"{base}.external_sku_id", self.external_sku_id, MAX_ID)
        check_text(f"{base}.title", self.title, MAX_TITLE)
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool) or self.quantity <= 0:
            raise AdapterError(f"{base}.quantity", f"{shown(self.quantity)} is not a positive whole number")
        if self.quantity > MAX_QUANTITY:
            raise AdapterError(f"{base}.quantity", f"{self.quantity} is over {MAX_QUANTITY}")
        for name in ("unit_price", "discount", "total"):
            _check_money(f"{base}.{name}", getattr(self, name))


@dataclass(frozen=True, slots=True)
class Amounts:
    subtotal: Decimal  # sum of line gross (before discounts)
    shipping: Decimal
    discount: Decimal  # sum of line discounts
    tax: Decimal  # tax charged on top of prices (0.00 where prices include tax)
    total: Decimal
    paid: Decimal

    def __post_init__(self) -> None:
        for name in ("subtotal", "shipping", "discount", "tax", "total", "paid"):
            _check_money(f"amounts.{name}", getattr(self, name))


@dataclass(frozen=True, slots=True)
class NormalizedOrder:
    external_id: str
    channel_platform: str
    status: str
    placed_at: datetime
    paid_at: datetime | None
    updated_at: datetime  # the platform's last-modified time: newer payloads win, older ones are stale
    currency: str
    business_model: str
    buyer: Buyer
    address: Address
    lines: tuple[NormalizedLine, ...]
    amounts: Amounts
    requested_carrier: str | None = None
    promised_ship_by: datetime | None = None
    buyer_note: str | None = None
    seller_note: str | None = None
    invoice: Invoice | None = None
    raw_status: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())  # platform facts worth keeping, as (key, value)
    fulfilled_by_platform: bool = False  # the platform ships it from its own stock (e.g. Amazon AFN)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise AdapterError("external_id", "is empty")
        check_text("external_id", self.external_id, MAX_ID)
        if not isinstance(self.fulfilled_by_platform, bool):
            raise AdapterError(
                "fulfilled_by_platform", f"{shown(self.fulfilled_by_platform)} is not true/false"
            )
        if isinstance(self.lines, tuple) and len(self.lines) > MAX_LINES:
            raise AdapterError("lines", f"{len(self.lines)} lines, at most {MAX_LINES} per order")
        self._check_texts()
        if self.status not in STATUSES:
            raise AdapterError("status", f"{self.status!r} is not one of {', '.join(STATUSES)}")
        if self.business_model not in BUSINESS_MODELS:
            raise AdapterError("business_model", f"{self.business_model!r} is not one of {BUSINESS_MODELS}")
        if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isupper()):
            raise AdapterError("currency", f"{self.currency!r} is not an ISO 4217 code")
        _check_time("placed_at", self.placed_at)
        _check_time("updated_at", self.updated_at)
        _check_time("paid_at", self.paid_at, required=False)
        _check_time("promised_ship_by", self.promised_ship_by, required=False)
        if not isinstance(self.lines, tuple) or not all(isinstance(x, NormalizedLine) for x in self.lines):
            raise AdapterError("lines", "must be a tuple of NormalizedLine")
        if not self.lines and self.status != "cancelled":  # platforms zero the lines of cancelled orders
            raise AdapterError("lines", "an order needs at least one line")
        ids = [line.external_line_id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise AdapterError(
                "lines", f"duplicate line ids: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
            )
        line_discount = sum((line.discount for line in self.lines), Decimal("0.00"))
        if line_discount != self.amounts.discount:
            raise AdapterError(
                "amounts.discount",
                f"{self.amounts.discount} differs from the sum of line discounts {line_discount}",
            )

    def _check_texts(self) -> None:
        for part, value in (("buyer", self.buyer), ("address", self.address), ("invoice", self.invoice)):
            for f in fields(value) if value is not None else ():
                text = getattr(value, f.name)
                check_text(f"{part}.{f.name}", text if isinstance(text, str) else None)
        check_text("buyer_note", self.buyer_note, MAX_NOTE)
        check_text("seller_note", self.seller_note, MAX_NOTE)
        check_text("requested_carrier", self.requested_carrier)
        check_text("raw_status", self.raw_status)
        for key, value in self.extra:
            check_text(f"extra.{check_text('extra', key)}", value)

    def supersedes(self, other: NormalizedOrder) -> bool:
        """True when this payload is a newer version of ``other`` (same order, later ``updated_at``)."""
        return (
            self.channel_platform == other.channel_platform
            and self.external_id == other.external_id
            and self.updated_at > other.updated_at
        )


@dataclass(frozen=True, slots=True)
class NormalizedCancel:
    external_id: str
    reason: str | None
    cancelled_at: datetime

    def __post_init__(self) -> None:
        if not self.external_id:
            raise AdapterError("external_id", "is empty")
        check_text("external_id", self.external_id, MAX_ID)
        check_text("reason", self.reason)
        _check_time("cancelled_at", self.cancelled_at)


@dataclass(frozen=True, slots=True)
class NormalizedRefund:
    external_id: str  # the order
    external_refund_id: str
    line_ids: tuple[str, ...]  # external line ids refunded; () = the order as a whole
    amount: Decimal
    reason: str | None
    refunded_at: datetime

    def __post_init__(self) -> None:
        if not self.external_id:
            raise AdapterError("external_id", "is empty")
        if not self.external_refund_id:
            raise AdapterError("external_refund_id", "is empty")
        check_text("external_id", self.external_id, MAX_ID)
        check_text("external_refund_id", self.external_refund_id, MAX_TEXT)
        for line_id in self.line_ids:
            check_text("line_ids", line_id, MAX_ID)
        check_text("reason", self.reason)
        _check_money("amount", self.amount)
        _check_time("refunded_at", self.refunded_at)
