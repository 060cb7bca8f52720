"""``oms``: dev | serve | migrate | worker | tenant create|list|drop | seed | import stock|orders |
inbox list|replay | routing simulate."""

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


async def _tenant_ref(db, slug: str):
    """Operator commands name the tenant by slug (looked up in the control schema)."""
    from tenants import service

    async with db.control_session() as session:
        return service.tenant_ref(await service.get_tenant(session, slug))


def _import_orders(args) -> int:
    """Orders from a CSV file of order lines: stored in the inbox, then ingested with a progress bar."""
    import json

    try:
        with open(args.file, "rb") as f:
            data = f.read()
        mapping = None
        if args.mapping:
            with open(args.mapping, encoding="utf-8") as f:
                mapping = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {getattr(exc, 'filename', None) or args.mapping}: {exc}", file=sys.stderr)
        return 2
    if mapping is not None and not (
        isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())
    ):
        print('error: the mapping must be a JSON object of {"field": "column"}', file=sys.stderr)
        return 2
    return asyncio.run(_import_orders_file(args, data, mapping))


async def _import_orders_file(args, data: bytes, mapping: dict | None) -> int:
    from app.db import close_db
    from app.errors import UserError
    from app.orders.csv_import import describe, import_orders_csv

    db = _db()
    try:
        ref = await _tenant_ref(db, args.tenant)
        report = await import_orders_csv(
            db,
            ref,
            args.channel,
            data,
            mapping,
            progress=lambda total: tqdm(total=total, desc="orders", unit="order"),
            actor="cli",
        )
    except UserError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        await close_db()
    *bad, summary = describe(report)
    for line in bad:
        print(line, file=sys.stderr)
    print(f"{summary}; inbox message {report.inbox_id} ({report.status})")
    return 1 if report.errors else 0


async def _inbox(args) -> int:
    from app import inbox_replay
    from app.db import close_db
    from app.errors import UserError

    db = _db()
    try:
        ref = await _tenant_ref(db, args.tenant)
        if args.inbox_command == "replay":
            result = await inbox_replay.replay(db, ref, args.id, actor="cli")
            order = f" order {result.number} ({result.outcome})" if result.number else ""
            detail = result.error or result.note or result.outcome or ""
            print(f"inbox message {result.inbox_id}: {result.status}{order} {detail}".rstrip())
            return 0 if result.ok else 1
        rows = await inbox_replay.list_inbox(db, ref.id, status=args.status, limit=args.limit)
    except UserError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        await close_db()
    print(f"{'id':>8}  {'received':<16} {'source':<16} {'status':<10} {'tries':>5}  error")
    for m in rows:
        error = (m.error or "").replace("\n", " ")
        error = error if len(error) <= 100 else error[:99] + "…"
        print(
            f"{m.id:>8}  {m.received_at:%Y-%m-%d %H:%M} {m.source:<16} {m.status.value:<10}"
            f" {m.attempts:>5}  {error}"
        )
    return 0


def _weights(text: str) -> dict[str, float]:
    """``sla=0.75,distance=0.2`` -> {"sla": 0.75, "distance": 0.2} (ValueError when malformed)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not factor=weight")
        out[name.strip()] = float(value)
    return out


async def _routing_simulate(args) -> int:
    """Re-run the tenant's last routing decisions under changed weights/mode and print the deltas."""
    from app.db import close_db
    from app.errors import UserError
    from app.routing import policies

    changes: dict = {}
    try:
        if args.weights:
            changes["weights"] = _weights(args.weights)
    except ValueError as exc:
        print(f"error: --weights: {exc}", file=sys.stderr)
        return 2
    if args.mode:
        changes["mode"] = args.mode
    elif changes:
        changes["mode"] = "weighted"  # weights only matter in weighted mode
    db = _db()
    try:
        ref = await _tenant_ref(db, args.tenant)
        async with db.tenant_session(ref) as session:
            policy = policies.apply_changes(await policies.get_policy(session), changes)
            sim = await policies.simulate_orders(session, policy, last=args.last)
    except UserError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        await close_db()
    print(f"policy: {policy.mode}, weights {dict(policy.weights)}")
    print(f"{'order':<12} {'before':<22} {'after':<22} {'km before':>10} {'km after':>10}  changed")
    for c in sim.orders:
        before = f"{c['status_before']} {c['locations_before']}"
        after = f"{c['status_after']} {c['locations_after']}"
        print(
            f"{c['order_number']:<12} {before:<22} {after:<22} {c['distance_km_before']:>10.1f}"
            f" {c['distance_km_after']:>10.1f}  {'yes' if c['changed'] else 'no'}"
        )
    t = sim.totals
    print(
        f"{t['orders']} orders, {t['changed']} changed;"
        f" shipments {t['shipments_before']} -> {t['shipments_after']};"
        f" distance {t['distance_km_before']:.1f} -> {t['distance_km_after']:.1f} km;"
        f" unfilled lines {t['unfilled_before']} -> {t['unfilled_after']}"
    )
    return 0


def _serve(args) -> int:
    import uvicorn

    from app.api.view import MAX_WS_MESSAGE_BYTES
    from app.logs import configure_logging

    configure_logging()
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        ws_max_size=MAX_WS_MESSAGE_BYTES,
        proxy_headers=False,  # forwarded headers are believed only from OMS_TRUSTED_PROXIES (app.asgi)
    )
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
    serve.add_argument(
        "--workers", type=int, default=1, help="API processes sharing the port (one per core is typical)"
    )

    sub.add_parser("migrate", help="upgrade the control schema, then every tenant schema")
    worker = sub.add_parser("worker", help="run the arq worker (with the outbox relay)")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    sub.add_parser("seed", help="the demo tenant with channels, stock and orders (idempotent)")

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
    orders = isub.add_parser("orders", help="import orders from a CSV of order lines (one row per line)")
    orders.add_argument("file")
    orders.add_argument("--tenant", required=True, help="tenant slug")
    orders.add_argument("--channel", required=True, help="channel code")
    orders.add_argument("--mapping", help='JSON file {"field": "column" or "=constant"}')

    inbox = sub.add_parser("inbox", help="inbound payloads: list, replay failed ones")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    inbox_list = inbox_sub.add_parser("list", help="a tenant's inbox, newest first")
    inbox_list.add_argument("--tenant", required=True, help="tenant slug")
    inbox_list.add_argument("--status", choices=["received", "processed", "failed", "rejected"])
    inbox_list.add_argument("--limit", type=int, default=50)
    inbox_replay = inbox_sub.add_parser("replay", help="re-run a failed inbox message")
    inbox_replay.add_argument("id", type=int)
    inbox_replay.add_argument("--tenant", required=True, help="tenant slug")

    routing = sub.add_parser("routing", help="routing policy tools")
    routing_sub = routing.add_subparsers(dest="routing_command", required=True)
    simulate = routing_sub.add_parser("simulate", help="re-run recent decisions under other weights")
    simulate.add_argument("--tenant", required=True, help="tenant slug")
    simulate.add_argument("--weights", help="e.g. sla=0.75,distance=0.2 (merged into the current ones)")
    simulate.add_argument("--mode", choices=["lexicographic", "weighted"])
    simulate.add_argument("--last", type=int, default=50, help="how many recent orders (default 50)")

    args = parser.parse_args(argv)
    if args.command == "dev":
        from app.devserver import run_dev

        return run_dev(args.host, args.port)
    try:
        settings = get_settings()
    except RuntimeError as exc:  # e.g. a placeholder OMS_SECRET_KEY in prod: refuse to start, say why
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.database_url:
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
    if args.command == "inbox":
        return asyncio.run(_inbox(args))
    if args.command == "routing":
        return asyncio.run(_routing_simulate(args))
    if args.command == "import" and args.import_command == "orders":
        return _import_orders(args)
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
