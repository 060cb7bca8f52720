"""Benchmark: reservations per second through ``app.inventory.service.reserve``, against the physical limit.

Run it as ``.venv/bin/python bench/reservations.py [--quick]`` (10,000 materials and 10 s per measurement;
``--quick`` means 2,000 materials and 3 s).

Why: every order reserves stock at network level before routing (DESIGN §3), and the no-oversell
invariant (DESIGN §4.4) rests on one conditional UPDATE per material of ``network_stock``. That UPDATE
alone is the physical limit of the design; everything ``reserve`` does around it (the idempotency
lookup, exploding products into materials, the low-stock check, the debounced channel-sync request and
its outbox row, the reservation row, the ledger movement, the ORM and the pool) is overhead, and on a hot
SKU it is done while the row lock is held. This benchmark puts a number on both, in one run:

A. ``random``: random single-line orders (one unit of one product, picked uniformly from the catalogue)
   by 16 concurrent asyncio tasks, each reservation in its own ``db.tenant_session(...)`` transaction.
B. ``hot``: 100 concurrent tasks hammering 10 hot SKUs (stocked deep enough never to run out): many
   transactions queue on the same ``network_stock`` rows.

Baselines, same run, same shapes: a loop of ``UPDATE <schema>.network_stock SET reserved = reserved + $1
WHERE material_id = $2 AND on_hand - reserved - safety_stock >= $1`` through bare asyncpg, each statement
its own (autocommit) transaction, from an ``asyncpg.Pool`` sized like the app's SQLAlchemy pool (10
connections + 10 overflow = at most 20), with the same number of tasks (16 for A, 100 for B: as in the
app, tasks beyond 20 wait for a connection). App and baseline run in alternating blocks (app, baseline,
baseline, app), so the drift of a noisy machine hits both alike; each side is warmed up first. The
baseline bypasses the ledger on purpose, so its increments are counted and taken back before the checks.

Setup: a database of its own, control schema migrated, one tenant through ``tenants.service.signup``,
then a catalogue seeded with set-based ``INSERT ... SELECT`` statements (SQLAlchemy core on the
placeholder schema, in a tenant session): N materials each sold as one single product (one component,
quantity 1), 20 locations, a stock level per location x material with a matching ``receipt`` movement
(so the ledger replays to the levels), then ``ledger.recompute_network`` builds ``network_stock``.

Besides the rates, each side reports latency p50/p99, this process's CPU per reservation, the statements
SQLAlchemy sent per reservation, and (sampled from ``pg_stat_activity`` every 100 ms) what the server
backends were doing: running, waiting on WAL/IO, waiting for a row lock, or idle in transaction, i.e.
waiting for the client. That tells a client-bound run from a lock-bound or a server-bound one.

At the end: ``ledger.check_ledger`` must return no mismatch, no ``network_stock`` row may hold more
reserved than on hand, and there must be exactly one reservation row per successful app reservation.

Servers come from ``OMS_DATABASE_URL`` / ``OMS_REDIS_URL`` when set, else the embedded ones are started
under ``.oms/bench``. The benchmark creates its own database ``oms_bench_<hex>`` on that server, uses a
Redis prefix of its own, and drops/cleans both at the end, also on error, Ctrl-C or SIGTERM.

Output: human-readable lines while running, then exactly one final line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import _common
import asyncpg
from _common import RUN_ID, bench_tenant, log, percentile

LOCATIONS = 20
HOT_SKUS = 10
HOT_STOCK_PER_LOCATION = 50_000  # 1,000,000 per hot SKU in the network: never runs out here
RANDOM_WORKERS = 16  # below the pool's 20 connections: measures throughput, not pool queueing
HOT_WORKERS = 100
POOL_SIZE = 10  # app.db.Database default: pool_size=10, max_overflow=10
# Loops are bounded by time AND by count: no block ever makes more than MAX_OPS_PER_BLOCK calls.
MAX_OPS_PER_BLOCK = 200_000

BASELINE_SQL = (
    'UPDATE "{schema}".network_stock SET reserved = reserved + $1 '
    "WHERE material_id = $2 AND on_hand - reserved - safety_stock >= $1"
)


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat (None where unavailable)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


@dataclass
class Stats:
    """What one side (app or baseline) of one measurement did, over all its blocks."""

    ok: int = 0
    failed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0  # this process's CPU time during the blocks
    machine: list[float] = field(default_factory=list)  # per block: share of all cores busy (0..1)
    blocks: list[float] = field(default_factory=list)  # per block: reservations per second
    statements: int = 0  # SQL statements SQLAlchemy sent (0 for the baseline, which bypasses it)
    backends: Counter = field(default_factory=Counter)  # summed samples of what our backends did
    samples: int = 0

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        fails = f", failed {dict(self.failed)}" if self.failed else ""
        rates = " / ".join(f"{r:.0f}" for r in self.blocks)
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        machine = f", machine {100 * statistics.fmean(self.machine):.0f}% busy" if self.machine else ""
        lines = [
            f"{self.per_s:8.0f} /s  ({self.ok} in {self.seconds:.1f} s; blocks {rates}/s; "
            f"latency p50 {p50:.2f} ms, p99 {p99:.2f} ms{fails})",
            f"client CPU {100 * self.client_cpu_s / self.seconds:.0f}% of a core "
            f"({1000 * self.client_cpu_s / max(self.ok, 1):.2f} ms per reservation){machine}",
        ]
        if self.statements:
            lines.append(
                f"{self.statements / max(self.ok, 1):.1f} statements per reservation, plus BEGIN/COMMIT"
            )
        if self.samples:
            avg = {k: v / self.samples for k, v in self.backends.items()}
            lines.append(
                f"server backends on average: {avg.get('running', 0):.1f} running, "
                f"{avg.get('io', 0):.1f} waiting on WAL/IO, {avg.get('lock', 0):.1f} waiting for a row lock, "
                f"{avg.get('client', 0):.1f} idle in transaction (waiting for the client)"
            )
        return "\n           ".join(lines)


class Probe:
    """Samples pg_stat_activity over its own connection: where the benchmark's backends spend time."""

    QUERY = """
        SELECT count(*) FILTER (WHERE state = 'active' AND wait_event_type IS NULL) AS running,
               count(*) FILTER (WHERE state = 'active' AND wait_event_type IN ('IO', 'LWLock')) AS io,
               count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock,
               count(*) FILTER (WHERE state = 'idle in transaction') AS client
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    """
    INTERVAL = 0.1

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def run(self, seconds: float, into: Stats) -> None:
        for _ in range(int(seconds / self.INTERVAL) + 1):  # bounded: the block's length
            row = await self.conn.fetchrow(self.QUERY)
            into.backends.update(dict(row))
            into.samples += 1
            await asyncio.sleep(self.INTERVAL)


Op = Callable[[int, int], Awaitable[bool]]  # (worker, sequence) -> True if reserved


class StatementCounter:
    """Counts the statements SQLAlchemy sends (BEGIN/COMMIT are not cursor executions)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


async def run_block(
    op: Op,
    workers: int,
    seconds: float,
    into: Stats | None,
    *,
    probe: Probe | None = None,
    statements: StatementCounter | None = None,
) -> None:
    """``workers`` tasks calling ``op`` until ``seconds`` have passed (or the count cap is reached)."""
    from app.errors import UserError

    cap = MAX_OPS_PER_BLOCK // workers
    latencies: list[float] = []
    failed: Counter = Counter()
    ok = 0

    async def worker(w: int) -> None:
        nonlocal ok
        for i in range(cap):
            if time.perf_counter() >= deadline:
                return
            start = time.perf_counter()
            try:
                reserved = await op(w, i)
            except UserError as exc:  # e.g. INSUFFICIENT_STOCK: counted, reported, never expected here
                failed[exc.code] += 1
                continue
            latencies.append((time.perf_counter() - start) * 1000)
            if reserved:
                ok += 1
            else:
                failed["NO_ROW_UPDATED"] += 1

    stmts0 = statements.count if statements else 0
    cpu0, busy0, wall0 = time.process_time(), _machine_busy(), time.perf_counter()
    deadline = wall0 + seconds
    async with asyncio.TaskGroup() as group:
        for w in range(workers):
            group.create_task(worker(w))
        if probe is not None and into is not None:
            group.create_task(probe.run(seconds, into))
    wall = time.perf_counter() - wall0
    cpu, busy1 = time.process_time() - cpu0, _machine_busy()
    if into is not None:
        into.ok += ok
        into.failed.update(failed)
        into.seconds += wall
        into.latencies_ms.extend(latencies)
        into.client_cpu_s += cpu
        into.blocks.append(ok / wall)
        into.statements += (statements.count - stmts0) if statements else 0
        if busy0 and busy1 and busy1[1] > busy0[1]:
            into.machine.append((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]))


async def compare(
    app_op: Op, base_op: Op, workers: int, seconds: float, probe: Probe, statements: StatementCounter
) -> tuple[Stats, Stats]:
    """Warm both sides up, then app, baseline, baseline, app blocks of ``seconds / 2`` each."""
    warm = min(1.0, seconds / 3)
    await run_block(app_op, workers, warm, None)
    await run_block(base_op, workers, warm, None)
    app, base = Stats(), Stats()
    for op, stats in ((app_op, app), (base_op, base), (base_op, base), (app_op, app)):
        await run_block(op, workers, seconds / 2, stats, probe=probe, statements=statements)
    return app, base


@dataclass
class Catalogue:
    products: list[int]  # every product (single, one component of quantity 1)
    material_of: dict[int, int]  # product id -> material id
    hot: list[int]  # products of the hot materials
    units: int  # units on hand in the whole network after seeding


async def seed(db, tenant, n_materials: int) -> Catalogue:
    """Set-based inserts in the tenant schema: the database builds the rows, nothing loops in Python."""
    from sqlalchemy import Integer, String, case, cast, false, func, insert, literal, select, true
    from sqlalchemy.dialects.postgresql import JSONB

    from app.catalog.models import Material, Product, ProductComponent, ProductKind
    from app.inventory import ledger
    from app.inventory.models import (
        Location,
        LocationKind,
        LocationStatus,
        MovementKind,
        NetworkStock,
        StockLevel,
        StockMovement,
    )

    async with db.tenant_session(tenant) as session:
        await session.execute(
            insert(Location),
            [
                {
                    "code": f"LOC-{i:02d}",
                    "name": f"Warehouse {i:02d}",
                    "kind": LocationKind.warehouse if i % 4 else LocationKind.store,
                    "status": LocationStatus.active,
                    "status_reason": None,
                    "address": "",
                    "city": f"City {i:02d}",
                    "province": "",
                    "region": "",
                    "lat": None,
                    "lng": None,
                    "priority": 100 + i,
                    "capabilities": ["ship"],
                    "daily_capacity": None,
                    "tags": [],
                }
                for i in range(1, LOCATIONS + 1)
            ],
        )
        i = func.generate_series(1, n_materials).column_valued("i")
        code = func.concat("BENCH-", func.lpad(cast(i, String), 6, "0"))
        await session.execute(
            insert(Material).from_select(
                [
                    "code",
                    "name",
                    "attributes",
                    "serial_tracked",
                    "batch_tracked",
                    "cold_chain",
                    "fragile",
                    "high_value",
                ],
                select(
                    code,
                    func.concat("Bench material ", i),
                    literal({}, JSONB),
                    false(),
                    false(),
                    false(),
                    false(),
                    false(),
                ),
            )
        )
        await session.execute(
            insert(Product).from_select(
                ["code", "name", "kind", "presale", "allow_backorder", "active"],
                select(
                    Material.code,
                    Material.name,
                    literal(ProductKind.single, Product.__table__.c.kind.type),
                    false(),
                    false(),
                    true(),
                ).order_by(Material.id),
            )
        )
        await session.execute(
            insert(ProductComponent).from_select(
                ["product_id", "material_id", "quantity"],
                select(Product.id, Material.id, literal(1, Integer)).join(
                    Material, Material.code == Product.code
                ),
            )
        )
        hot_materials = (
            await session.scalars(select(Material.id).order_by(Material.id).limit(HOT_SKUS))
        ).all()
        on_hand = case(
            (Material.id.in_(hot_materials), HOT_STOCK_PER_LOCATION),
            else_=10 + (Material.id * 7 + Location.id * 13) % 41,  # 10..50 per location
        )
        await session.execute(
            insert(StockLevel).from_select(
                [
                    "location_id",
                    "material_id",
                    "on_hand",
                    "reserved",
                    "in_transit",
                    "defective",
                    "safety_stock",
                ],
                select(Location.id, Material.id, on_hand, 0, 0, 0, 0).join(Material, true()),
            )
        )
        await session.execute(
            insert(StockMovement).from_select(
                [
                    "kind",
                    "material_id",
                    "location_id",
                    "d_on_hand",
                    "d_reserved",
                    "d_in_transit",
                    "d_defective",
                    "d_safety",
                    "reason",
                    "reference",
                    "actor",
                ],
                select(
                    literal(MovementKind.receipt, StockMovement.__table__.c.kind.type),
                    StockLevel.material_id,
                    StockLevel.location_id,
                    StockLevel.on_hand,
                    0,
                    0,
                    0,
                    0,
                    literal("bench seed"),
                    literal(f"bench-{RUN_ID}-seed"),
                    literal("bench"),
                ),
            )
        )
        await ledger.recompute_network(session)
        pairs = (
            await session.execute(
                select(ProductComponent.product_id, ProductComponent.material_id).order_by(
                    ProductComponent.product_id
                )
            )
        ).all()
        units = await session.scalar(select(func.sum(NetworkStock.on_hand)))
    material_of = dict(pairs)
    hot_set = set(hot_materials)
    return Catalogue(
        products=[p for p, m in pairs if m not in hot_set],
        material_of=material_of,
        hot=[p for p, m in pairs if m in hot_set],
        units=int(units or 0),
    )


async def _analyze(db_url: str) -> None:
    """Fresh planner statistics for the seeded tables, as autovacuum would give them after a while."""
    from app.db import plain_url

    conn = await asyncpg.connect(plain_url(db_url))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def run(args: argparse.Namespace, db_url: str) -> dict[str, str]:
    from sqlalchemy import func, select

    from app import db as dbmod
    from app.db import plain_url
    from app.inventory import ledger, service
    from app.inventory.models import NetworkStock, Reservation
    from app.redis import close_redis

    n_materials = 2_000 if args.quick else 10_000
    seconds = 3.0 if args.quick else 10.0
    rng = random.Random(42)

    database = dbmod.init_db(db_url, pool_size=POOL_SIZE)
    pool: asyncpg.Pool | None = None
    probe_conn: asyncpg.Connection | None = None
    try:
        start = time.perf_counter()
        tenant, _ = await bench_tenant(database, "bench_reservations")
        log(f"tenant {tenant.schema_name} signed up in {(time.perf_counter() - start) * 1000:.0f} ms")
        log(f"machine: {os.cpu_count()} cores, load average {_load()} (other processes skew every figure)")

        start = time.perf_counter()
        catalogue = await seed(database, tenant, n_materials)
        await _analyze(db_url)
        log(
            f"seeded {n_materials} materials/products x {LOCATIONS} locations "
            f"({n_materials * LOCATIONS} stock levels + receipt movements, {catalogue.units:,} units; "
            f"{HOT_SKUS} hot SKUs with {HOT_STOCK_PER_LOCATION * LOCATIONS:,} each) "
            f"in {time.perf_counter() - start:.1f} s"
        )

        pool = await asyncpg.create_pool(
            plain_url(db_url), min_size=POOL_SIZE, max_size=2 * POOL_SIZE, statement_cache_size=100
        )
        probe_conn = await asyncpg.connect(plain_url(db_url))
        probe = Probe(probe_conn)
        statements = StatementCounter(database.engine)
        sql = BASELINE_SQL.format(schema=tenant.schema_name)
        app_ok = 0
        taken_by_baseline: Counter = Counter()  # material id -> units the baseline reserved

        references = itertools.count()  # unique across phases, blocks and warm-ups

        def app_op(products: list[int]) -> Op:
            async def op(worker: int, seq: int) -> bool:
                nonlocal app_ok
                product_id = rng.choice(products)
                async with database.tenant_session(tenant) as session:
                    await service.reserve(
                        session,
                        [service.ReserveLine(product_id, 1)],
                        reference=f"bench-{next(references)}",
                        channel_id=None,
                    )
                app_ok += 1  # committed
                return True

            return op

        def base_op(products: list[int]) -> Op:
            materials = [catalogue.material_of[p] for p in products]

            async def op(worker: int, seq: int) -> bool:
                material_id = rng.choice(materials)
                status = await pool.execute(sql, 1, material_id)
                if status == "UPDATE 1":
                    taken_by_baseline[material_id] += 1
                    return True
                return False

            return op

        phases = {}
        for name, products, workers in (
            ("random", catalogue.products, RANDOM_WORKERS),
            ("hot", catalogue.hot, HOT_WORKERS),
        ):
            log(
                f"{name}: {workers} tasks over {len(products)} products, "
                f"{seconds:g} s per side (app, baseline, baseline, app)"
            )
            app_stats, base_stats = await compare(
                app_op(products), base_op(products), workers, seconds, probe, statements
            )
            log(f"  app      {app_stats.describe()}")
            log(f"  baseline {base_stats.describe()}")
            phases[name] = (app_stats, base_stats)

        log(f"load average after the measurements: {_load()}")
        # The baseline bypassed the ledger on purpose: give its units back before checking.
        if taken_by_baseline:
            ids, qtys = zip(*taken_by_baseline.items(), strict=True)
            await pool.execute(
                f'UPDATE "{tenant.schema_name}".network_stock AS n SET reserved = n.reserved - d.qty '
                "FROM unnest($1::bigint[], $2::int[]) AS d(material_id, qty) "
                "WHERE n.material_id = d.material_id",
                list(ids),
                list(qtys),
            )
        log(f"baseline reservations taken back: {sum(taken_by_baseline.values())} units")

        start = time.perf_counter()
        async with database.tenant_session(tenant) as session:
            mismatches = await ledger.check_ledger(session)
            oversold = await session.scalar(
                select(func.count()).where(NetworkStock.reserved > NetworkStock.on_hand)
            )
            negative = await session.scalar(
                select(func.count()).where(
                    NetworkStock.on_hand - NetworkStock.reserved - NetworkStock.safety_stock < 0
                )
            )
            reservations = await session.scalar(select(func.count()).select_from(Reservation))
            reserved_units = await session.scalar(select(func.sum(NetworkStock.reserved)))
        log(
            f"check_ledger: {len(mismatches)} mismatches ({time.perf_counter() - start:.1f} s); "
            f"network rows with reserved > on_hand: {oversold}; with available < 0: {negative}; "
            f"reservation rows {reservations} for {app_ok} committed reserve() calls; "
            f"units reserved {reserved_units}"
        )
        for m in mismatches[:5]:
            log(f"  mismatch {m}")
        ledger_ok = not mismatches and oversold == 0 and negative == 0 and reservations == app_ok
    finally:
        # Bounded: after a cancellation (Ctrl-C, SIGTERM) a connection may still be mid-query.
        if probe_conn is not None:
            await probe_conn.close(timeout=5)
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except TimeoutError:
                pool.terminate()
        await close_redis()
        await dbmod.close_db()

    (ra, rb), (ha, hb) = phases["random"], phases["hot"]
    failures = sum(s.failed.total() for s in (ra, rb, ha, hb))
    return {
        "materials": str(n_materials),
        "locations": str(LOCATIONS),
        "random_per_s": f"{ra.per_s:.0f}",
        "random_baseline_per_s": f"{rb.per_s:.0f}",
        "random_ratio": f"{ra.per_s / rb.per_s:.3f}",
        "hot_per_s": f"{ha.per_s:.0f}",
        "hot_baseline_per_s": f"{hb.per_s:.0f}",
        "hot_ratio": f"{ha.per_s / hb.per_s:.3f}",
        "ledger_ok": str(ledger_ok).lower(),
        "random_p99_ms": f"{percentile(ra.latencies_ms, 99):.1f}",
        "hot_p99_ms": f"{percentile(ha.latencies_ms, 99):.1f}",
        "random_workers": str(RANDOM_WORKERS),
        "hot_workers": str(HOT_WORKERS),
        "hot_skus": str(HOT_SKUS),
        "pool": f"{POOL_SIZE}+{POOL_SIZE}",
        "failed": str(failures),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,000 materials and 3 s per measurement (< 60 s)"
    )
    args = parser.parse_args(argv)

    return _common.run(lambda db_url: run(args, db_url))


if __name__ == "__main__":
    _common.main(main)
