"""arq jobs of the inventory domain."""

from __future__ import annotations

from app.db import TenantRef, get_db
from app.inventory.sync import sync_pending


async def sync_channel_stock(ctx, *, outbox_id: int, tenant_id: int, schema_name: str) -> int:
    """Debounced channel sync for one tenant; running it twice publishes nothing new."""
    async with get_db().tenant_session(TenantRef(tenant_id, schema_name)) as session:
        return await sync_pending(session)
