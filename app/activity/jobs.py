"""arq jobs of the activity domain (thin: they open a session and call the service)."""

from __future__ import annotations

from app.activity import service
from app.db import TenantRef, get_db


async def tenant_provisioned(ctx, *, outbox_id: int, tenant_id: int, schema_name: str, slug: str) -> str:
    """Record ``tenant.provisioned`` in the tenant's log and mark the tenant ready. Idempotent."""
    from tenants.service import mark_ready  # control plane; imported here to keep module import light

    db = get_db()
    async with db.tenant_session(TenantRef(tenant_id, schema_name)) as session:
        await service.record(
            session,
            "tenant.provisioned",
            data={"slug": slug},
            dedupe_key=f"tenant.provisioned:{tenant_id}",
        )
        await mark_ready(session, tenant_id)
    return "ok"
