"""The `oms` command line, run as a user would: a real process against the test database."""

from __future__ import annotations

from sqlalchemy import text

from tests.cli_support import oms


async def test_tenant_create_list_migrate_drop(db):
    created = oms(
        "tenant", "create", "cli_brand", "--name", "CLI Brand", "--owner-email", "owner@cli.example.com"
    )
    assert created.returncode == 0, created.stderr
    assert "t_cli_brand" in created.stdout
    listed = oms("tenant", "list")
    assert "cli_brand" in listed.stdout and "t_cli_brand" in listed.stdout

    first = oms("migrate")
    assert first.returncode == 0, first.stderr
    assert "tenant schema(s) at head" in first.stdout
    again = oms("migrate")  # safe to re-run
    assert again.returncode == 0, again.stderr

    refused = oms("tenant", "drop", "cli_brand", input="wrong\n")
    assert refused.returncode == 1 and "aborted" in refused.stdout
    dropped = oms("tenant", "drop", "cli_brand", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = 't_cli_brand'")) == 0
    assert "cli_brand" not in oms("tenant", "list").stdout


async def test_tenant_create_rejects_bad_slug_with_a_clear_message():
    bad = oms("tenant", "create", "a;drop schema control", "--owner-email", "x@example.com")
    assert bad.returncode == 2
    assert "slug must be" in bad.stderr


async def test_migrate_reports_a_broken_tenant_and_still_migrates_the_others(db):
    for slug in ("mig_ok_one", "mig_broken"):
        assert oms("tenant", "create", slug, "--owner-email", f"o@{slug}.example.com").returncode == 0
    # Break one tenant (forget its version, so alembic replays revisions onto existing tables) and
    # empty the other (so it has real work to do).
    async with db.engine.begin() as conn:
        await conn.execute(text('DROP TABLE "t_mig_broken".alembic_version'))
        await conn.execute(text('DROP SCHEMA "t_mig_ok_one" CASCADE'))
        await conn.execute(text('CREATE SCHEMA "t_mig_ok_one"'))
    result = oms("migrate")
    assert result.returncode == 1
    assert "FAILED t_mig_broken" in result.stderr
    async with db.engine.connect() as conn:
        # The emptied tenant was migrated back to head despite the broken one.
        assert await conn.scalar(text('SELECT count(*) FROM "t_mig_ok_one".activity_events')) == 0
    for slug in ("mig_ok_one", "mig_broken"):
        assert oms("tenant", "drop", slug, "--yes").returncode == 0
