"""``oms``: dev | serve | migrate | worker | tenant create|list|drop | seed | import stock."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from tqdm import tqdm

from app.config import get_settings


def _db():
    from app.db import init_db

    return init_db()


async def _migrate() -> int:
    from app.db import close_db
    from app.migrate import migrate_all

    try:
        report = await migrate_all(
            _db(), progress=lambda total: tqdm(total=total, desc="tenants", unit="schema", disable=total == 0)
        )
    finally:
        await close_db()
    print(f"control schema at head; {len(report.upgraded)} tenant schema(s) at head")
    for schema, error in report.failed.items():
        print(f"FAILED {schema}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


async def _tenant_create(args) -> int:
    from app.db import close_db
    from app.errors import UserError
    from tenants import service

    password = args.password or os.environ.get("OMS_OWNER_PASSWORD") or getpass.getpass("owner password: ")
    try:
        tenant, _ = await service.signup(
            _db(),
            organization=args.organization or args.name or args.slug,
            tenant_name=args.name or args.slug,
            slug=args.slug,
            email=args.owner_email,
            password=password,
        )
    except UserError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        await close_db()
    print(f"created tenant {tenant.slug} (schema {tenant.schema_name}), owner {args.owner_email}")
    return 0


async def _tenant_list() -> int:
    from app.db import close_db
    from tenants import service

    try:
        async with _db().control_session() as session:
            tenants = await service.list_tenants(session)
    finally:
        await close_db()
    print(f"{'id':>5}  {'slug':<30} {'schema':<34} {'status':<12} created")
    for t in tenants:
        print(
            f"{t.id:>5}  {t.slug:<30} {t.schema_name:<34} {t.status.value:<12} {t.created_at:%Y-%m-%d %H:%M}"
        )
    return 0


async def _tenant_drop(args) -> int:
    from app.db import close_db
    from app.errors import UserError
    from tenants import service

    try:
        await service.drop_tenant(_db(), args.slug)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await close_db()
    print(f"dropped tenant {args.slug}")
    return 0


async def _seed() -> int:
    from app.db import close_db
    from app.seed import seed_demo

    try:
        print(await seed_demo(_db()))
    finally:
        await close_db()
    return 0


def _import_stock(args) -> int:
    """Stock import from a CSV file: chunked, one transaction per chunk, a progress bar, a summary.
    An operator command, so the tenant comes from the slug (looked up in the control schema)."""
    import csv

    try:
        with open(args.file, newline="", encoding="utf-8-sig") as f:
            try:
                total = max(sum(1 for cells in csv.reader(f) if any(c.strip() for c in cells)) - 1, 0)
            except csv.Error:
                total = None
            f.seek(0)
            return asyncio.run(_import_stock_rows(args, f, total))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2


async def _import_stock_rows(args, lines, total: int | None) -> int:
    from app.db import TenantRef, close_db, schema_for_slug
    from app.errors import UserError
    from app.inventory import bulk
    from tenants import service

    db = _db()
    try:
        async with db.control_session() as session:
            tenant = await service.get_tenant(session, args.tenant)
        ref = TenantRef(tenant.id, schema_for_slug(tenant.slug))
        with tqdm(total=total, desc="stock", unit="row") as bar:
            summary = await bulk.import_rows(
                lambda: db.tenant_session(ref),
                bulk.read_csv(lines),
                actor="cli",
                chunk_size=args.chunk_size,
                on_chunk=lambda results: bar.update(len(results)),
            )
    except UserError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        await close_db()
    for result in summary.failed:
        for line in bulk.describe(result):
            print(line, file=sys.stderr)
    print(
        f"{summary.total} rows: {summary.applied} applied, {summary.unchanged} unchanged,"
        f" {len(summary.failed)} failed; ledger reference {summary.reference}"
    )
    return 1 if summary.failed else 0


def _serve(args) -> int:
    import uvicorn

    from app.logs import configure_logging

    configure_logging()
    uvicorn.run("app.asgi:create_app", factory=True, host=args.host, port=args.port, log_config=None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oms", description="Order hub: multi-tenant order management")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole stack locally (embedded PostgreSQL + Redis by default)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    sub.add_parser("migrate", help="upgrade the control schema, then every tenant schema")
    worker = sub.add_parser("worker", help="run the arq worker (with the outbox relay)")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    sub.add_parser("seed", help="create the demo tenant if it does not exist")

    tenant = sub.add_parser("tenant", help="manage tenants")
    tsub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tsub.add_parser("create", help="create a tenant with its schema and owner")
    create.add_argument("slug")
    create.add_argument("--name")
    create.add_argument("--organization")
    create.add_argument("--owner-email", required=True)
    create.add_argument("--password", help="owner password (else OMS_OWNER_PASSWORD, else prompted)")
    tsub.add_parser("list", help="list tenants")
    drop = tsub.add_parser("drop", help="drop a tenant and its schema")
    drop.add_argument("slug")
    drop.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    imports = sub.add_parser("import", help="import data from files")
    isub = imports.add_subparsers(dest="import_command", required=True)
    stock = isub.add_parser(
        "stock", help="set stock from a CSV: location_code,material_code,on_hand[,safety_stock]"
    )
    stock.add_argument("file")
    stock.add_argument("--tenant", required=True, help="tenant slug")
    stock.add_argument("--chunk-size", type=int, default=500, help="rows per transaction (default 500)")

    args = parser.parse_args(argv)
    if args.command == "dev":
        from app.devserver import run_dev

        return run_dev(args.host, args.port)
    if not get_settings().database_url:
        parser.error("OMS_DATABASE_URL is not set (or use `oms dev`, which starts embedded servers)")
    if args.command == "serve":
        return _serve(args)
    if args.command == "worker":
        from app.worker import run_worker

        run_worker(burst=args.burst)
        return 0
    if args.command == "migrate":
        return asyncio.run(_migrate())
    if args.command == "seed":
        return asyncio.run(_seed())
    if args.command == "import":
        if args.chunk_size < 1:
            parser.error("--chunk-size must be at least 1")
        return _import_stock(args)
    if args.tenant_command == "create":
        return asyncio.run(_tenant_create(args))
    if args.tenant_command == "list":
        return asyncio.run(_tenant_list())
    if not args.yes:
        answer = input(f"Drop tenant {args.slug!r} and ALL its data? Type the slug to confirm: ")
        if answer.strip() != args.slug:
            print("aborted")
            return 1
    return asyncio.run(_tenant_drop(args))


if __name__ == "__main__":
    sys.exit(main())
