"""Value normalisation shared by every adapter: money, quantities, times, phones, e-mails, discount
allocation.

Each function raises :class:`~app.channels.normalized.AdapterError` carrying the field path it was given,
so a bad value in a deeply nested payload is reported where it is. Amounts and quantities are bounded
here (``normalized.MAX_MONEY``, ``MAX_QUANTITY``), before any arithmetic: a 50-digit price or 1e308 is a
field error, not a decimal overflow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.channels.normalized import CENT, MAX_MONEY, MAX_QUANTITY, STATUSES, AdapterError, shown

ZERO = Decimal("0.00")

try:
    SHANGHAI: timezone | ZoneInfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # slim images without tzdata: China has had no DST since 1991
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def _bounded(amount: Decimal, value: object, path: str, signed: bool) -> Decimal:
    """``amount`` if it is within ±MAX_MONEY (and not negative unless ``signed``): checked before any
    quantize, which would overflow the decimal context on a huge value."""
    if abs(amount) > MAX_MONEY:
        raise AdapterError(path, f"{shown(value)} is over the largest amount {MAX_MONEY:f}")
    if amount < 0 and not signed:
        raise AdapterError(path, f"{shown(value)} is negative")
    return amount


def money(value: object, path: str, *, signed: bool = False) -> Decimal:
    """A decimal amount ("12.3", 12.3, 12, Decimal) as Decimal with two places, half-up; 0..MAX_MONEY
    (-MAX_MONEY.. when ``signed``, for platform adjustments that carry a sign)."""
    if isinstance(value, bool) or value is None:
        raise AdapterError(path, f"{shown(value)} is not an amount")
    if isinstance(value, float):
        value = repr(value)  # shortest round-trip text: 19.9 stays "19.9", not 19.899999…
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise AdapterError(path, f"{shown(value)} is not an amount") from None
    if not amount.is_finite():
        raise AdapterError(path, f"{shown(value)} is not an amount")
    return _bounded(amount, value, path, signed).quantize(CENT, rounding=ROUND_HALF_UP)


def exact_money(value: object, path: str) -> Decimal:
    """Like ``money`` but refuses to round: "19.999" is an error (for formats we define ourselves)."""
    amount = money(value, path)
    if isinstance(value, str | Decimal | float) and Decimal(str(value).strip()) != amount:
        raise AdapterError(path, f"{shown(value)} has more than two decimal places")
    return amount


def cents(value: object, path: str) -> Decimal:
    """An integer amount of minor units (fen, cents) as a two-place Decimal: 1990 -> 19.90."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AdapterError(path, f"{shown(value)} is not a whole number of cents")
    try:
        minor = int(str(value).strip())
    except ValueError:
        raise AdapterError(path, f"{shown(value)} is not a whole number of cents") from None
    return (_bounded(Decimal(minor) / 100, value, path, signed=False)).quantize(CENT)


def whole(value: object, path: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise AdapterError(path, f"{shown(value)} is not a whole number")
    if isinstance(value, Decimal | float):
        # 1e999999 would become a million-digit int, and inf or NaN cannot become one at all
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        value = int(value) if finite and abs(value) < 10**30 and value == int(value) else str(value)
    try:
        number = int(str(value).strip()) if isinstance(value, str) else value
    except ValueError:
        raise AdapterError(path, f"{shown(value)} is not a whole number") from None
    if not isinstance(number, int):
        raise AdapterError(path, f"{shown(value)} is not a whole number")
    if minimum is not None and number < minimum:
        raise AdapterError(path, f"{shown(number)} is below the minimum {minimum}")
    return number


def quantity(value: object, path: str, *, minimum: int = 1) -> int:
    """A line's quantity: a whole number from ``minimum`` (1; Amazon zeroes cancelled items) up to
    MAX_QUANTITY, so 2**63 is a field error and not an integer overflow in the database."""
    number = whole(value, path)
    if not minimum <= number <= MAX_QUANTITY:
        raise AdapterError(path, f"{shown(number)} is not between {minimum} and {MAX_QUANTITY}")
    return number


def iso_time(value: object, path: str, *, assume: timezone | ZoneInfo | None = None) -> datetime:
    """An ISO 8601 timestamp ("2024-06-18T10:15:00+08:00", "...Z") as aware UTC.

    A timestamp without an offset is an error unless ``assume`` names the zone it is written in.
    """
    if not isinstance(value, str) or not value.strip():
        raise AdapterError(path, f"{shown(value)} is not an ISO 8601 timestamp")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise AdapterError(path, f"{shown(value)} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        if assume is None:
            raise AdapterError(path, f"{shown(value)} has no UTC offset")
        parsed = parsed.replace(tzinfo=assume)
    return parsed.astimezone(UTC)


def local_time(value: object, path: str, zone: timezone | ZoneInfo = SHANGHAI) -> datetime:
    """A platform wall-clock time "yyyy-MM-dd HH:mm:ss" (Taobao TOP, JD JOS: Asia/Shanghai) as aware UTC."""
    if not isinstance(value, str):
        raise AdapterError(path, f"{shown(value)} is not a 'yyyy-MM-dd HH:mm:ss' time")
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise AdapterError(path, f"{shown(value)} is not a 'yyyy-MM-dd HH:mm:ss' time") from None
    return parsed.replace(tzinfo=zone).astimezone(UTC)


def unix_time(value: object, path: str) -> datetime:
    """Unix seconds (Douyin ``create_time``) as aware UTC; 0 is not a time."""
    seconds = whole(value, path, minimum=1)
    if seconds > 10**11:  # milliseconds sneak in from some gateways
        raise AdapterError(path, f"{seconds} looks like milliseconds, expected Unix seconds")
    return datetime.fromtimestamp(seconds, UTC)


_PHONE_JUNK = re.compile(r"[\s\-().·/]")
_CN_MOBILE = re.compile(r"^(?:\+?86|0086)(1\d{10})$")


def phone(value: object) -> str | None:
    """Digits only, CN country code dropped: "+86 138-0013-8000" -> "13800138000".

    Masked ("138****8000") and platform-encrypted values (Douyin "$$…$$", "##…##") pass unchanged: they are
    opaque tokens the ingest decrypts or keeps, and stripping characters would destroy them.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if "*" in text or text[:1] in ("$", "#"):
        return text
    compact = _PHONE_JUNK.sub("", text)
    cn = _CN_MOBILE.match(compact)
    if cn:
        return cn.group(1)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact


def email(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def text(value: object) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def check_status(status: str, raw: object, path: str) -> str:
    if status not in STATUSES:  # a bug in a status table, not in the payload
        raise AdapterError(path, f"maps {raw!r} to unknown status {status!r}")
    return status


def map_status(raw: object, table: dict[str, str], path: str) -> str:
    key = str(raw).strip() if raw is not None else ""
    if key not in table:
        known = ", ".join(sorted(table))
        raise AdapterError(path, f"unknown status {shown(raw)} (known: {known})")
    return check_status(table[key], raw, path)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` over ``weights`` proportionally, in whole cents, so the parts sum exactly to it.

    Largest-remainder rounding: every part is floored to the cent, then the cents left over go one each to
    the parts with the largest remainders (ties to the earliest line, so the result is deterministic).
    Zero weights get nothing unless every weight is zero, then the split is even.
    """
    if not weights:
        if total:
            raise AdapterError("lines", f"cannot allocate {total} over no lines")
        return []
    total_cents = int((total / CENT).to_integral_value(rounding=ROUND_HALF_UP))
    sign = -1 if total_cents < 0 else 1
    total_cents = abs(total_cents)
    if any(w < 0 for w in weights):
        raise AdapterError("lines", "cannot allocate over negative line amounts")
    basis = [Decimal(1)] * len(weights) if not any(weights) else [Decimal(w) for w in weights]
    weight_sum = sum(basis)
    exact = [Decimal(total_cents) * w / weight_sum for w in basis]
    parts = [int(e) for e in exact]  # floor (non-negative)
    leftover = total_cents - sum(parts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [(Decimal(sign * p) * CENT).quantize(CENT) for p in parts]
