"""Benchmark: orders per second from reserved to routed (and released) through the real arq worker,
against the pure engine ``decide()`` on the same orders.

Run it as ``.venv/bin/python bench/route_flow.py [--quick] [--orders N]`` (600 orders by default,
150 with ``--quick``, under a minute).

Why: ``bench/routing.py`` times the engine alone; in production every order also goes through the
outbox, Redis, the worker, the tenant session, the input queries, the decision row, the fulfilment
orders, the reservation moved onto the chosen locations, and then the ``release_fulfilment`` job. The
ratio of the two rates says what that I/O around the engine costs.

Setup (not measured): a database of its own, one tenant through ``tenants.service.signup``, a web
channel, ``PRODUCTS`` single products listed on it, ``WAREHOUSES`` warehouses in cities of
``app/routing/data/cn_cities.csv`` (real coordinates), each holding about 60% of the products (deep
enough never to run out), and ``N`` orders of 1-5 lines (quantity 1-3) delivered to those cities,
ingested through ``app.orders.doors.ingest_many`` (the bulk door, 4 calls at a time), so each is
reserved with its ``route_order`` outbox row waiting.

Measured:

- ``flow``: the backlog of ``N`` orders drained by a real worker (``app.worker.make_worker``, burst
  mode, in-process, 20 concurrent jobs, its own outbox relay) until every order is routed and its
  fulfilment orders released (no connectors, so release marks them assigned and the order released);
- baseline: ``decide()`` on the same orders' engine inputs, built from the database beforehand with
  ``app.routing.inputs.build`` and the tenant's policy (a sample of up to 1,000 orders, repeated);
- latency (``--trickle``, on by default): with a worker running, orders arrive one at a time at half the
  measured flow rate for a few seconds; ``p50/p99`` of the routing event's time minus the order's
  creation time (both the database's transaction start times, so the routing transaction itself is
  not included).

Checks at the end: every order routed and released (or the reason it was not, from its timeline);
``ledger.check_ledger`` finds nothing.

Output: human-readable lines, then exactly one final line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import random
import secrets
import time
from datetime import UTC, datetime

import _common
from _common import bench_tenant, listed_product, log, percentile

PRODUCTS = 200
WAREHOUSES = 10
STOCK = 100_000
SHARE = 0.6  # of the products each warehouse holds
BATCH = 50  # payloads per ingest_many call
INGEST_TASKS = 4
DECIDE_SAMPLE = 1000


def load_cities() -> list[dict[str, str]]:
    path = _common.PROJECT_ROOT / "app" / "routing" / "data" / "cn_cities.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def make_order(rng: random.Random, skus: list[str], cities: list[dict[str, str]], n: int) -> dict:
    """A generic-format (oms.order.v1) paid order, 1-5 lines, delivered to a random city of the table."""
    now = datetime.now(UTC).isoformat()
    tag = secrets.token_hex(6)
    city = rng.choice(cities)
    lines = [
        {"id": str(i + 1), "sku_id": sku, "title": sku, "quantity": rng.randint(1, 3), "unit_price": "19.90"}
        for i, sku in enumerate(rng.sample(skus, rng.randint(1, 5)))
    ]
    return {
        "format": "oms.order.v1",
        "id": f"FLOW-{tag}-{n}",
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
            "province": city["province"],
            "city": city["city_zh"],
            "street": f"{n} Road {tag}",
        },
        "lines": lines,
        "shipping": "0.00",
    }


async def seed(db, tenant, rng: random.Random, cities) -> tuple[int, list[str]]:
    from app.channels import service as channels
    from app.inventory import service as inventory
    from app.inventory.models import LocationKind
    from app.routing.policies import get_policy

    async with db.tenant_session(tenant) as session:
        # The tenant's routing policy row exists, as it does for a live tenant: otherwise the first
        # wave of route_order jobs all insert it at once and wait for the first one's whole transaction.
        await get_policy(session)
        channel = await channels.create_channel(
            session, {"code": "flow-web", "name": "Flow web", "platform": "web"}
        )
        locations = []
        for i, city in enumerate(rng.sample(cities, WAREHOUSES)):
            data = inventory.LocationInput(
                code=f"WH-{i}",
                name=f"{city['city']} warehouse",
                kind=LocationKind.warehouse,
                city=city["city"],
                province=city["province"],
                lat=float(city["lat"]),
                lng=float(city["lng"]),
                priority=rng.choice((10, 50, 100)),
            )
            locations.append((await inventory.create_location(session, data)).id)
        skus = []
        for i in range(PRODUCTS):
            code = f"FLOW-{i:04d}"
            material_id = await listed_product(session, channel.id, code, f"ITEM-{i:04d}")
            held = [loc for loc in locations if rng.random() < SHARE] or [rng.choice(locations)]
            for location_id in held:
                await inventory.receive(session, location_id, material_id, STOCK, reason="bench stock")
            skus.append(code)
    return channel.id, skus


async def ingest(db, tenant, channel_id: int, payloads: list[dict]) -> list[int]:
    """Through the bulk door, ``INGEST_TASKS`` calls at a time; the reserved orders' ids."""
    from app.orders.doors import ingest_many

    gate = asyncio.Semaphore(INGEST_TASKS)

    async def call(chunk: list[dict]) -> list[int]:
        async with gate:
            results = await ingest_many(db, tenant, channel_id, [json.dumps(p) for p in chunk], actor="bench")
        for r in results:
            if r.order_status != "reserved":
                raise RuntimeError(f"ingest did not reserve: {r}")
        return [r.order_id for r in results]

    chunks = [payloads[i : i + BATCH] for i in range(0, len(payloads), BATCH)]
    return [i for ids in await asyncio.gather(*(call(c) for c in chunks)) for i in ids]


async def engine_inputs(db, tenant, order_ids: list[int]) -> list[tuple]:
    """(OrderInput, candidates, policy) per order, built as ``routing.service.route_order`` does."""
    from app.fulfillment.open_lines import open_lines
    from app.orders.models import Order
    from app.routing import geo, inputs
    from app.routing.policies import get_policy

    out = []
    async with db.tenant_session(tenant) as session:
        policy = await get_policy(session)
        for order_id in order_ids:
            order = await session.get(Order, order_id)
            lines = await open_lines(session, order_id)
            place = geo.locate_address(order.address or {})
            if place is None:
                raise RuntimeError(f"order {order_id}: address not located: {order.address}")
            built = await inputs.build(session, order, lines, place, with_services=True)
            out.append((built.order, built.candidates, policy))
        await session.rollback()
    return out


def time_decide(cases: list[tuple], min_seconds: float) -> tuple[float, dict[str, int]]:
    """Decisions per second of ``decide`` over ``cases`` (repeated until ``min_seconds``)."""
    from app.routing.engine import decide

    statuses: dict[str, int] = {}
    for order, cands, policy in cases:  # warm-up, and the statuses the engine gives
        status = decide(order, cands, policy).status
        statuses[status] = statuses.get(status, 0) + 1
    done, start = 0, time.perf_counter()
    gc.disable()
    try:
        while time.perf_counter() - start < min_seconds:
            for order, cands, policy in cases:
                decide(order, cands, policy)
            done += len(cases)
    finally:
        gc.enable()
    return done / (time.perf_counter() - start), statuses


async def drain(db, redis) -> int:
    """Relay the outbox and run burst workers until a round finds nothing to hand over. Returns rounds."""
    from app.config import get_settings
    from app.outbox import relay_once
    from app.worker import make_worker

    queue, rounds = get_settings().queue_name, 0
    while True:
        handed = 0
        while n := await relay_once(db, redis, queue_name=queue):
            handed += n
        if not handed and rounds:
            return rounds
        rounds += 1
        worker = make_worker(burst=True, handle_signals=False, poll_delay=0.05)
        try:
            await worker.main()
        finally:
            await worker.close()


async def by_status(db, tenant, ids: list[int]) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.orders.models import Order

    async with db.tenant_session(tenant) as session:
        rows = await session.execute(
            select(Order.status, func.count()).where(Order.id.in_(ids)).group_by(Order.status)
        )
        return {status.value: n for status, n in rows.all()}


async def trickle(db, tenant, channel_id: int, make, rate: float, seconds: float) -> list[float]:
    """Orders one at a time at ``rate``/s into a running worker; routing latency of each, in ms."""
    from sqlalchemy import select

    from app.orders.models import Order, OrderEvent
    from app.worker import make_worker

    worker = make_worker(handle_signals=False, poll_delay=0.02)
    task = asyncio.create_task(worker.main())
    ids: list[int] = []
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            ids += await ingest(db, tenant, channel_id, [make()])
            await asyncio.sleep(max(0.0, start + len(ids) / rate - time.perf_counter()))
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if set(await by_status(db, tenant, ids)) <= {"released"}:
                break
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.close()
    async with db.tenant_session(tenant) as session:
        rows = await session.execute(
            select(Order.created_at, OrderEvent.created_at)
            .join(OrderEvent, OrderEvent.order_id == Order.id)
            .where(Order.id.in_(ids), OrderEvent.to_status == "routed")
        )
        return [(routed - created).total_seconds() * 1000 for created, routed in rows.all()]


async def explain_unrouted(db, tenant, ids: list[int]) -> list[str]:
    """The status and last routing event of up to 5 orders that did not end released."""
    from sqlalchemy import select

    from app.orders.models import Order, OrderEvent

    out = []
    async with db.tenant_session(tenant) as session:
        orders = (
            await session.scalars(select(Order).where(Order.id.in_(ids), Order.status != "released").limit(5))
        ).all()
        for order in orders:
            message = await session.scalar(
                select(OrderEvent.message)
                .where(OrderEvent.order_id == order.id, OrderEvent.kind == "routing")
                .order_by(OrderEvent.id.desc())
                .limit(1)
            )
            out.append(f"{order.number} {order.status.value}: {message or 'no routing event'}")
    return out


async def run(args: argparse.Namespace, db_url: str) -> dict[str, str]:
    from app import db as dbmod
    from app.inventory import ledger
    from app.redis import close_redis, get_redis

    n_orders = args.orders or (150 if args.quick else 600)
    rng = random.Random(args.seed)
    cities = load_cities()
    database = dbmod.init_db(db_url)
    try:
        tenant, _ = await bench_tenant(database, "bench_route_flow")
        redis = await get_redis()
        await drain(database, redis)  # the signup's own jobs, out of the way
        start = time.perf_counter()
        channel_id, skus = await seed(database, tenant, rng, cities)
        log(
            f"seeded {PRODUCTS} listed products at {WAREHOUSES} warehouses "
            f"in {time.perf_counter() - start:.1f} s"
        )
        counter = iter(range(1, 10**9))

        def make() -> dict:
            return make_order(rng, skus, cities, next(counter))

        start = time.perf_counter()
        ids = await ingest(database, tenant, channel_id, [make() for _ in range(n_orders)])
        log(f"ingested {len(ids)} reserved orders in {time.perf_counter() - start:.1f} s (not measured)")

        start = time.perf_counter()
        sample = rng.sample(ids, min(DECIDE_SAMPLE, len(ids)))
        cases = await engine_inputs(database, tenant, sample)
        log(f"built engine inputs of {len(cases)} orders in {time.perf_counter() - start:.1f} s")
        decide_rate, engine_statuses = time_decide(cases, 1.0 if args.quick else 5.0)
        log(f"decide(): {decide_rate:.0f}/s on those inputs; engine statuses {engine_statuses}")

        start = time.perf_counter()
        rounds = await drain(database, redis)
        flow_s = time.perf_counter() - start
        statuses = await by_status(database, tenant, ids)
        released = statuses.get("released", 0)
        flow_rate = released / flow_s
        log(
            f"worker: {len(ids)} orders in {flow_s:.1f} s = {flow_rate:.0f} routed+released/s "
            f"({rounds} burst rounds); statuses {statuses}"
        )
        not_released = await explain_unrouted(database, tenant, ids)
        for line in not_released:
            log(f"  not released: {line}")

        latencies: list[float] = []
        if args.trickle:
            rate = max(1.0, flow_rate / 2)
            latencies = await trickle(database, tenant, channel_id, make, rate, 2.0 if args.quick else 10.0)
            if latencies:
                log(
                    f"trickle at {rate:.0f}/s: {len(latencies)} orders, ingest→routed "
                    f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"
                )

        async with database.tenant_session(tenant) as session:
            mismatches = await ledger.check_ledger(session)
        log(f"ledger mismatches: {len(mismatches)}")
    finally:
        await close_redis()
        await dbmod.close_db()

    out = {
        "routed_per_s": f"{flow_rate:.1f}",
        "decide_per_s": f"{decide_rate:.0f}",
        "ratio": f"{flow_rate / decide_rate:.4f}",
        "orders": str(len(ids)),
        "routed": str(released),
    }
    if latencies:
        out["p50_ms"] = f"{percentile(latencies, 50):.0f}"
        out["p99_ms"] = f"{percentile(latencies, 99):.0f}"
    out |= {
        "ledger_ok": "true" if not mismatches else "false",
        "warehouses": str(WAREHOUSES),
        "cores": str(os.cpu_count()),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="150 orders instead of 600")
    parser.add_argument("--orders", type=int, default=0, help="orders in the backlog (overrides --quick)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-trickle", dest="trickle", action="store_false", help="skip the latency phase")
    args = parser.parse_args(argv)
    return _common.run(lambda db_url: run(args, db_url))


if __name__ == "__main__":
    _common.main(main)
