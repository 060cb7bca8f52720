"""What follows a change of a material's network availability: low-stock alerts and channel sync.

Both are recorded in the same transaction as the change. The sync is debounced: the first change of a
material since the last sync run inserts its request row and enqueues one delayed job; later changes
only touch the row, which also makes them wait for a running sync so it never reads a stale level.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material
from app.db import session_tenant
from app.inventory.models import StockAlert, SyncRequest
from app.outbox import enqueue

SYNC_DEBOUNCE = timedelta(seconds=2)


async def stock_changed(session: AsyncSession, material_id: int, available: int, delta: int) -> None:
    """``available`` is the network availability after the change, ``delta`` how much it moved."""
    if delta < 0:
        threshold = await session.scalar(
            select(Material.low_stock_threshold).where(Material.id == material_id)
        )
        if threshold is not None and available < threshold <= available - delta:
            session.add(StockAlert(material_id=material_id, available=available, threshold=threshold))
    await request_sync(session, [material_id])


async def request_sync(session: AsyncSession, material_ids: list[int]) -> None:
    if not material_ids:
        return
    stmt = insert(SyncRequest).values([{"material_id": m} for m in sorted(set(material_ids))])
    stmt = stmt.on_conflict_do_update(
        index_elements=[SyncRequest.material_id], set_={"requested_at": func.now()}
    ).returning(literal_column("xmax = 0"))
    inserted = any((await session.scalars(stmt)).all())
    if inserted:
        tenant = session_tenant(session)
        await enqueue(
            session,
            "sync_channel_stock",
            tenant_id=tenant.id,
            delay=SYNC_DEBOUNCE,
            schema_name=tenant.schema_name,
        )
