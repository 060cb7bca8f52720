"""Our runner for the two alembic trees: control once, tenant once per tenant schema.

Alembic is driven on a connection we pass in (``config.attributes``), so provisioning can run the
tenant tree inside the signup transaction, and ``oms migrate`` can report per tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import PROJECT_ROOT
from app.db import CONTROL_SCHEMA, Database, checked_schema, quote_ident


def _config(tree: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"), ini_section=tree)
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations" / tree))
    return cfg


@lru_cache
def _scripts(tree: str) -> ScriptDirectory:
    """Parsed once per process: provisioning a tenant must not re-read every revision file."""
    return ScriptDirectory.from_config(_config(tree))


def head(tree: str) -> str:
    return _scripts(tree).get_current_head()


def _upgrade(sync_conn: Connection, tree: str, schema: str) -> None:
    # A fresh Config per run: attributes carry this connection, and runs may interleave on the loop.
    cfg = _config(tree)
    cfg.attributes["connection"] = sync_conn
    cfg.attributes["schema"] = checked_schema(schema)
    script = _scripts(tree)
    with EnvironmentContext(
        cfg, script, fn=lambda rev, _ctx: script._upgrade_revs("head", rev), destination_rev="head"
    ):
        script.run_env()


def _current(sync_conn: Connection, schema: str) -> str | None:
    ctx = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema})
    return ctx.get_current_revision()


async def upgrade_control(conn: AsyncConnection) -> None:
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(CONTROL_SCHEMA)}"))
    await conn.run_sync(_upgrade, "control", CONTROL_SCHEMA)


async def upgrade_tenant(conn: AsyncConnection, schema: str) -> None:
    """Create (if needed) and upgrade one tenant schema on the caller's connection/transaction."""
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"))
    if await conn.run_sync(_current, schema) != head("tenant"):
        await conn.run_sync(_upgrade, "tenant", schema)


@dataclass
class MigrateReport:
    upgraded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def migrate_all(db: Database, progress: Callable[[int], Any] | None = None) -> MigrateReport:
    """Upgrade control, then every tenant, each tenant in its own transaction.

    A failing tenant is reported and the others still migrate; running it again is a no-op.
    ``progress(total)`` may return a progress bar (anything with ``update(n)``).
    """
    from tenants.models import Tenant

    async with db.engine.begin() as conn:
        await upgrade_control(conn)
    async with db.engine.connect() as conn:
        schemas = (await conn.scalars(select(Tenant.schema_name).order_by(Tenant.id))).all()
    report = MigrateReport()
    bar = progress(len(schemas)) if progress else None
    for schema in schemas:
        try:
            async with db.engine.begin() as conn:
                await upgrade_tenant(conn, schema)
            report.upgraded.append(schema)
        except Exception as exc:  # keep going: one broken tenant must not block the fleet
            report.failed[schema] = f"{type(exc).__name__}: {exc}"
        if bar is not None:
            bar.update(1)
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    return report
