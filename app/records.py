"""Helpers for the services that edit and list tenant records (catalog, channels), one way for all:
a flush that reports a lost unique race as a UserError, and the search box's filter.
"""

from __future__ import annotations

from sqlalchemy import Select, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import UserError
from app.fields import has_control

MAX_SEARCH = 100

Constraints = dict[str, tuple[str, str, str]]  # constraint name -> (code, message, field)


async def flush(session: AsyncSession, constraints: Constraints) -> None:
    """Flush, turning a unique violation (a concurrent writer won the race) into a UserError."""
    try:
        await session.flush()
    except IntegrityError as exc:
        for name, (code, message, field) in constraints.items():
            if name in str(exc.orig):
                raise UserError(code, message, field) from None
        raise


def search_filter(query: Select, text: str | None, *columns) -> Select:
    """Rows where any of ``columns`` contains ``text`` (case-insensitive, wildcards taken literally)."""
    if text is None or not text.strip():
        return query
    if len(text) > MAX_SEARCH or has_control(text):
        raise UserError(
            "INVALID_SEARCH",
            f"search must be at most {MAX_SEARCH} characters (no control characters)",
            "search",
        )
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return query.where(or_(*(c.ilike(f"%{escaped}%", escape="\\") for c in columns)))
