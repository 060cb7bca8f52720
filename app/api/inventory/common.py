"""What every inventory mutation does: one tenant transaction, UserErrors as ``userErrors``."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from app.api.permissions import requires
from app.errors import UserError

WRITE = requires("inventory:write")


def actor(info: Info) -> str:
    return info.context.require_principal().actor


def clean_text(value: Any, field: str, max_len: int, code: str, *, required: bool = False) -> str:
    """Trimmed text without control characters (PostgreSQL text cannot hold NUL)."""
    text = value.strip() if isinstance(value, str) else ""
    if (required and not text) or len(text) > max_len or any(ord(ch) < 32 for ch in text):
        span = f"1-{max_len}" if required else f"at most {max_len}"
        raise UserError(code, f"{field} must be {span} characters without control characters", field)
    return text
