"""Recording usage inside the caller's transaction (idempotent on the reference)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import UsageEvent


async def record(
    session: AsyncSession, *, tenant_id: int, kind: str, reference: str, quantity: int = 1
) -> None:
    await session.execute(
        insert(UsageEvent)
        .values(tenant_id=tenant_id, kind=kind, reference=reference, quantity=quantity)
        .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "reference"])
    )
