"""Channel records: create, update, list (secrets, time zone, currency and carrier rule included)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import fields as f
from app.channels.models import PLATFORMS, Channel, new_webhook_secret
from app.errors import NotFound, UserError
from app.records import flush, search_filter

_CONSTRAINTS = {"uq_channels_code": ("DUPLICATE_CODE", "a channel with this code already exists", "code")}


def _clean_timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError("INVALID_TIMEZONE", f"{value!r} is not an IANA time zone", "timezone") from None
    return str(value)


def clean_channel(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "code":
            out[key] = f.clean_code(value, max_len=60)
        elif key == "name":
            out[key] = f.clean_text(value, "name", "name", 200)
        elif key == "platform":
            if value not in PLATFORMS:
                raise UserError(
                    "INVALID_PLATFORM", f"platform must be one of: {', '.join(PLATFORMS)}", "platform"
                )
            out[key] = value
        elif key == "is_core":
            out[key] = f.clean_flag(value, "isCore", "is core")
        elif key == "active":
            out[key] = f.clean_flag(value, "active", "active")
        elif key == "timezone":
            out[key] = _clean_timezone(value)
        elif key == "currency":
            if not (isinstance(value, str) and len(value) == 3 and value.isalpha()):
                raise UserError("INVALID_CURRENCY", "currency is an ISO 4217 code such as CNY", "currency")
            out[key] = value.upper()
        elif key == "default_carrier":
            out[key] = f.clean_text(value, "defaultCarrier", "carrier", 60, required=False) or None
        else:
            raise ValueError(f"not a channel field: {key}")
    if new:
        for key in ("code", "name", "platform"):
            if key not in out:
                raise UserError("REQUIRED", f"{key} is required", key)
    return out


async def _ensure_code_free(session: AsyncSession, code: str, exclude_id: int | None) -> None:
    query = select(Channel.id).where(Channel.code == code)
    if exclude_id is not None:
        query = query.where(Channel.id != exclude_id)
    if await session.scalar(query.limit(1)) is not None:
        raise UserError("DUPLICATE_CODE", f"a channel with code {code!r} already exists", "code")


async def create_channel(session: AsyncSession, values: dict[str, Any]) -> Channel:
    values = clean_channel(values, new=True)
    await _ensure_code_free(session, values["code"], None)
    row = Channel(**{"is_core": False, "active": True, **values})
    session.add(row)
    await flush(session, _CONSTRAINTS)
    return row


async def update_channel(session: AsyncSession, channel_id: int, values: dict[str, Any]) -> Channel:
    row = await session.get(Channel, channel_id)
    if row is None:
        raise NotFound("channel")
    values = clean_channel(values, new=False)
    if "code" in values:
        await _ensure_code_free(session, values["code"], row.id)
    for key, value in values.items():
        setattr(row, key, value)
    await flush(session, _CONSTRAINTS)
    return row


async def rotate_webhook_secret(session: AsyncSession, channel_id: int) -> Channel:
    """A new secret; the old one stops working at once."""
    row = await session.get(Channel, channel_id)
    if row is None:
        raise NotFound("channel")
    row.webhook_secret = new_webhook_secret()
    await session.flush()
    return row


def channels_query(
    search: str | None = None, platform: str | None = None, active: bool | None = None
) -> Select:
    query = search_filter(select(Channel), search, Channel.code, Channel.name)
    if platform is not None:
        query = query.where(Channel.platform == platform)
    if active is not None:
        query = query.where(Channel.active.is_(active))
    return query
