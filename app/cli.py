"""``oms``: dev | serve | migrate | worker | tenant create|list|drop | seed."""

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
