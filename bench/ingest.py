"""Benchmark: orders per second through the webhook door and through ``ingestOrders``, against the
physical limit of writing the same rows with bare asyncpg.

Run it as ``.venv/bin/python bench/ingest.py [--quick]`` (20 s per door by default, 5 s with ``--quick``).

Why: every order takes one path (DESIGN §3): raw payload into the inbox, adapter, ``orders.ingest``
(idempotency, customer identity, fingerprint, audit rules, network reservation, usage event, route_order
outbox row, timeline), all in one transaction. The rows that path must write are the physical limit;
everything else (HTTP, JSON, signature check, adapter, ORM, the audit queries) is overhead.

Setup: a database of its own, one tenant through ``tenants.service.signup``, a generic-format channel,
``PRODUCTS`` single products listed on it with deep stock at three warehouses, the API served by a real
``uvicorn`` process (``oms serve``) on a free port.

Doors, each measured for the same wall-clock time after a warm-up, orders of 1-5 lines (random products,
quantity 1-3, distinct buyers and addresses so no audit rule holds them):

A. ``webhook``: ``CONCURRENCY`` tasks each POST one signed order (``X-OMS-Signature``) at a time.
B. ``bulk``: 2 tasks each send ``ingestOrders`` with ``BATCH`` orders per call (the API's maximum is 1,000).

Baseline, same run: the same rows per order through bare asyncpg, one transaction per order from
``CONCURRENCY`` tasks on a pool: the inbox row, the order, its lines and line materials, the conditional
``network_stock`` UPDATE per material, the reservation rows and their ledger movements, the timeline
events, the usage event and the outbox row. ``ratio`` = door rate / baseline rate; the issue's goal is
at least 0.5.

Checks at the end: every accepted order exists once, reserved; ``ledger.check_ledger`` finds nothing.

Output: human-readable lines, then exactly one final line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import _common
from _common import Connection, bench_tenant, listed_product, log

PRODUCTS = 300
CONCURRENCY = 8
API_WORKERS = os.cpu_count() or 1  # one API process per core, as deployed
SENDERS = (8, 128)  # concurrent webhook senders: a steady trickle, and a flash sale's burst
BATCH = 100
STOCK_PER_LOCATION = 1_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orders:
    """Generic-format (oms.order.v1) orders with unique ids, 1-5 lines of listed products."""

    def __init__(self, skus: list[str], seed: int, prefix: str = "BENCH") -> None:
        self.skus = skus
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.n = 0

    def next(self) -> dict:
        self.n += 1
        rng, n = self.rng, self.n
        now = datetime.now(UTC).isoformat()
        lines = [
            {
                "id": str(i + 1),
                "sku_id": sku,
                "title": f"Bench {sku}",
                "quantity": rng.randint(1, 3),
                "unit_price": "19.90",
            }
            for i, sku in enumerate(rng.sample(self.skus, rng.randint(1, 5)))
        ]
        tag = secrets.token_hex(6)
        return {
            "format": "oms.order.v1",
            "id": f"{self.prefix}-{tag}-{n}",
            "status": "paid",
            "placed_at": now,
            "paid_at": now,
            "updated_at": now,
            "currency": "CNY",
            "buyer": {"id": f"buyer-{tag}", "name": f"Buyer {n}", "phone": f"+86 139{n % 100_000_000:08d}"},
            "shipping_address": {
                "name": f"Buyer {n}",
                "phone": f"139{n % 100_000_000:08d}",
                "country": "CN",
                "province": "上海市",
                "city": "上海市",
                "district": "浦东新区",
                "street": f"世纪大道 {n} 号 {tag}",
            },
            "lines": lines,
            "shipping": "0.00",
        }


async def seed(db, tenant) -> tuple[object, list[str], list[int]]:
    from app.channels import service as channels
    from app.inventory import service as inventory
    from app.inventory.models import LocationKind

    async with db.tenant_session(tenant) as session:
        channel = await channels.create_channel(
            session, {"code": "bench-web", "name": "Bench web", "platform": "web"}
        )
        locations = [
            (
                await inventory.create_location(
                    session,
                    inventory.LocationInput(
                        code=f"WH-{i}", name=f"Warehouse {i}", kind=LocationKind.warehouse
                    ),
                )
            ).id
            for i in range(3)
        ]
        skus, materials = [], []
        for i in range(PRODUCTS):
            code = f"BENCH-{i:04d}"
            material_id = await listed_product(session, channel.id, code, f"ITEM-{i:04d}")
            for location_id in locations:
                await inventory.receive(
                    session, location_id, material_id, STOCK_PER_LOCATION, reason="bench stock"
                )
            skus.append(code)
            materials.append(material_id)
    return channel, skus, materials


async def timed(seconds: float, tasks: int, step) -> tuple[int, float]:
    """Run ``step()`` (returns orders done) from ``tasks`` tasks until ``seconds`` pass."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            n = await step()  # not `done += await step()`: that reads `done` before the await
            done += n

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done, time.perf_counter() - start


def webhook_step(port: int, path: str, secret: str, orders: Orders):
    """One signed order per call, over one of a pool of keep-alive connections (one per sender)."""
    from app.signing import SIGNATURE_HEADER
    from app.signing import sign as oms_signature

    idle: list[Connection] = []
    expected = (202, "received") if path.endswith("?ack=stored") else (200, "processed")

    async def step() -> int:
        body = json.dumps(orders.next()).encode()
        connection = idle.pop() if idle else Connection("127.0.0.1", port)
        try:
            status, answer = await connection.post(
                path,
                body,
                {SIGNATURE_HEADER: oms_signature(secret, body), "content-type": "application/json"},
            )
        finally:
            idle.append(connection)
        if (status, answer.get("status")) != expected:
            raise RuntimeError(f"webhook answered {status}: {str(answer)[:300]}")
        return 1

    return step


MUTATION = """mutation($input: IngestOrdersInput!) {
  ingestOrders(input: $input) { results { outcome error } userErrors { code message } }
}"""


def bulk_step(http, token: str, channel_gid: str, orders: Orders):
    async def step() -> int:
        batch = [orders.next() for _ in range(BATCH)]
        r = await http.post(
            "/graphql",
            json={"query": MUTATION, "variables": {"input": {"channelId": channel_gid, "orders": batch}}},
            headers={"authorization": f"Bearer {token}"},
        )
        data = r.json()
        if r.status_code != 200 or data.get("errors") or data["data"]["ingestOrders"]["userErrors"]:
            raise RuntimeError(f"ingestOrders answered {r.status_code}: {r.text[:300]}")
        bad = [x for x in data["data"]["ingestOrders"]["results"] if x["outcome"] != "created"]
        if bad:
            raise RuntimeError(f"ingestOrders: {bad[:3]}")
        return len(batch)

    return step


# The rows ``ingest`` writes for one order ({s} is the tenant schema).
BASELINE_SQL = {
    "inbox": """INSERT INTO control.inbox (tenant_id, source, headers, body, status, attempts, processed_at)
        VALUES ($1, $2, '{{}}', $3, 'processed', 1, now()) RETURNING id""",
    "order": """INSERT INTO {s}.orders (number, channel_id, external_id, status, channel_status, raw_status,
        business_model, fingerprint, address_hash, currency, subtotal, shipping, discount, tax, total, paid,
        placed_at, paid_at, external_updated_at, buyer, address, extra, search_text, inbox_id, version)
        VALUES ('SO' || nextval(pg_get_serial_sequence($1, 'id')), $2, $3, 'reserved', 'paid', 'paid', 'b2c',
        $4, $4, 'CNY', 19.90, 0, 0, 0, 19.90, 19.90, now(), now(), now(), $5, $5, '{{}}', $6, $7, 2)
        RETURNING id""",
    "lines": """INSERT INTO {s}.order_lines (order_id, external_line_id, external_item_id, external_sku_id,
        title, product_id, kind, quantity, unit_price, discount, total, is_gift, presale)
        SELECT $1, l.id, '', l.sku, l.sku, l.product, 'single', l.qty, 19.90, 0, 19.90, false, false
        FROM unnest($2::text[], $3::text[], $4::bigint[], $5::int[]) AS l(id, sku, product, qty)
        RETURNING id""",
    "materials": """INSERT INTO {s}.order_line_materials (line_id, material_id, order_id, quantity)
        SELECT l, m, $1, q FROM unnest($2::bigint[], $3::bigint[], $4::int[]) AS x(l, m, q)""",
    "reserve": """UPDATE {s}.network_stock SET reserved = reserved + $1
        WHERE material_id = $2 AND on_hand - reserved - safety_stock >= $1 RETURNING 1""",
    "reservations": """INSERT INTO {s}.reservations (reference, material_id, quantity, backordered, status)
        SELECT $1, m, q, 0, 'active' FROM unnest($2::bigint[], $3::int[]) AS x(m, q)""",
    "movements": """INSERT INTO {s}.stock_movements (kind, material_id, d_on_hand, d_reserved,
        d_in_transit, d_defective, d_safety, reason, reference, actor)
        SELECT 'reservation', m, 0, q, 0, 0, 0, '', $1, 'bench'
        FROM unnest($2::bigint[], $3::int[]) AS x(m, q)""",
    "events": """INSERT INTO {s}.order_events (order_id, kind, actor, message, details, to_status)
        VALUES ($1, 'received', 'bench', '', '{{}}', 'received'),
               ($1, 'status', 'bench', '', '{{}}', 'reserved')""",
    "usage": """INSERT INTO control.usage_events (tenant_id, kind, reference, quantity)
        VALUES ($1, 'order', $2, 1)""",
    "outbox": """INSERT INTO control.outbox (tenant_id, job, kwargs, attempts)
        VALUES ($1, 'bench_noop', $2, 0)""",
}


def baseline_step(pool, schema: str, tenant_id: int, channel_id: int, materials: list[int], orders: Orders):
    """The rows ``ingest`` writes for one order, through bare asyncpg in one transaction."""
    sql = {name: text.format(s=schema) for name, text in BASELINE_SQL.items()}

    async def step() -> int:
        payload = orders.next()
        lines = payload["lines"]
        picks = [(materials[int(line["sku_id"].split("-")[1])], line["quantity"]) for line in lines]
        mats, qtys = [m for m, _ in picks], [q for _, q in picks]
        async with pool.acquire() as conn, conn.transaction():
            body = json.dumps(payload).encode()
            inbox_id = await conn.fetchval(sql["inbox"], tenant_id, f"channel:{channel_id}", body)
            address = payload["shipping_address"]["street"]
            order_id = await conn.fetchval(
                sql["order"], f"{schema}.orders", channel_id, payload["id"], secrets.token_hex(32),
                json.dumps(payload["buyer"]), address, inbox_id,
            )  # fmt: skip
            ids = [x["id"] for x in lines]
            skus = [x["sku_id"] for x in lines]
            line_ids = [r["id"] for r in await conn.fetch(sql["lines"], order_id, ids, skus, mats, qtys)]
            await conn.execute(sql["materials"], order_id, line_ids, mats, qtys)
            for material_id, qty in sorted(picks):
                if not await conn.fetchval(sql["reserve"], qty, material_id):
                    raise RuntimeError("baseline ran out of stock")
            reference = f"base:{order_id}"
            await conn.execute(sql["reservations"], reference, mats, qtys)
            await conn.execute(sql["movements"], reference, mats, qtys)
            await conn.execute(sql["events"], order_id)
            await conn.execute(sql["usage"], tenant_id, reference)
            await conn.execute(sql["outbox"], tenant_id, json.dumps({"order_id": order_id}))
        return 1

    return step


async def ingested(database, tenant, prefix: str, count: int) -> None:
    """Wait (up to two minutes) until ``count`` orders whose external id starts with ``prefix`` exist."""
    from sqlalchemy import func, select

    from app.orders.models import Order

    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        async with database.tenant_session(tenant) as session:
            query = select(func.count()).select_from(Order).where(Order.external_id.startswith(prefix))
            if await session.scalar(query) >= count:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"orders {prefix}* not all ingested after two minutes")


async def run(args: argparse.Namespace, db_url: str) -> dict[str, str]:
    import asyncpg
    import httpx
    from sqlalchemy import delete, func, select
    from strawberry import relay

    from app import db as dbmod
    from app.db import plain_url
    from app.inventory import ledger
    from app.orders.models import Order, OrderStatus
    from app.outbox import OutboxMessage
    from app.redis import close_redis

    seconds = 5.0 if args.quick else 20.0
    database = dbmod.init_db(db_url)
    server = None
    pool = None
    try:
        tenant, tokens = await bench_tenant(database, "bench_ingest")
        start = time.perf_counter()
        channel, skus, materials = await seed(database, tenant)
        log(f"seeded {PRODUCTS} listed products x 3 warehouses in {time.perf_counter() - start:.1f} s")
        channel_gid = str(relay.GlobalID("Channel", f"{tenant.id}.{channel.id}"))

        port = _free_port()
        log_path = _common.PROJECT_ROOT / ".oms" / "bench" / "ingest-server.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        server_log = log_path.open("wb")
        server = subprocess.Popen(  # noqa: ASYNC220  (started once, before anything is measured)
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(API_WORKERS)],
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the API did not come up")
            log(f"API serving on {base} (uvicorn, {API_WORKERS} processes; their log: {log_path})")
            orders = Orders(skus, seed=1)
            hook_path = f"/webhooks/channels/{channel_gid}"
            hooks = {}
            for senders in SENDERS:
                hook = webhook_step(port, hook_path, channel.webhook_secret, orders)
                await timed(2.0, senders, hook)  # warm-up
                hook_n, hook_s = await timed(seconds, senders, hook)
                hooks[str(senders)] = hook_n / hook_s
                log(
                    f"webhook, {senders} senders: {hook_n} orders in {hook_s:.1f} s = {hook_n / hook_s:.0f}/s"
                )
            # Answered once stored: the rate counts until the last of them is ingested and reserved.
            early = Orders(skus, seed=3, prefix="BENCH-ACK")
            hook = webhook_step(port, f"{hook_path}?ack=stored", channel.webhook_secret, early)
            await timed(2.0, SENDERS[0], hook)
            await ingested(database, tenant, "BENCH-ACK-", early.n)
            start = time.perf_counter()
            sent, _ = await timed(seconds, SENDERS[0], hook)
            await ingested(database, tenant, "BENCH-ACK-", early.n)
            hooks[f"{SENDERS[0]}_ack_stored"] = rate = sent / (time.perf_counter() - start)
            log(f"webhook, {SENDERS[0]} senders, ?ack=stored: {sent} orders ingested at {rate:.0f}/s")
            bulk = bulk_step(http, tokens.access_token, channel_gid, orders)
            await timed(1.0, 2, bulk)
            bulk_n, bulk_s = await timed(seconds, 2, bulk)
            log(f"ingestOrders: {bulk_n} orders in {bulk_s:.1f} s = {bulk_n / bulk_s:.0f}/s ({BATCH} a call)")

        pool = await asyncpg.create_pool(plain_url(db_url), min_size=CONCURRENCY, max_size=CONCURRENCY)
        base_step = baseline_step(
            pool,
            tenant.schema_name,
            tenant.id,
            channel.id,
            materials,
            Orders(skus, seed=2, prefix="BASELINE"),
        )
        await timed(1.0, CONCURRENCY, base_step)
        base_n, base_s = await timed(seconds, CONCURRENCY, base_step)
        log(
            f"baseline (bare asyncpg, same rows): {base_n} orders in {base_s:.1f} s = {base_n / base_s:.0f}/s"
        )

        async with database.tenant_session(tenant) as session:
            by_status = dict(
                (
                    await session.execute(
                        select(Order.status, func.count())
                        .where(Order.external_id.startswith("BENCH-"))
                        .group_by(Order.status)
                    )
                ).all()
            )
            # The baseline wrote its reservation movements too, so the whole ledger must still replay.
            mismatches = await ledger.check_ledger(session)
        accepted = by_status.get(OrderStatus.reserved, 0)
        statuses = {k.value: v for k, v in by_status.items()}
        log(f"orders through the doors by status: {statuses}; ledger mismatches: {len(mismatches)}")
        if mismatches:
            raise RuntimeError(f"ledger does not replay: {mismatches[:3]}")
        if set(statuses) != {"reserved"}:
            raise RuntimeError(f"every order should be reserved, got {statuses}")
        async with database.control_session() as session:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.job == "bench_noop"))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if pool is not None:
            await pool.close()
        await close_redis()
        await dbmod.close_db()

    bulk_rate, base_rate = bulk_n / bulk_s, base_n / base_s
    return {
        **{f"webhook_{n}_orders_per_s": f"{rate:.0f}" for n, rate in hooks.items()},
        "bulk_orders_per_s": f"{bulk_rate:.0f}",
        "baseline_per_s": f"{base_rate:.0f}",
        **{f"webhook_{n}_ratio": f"{rate / base_rate:.2f}" for n, rate in hooks.items()},
        "bulk_ratio": f"{bulk_rate / base_rate:.2f}",
        "reserved_orders": str(accepted),
        "cores": str(os.cpu_count()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per door instead of 20 s")
    args = parser.parse_args(argv)
    return _common.run(lambda db_url: run(args, db_url))


if __name__ == "__main__":
    _common.main(main)
