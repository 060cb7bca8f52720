"""Pieces every list filter uses: exact text matches and ``contains`` search patterns."""

from __future__ import annotations

from sqlalchemy import Select, false

from app.errors import UserError

MAX_SEARCH = 100


def text_is(query: Select, column, value: str | None) -> Select:
    """Equality on a text column; text PostgreSQL cannot hold (NUL) matches nothing instead of failing."""
    if value is None:
        return query
    return query.where(false() if "\x00" in value else column == value)


def contains(search: str) -> str:
    """An ILIKE pattern matching ``search`` anywhere (its wildcards taken literally)."""
    text = search.strip().replace("\x00", "")
    if len(text) > MAX_SEARCH:
        raise UserError("INVALID_SEARCH", f"search must be at most {MAX_SEARCH} characters", "search")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
