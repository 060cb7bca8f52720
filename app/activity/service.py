"""Recording and listing activity events (plain async functions taking a tenant session)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import ActivityEvent


async def record(
    session: AsyncSession,
    kind: str,
    *,
    actor: str = "system",
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Append an event; with a dedupe_key, a second call is a no-op and returns None."""
    stmt = (
        insert(ActivityEvent)
        .values(kind=kind, actor=actor, data=data or {}, dedupe_key=dedupe_key)
        .on_conflict_do_nothing(index_elements=[ActivityEvent.dedupe_key])
        .returning(ActivityEvent.id)
    )
    return await session.scalar(stmt)


async def get(session: AsyncSession, event_id: int) -> ActivityEvent | None:
    return await session.get(ActivityEvent, event_id)


async def by_ids(session: AsyncSession, ids: list[int]) -> list[ActivityEvent]:
    return list((await session.scalars(select(ActivityEvent).where(ActivityEvent.id.in_(ids)))).all())


def list_query(kind: str | None = None):
    """The base query for listing, newest first; callers paginate it."""
    query = select(ActivityEvent)
    if kind:
        query = query.where(ActivityEvent.kind == kind)
    return query
