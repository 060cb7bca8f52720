"""Demo data for `oms dev` / `oms seed`: a demo tenant with a known login (dev only)."""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database
from tenants import service
from tenants.models import Tenant

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"


async def seed_demo(db: Database) -> str:
    async with db.control_session() as session:
        exists = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
    if not exists:
        await service.signup(
            db,
            organization="Demo Group",
            tenant_name="Demo Brand",
            slug=DEMO_SLUG,
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            name="Demo Owner",
        )
        return f"created demo tenant {DEMO_SLUG!r}: {DEMO_EMAIL} / {DEMO_PASSWORD}"
    return f"demo tenant {DEMO_SLUG!r} already exists: {DEMO_EMAIL} / {DEMO_PASSWORD}"
