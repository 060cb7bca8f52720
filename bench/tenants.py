"""Benchmark: what does the number of tenants cost? Provisioning time, and query latency at 1 vs N tenants.

Run it as ``.venv/bin/python bench/tenants.py [--tenants N] [--quick]`` (N defaults to 200, ``--quick``
means 50; ``--tenants 1000`` is the long run).

Why: every tenant lives in its own PostgreSQL schema, and a tenant session renders that schema into the
SQL (``schema_translate_map``). So each tenant x query is a distinct SQL text, and the per-connection
prepared-statement cache (the LRU of SQLAlchemy's asyncpg adapter, ``prepared_statement_cache_size``,
sized by ``OMS_STATEMENT_CACHE_SIZE``, default 100, in ``app.db.Database``; asyncpg's own
``statement_cache_size`` does not apply to statements SQLAlchemy prepares) sees N times as many
statements as a single-tenant app would. Once the working set of statements exceeds the cache, tenant
queries miss it and are prepared again (an extra Parse/Describe round trip, and the old statement is
closed) instead of reusing a prepared statement. This benchmark puts a number on that, in one run, on
the real code paths:

1. Provisioning: N tenants through ``tenants.service.signup`` (the code behind the public ``signup``
   mutation: organisation, tenant row, schema + tenant migrations, owner with an Argon2 password hash,
   tokens), one after the other; per-tenant wall time, median and p95 (and first vs last tenths, to
   show whether provisioning slows down as the catalogue grows). The ``tenant_provisioned`` job is
   then run inline (outside the timing) so the activity query below returns a row.
2. Query latency of one authenticated GraphQL query through the real Starlette app (``create_app``
   over ``httpx.ASGITransport``, bearer token from signup): ``viewer { role tenant { slug } }``
   (control schema) plus ``activity(first: 5)`` (tenant schema). Requests are sequential:
   - ``q1first``: right after the first tenant exists (a true one-tenant system; measured early in
     the process, so only indicative);
   - ``q1``: after N tenants exist, always the same tenant: the same-run baseline;
   - ``qN``: after N tenants exist, round-robin over all N tokens, so every request runs a different
     tenant's SQL. Round-robin is the worst case for an LRU cache (no hits once N exceeds it).
   ``q1`` and ``qN`` are measured after a warm-up (until the caches are steady), in alternating
   blocks, so the drift of a noisy machine hits both alike; their ratio is the cost of tenant count.
   This is done twice, each time on a fresh process-wide Database (``close_db``/``init_db``): with
   the configured statement cache, and with a larger one (``--cache-size``, default 1000), to tell
   whether tuning the setting is enough. Each measurement reports p50/p99 and how many statements
   had to be prepared per request (counted on ``asyncpg.Connection.prepare``, which SQLAlchemy's
   adapter calls exactly on a cache miss), plus the server-side prepared statements per connection.

Servers come from ``OMS_DATABASE_URL`` / ``OMS_REDIS_URL`` when set, else the embedded ones are started
under ``.oms/bench``. The benchmark creates its own database ``oms_bench_<hex>`` on that server, uses a
Redis prefix of its own, and drops/cleans both at the end, also on error or Ctrl-C.

Output: human-readable lines while running, then exactly one final line of ``key=value`` pairs:
``provision_*_ms`` (per signup), ``q1first_*``, ``q1_*`` and ``qN_*`` latencies in ms with the default
cache, ``ratio_p50``/``ratio_p99`` = qN/q1, the same with ``_cache<size>`` for the larger cache,
``*_prepares_per_req`` (cache misses per request) and ``server_prepared_*_max`` (server-side prepared
statements on the busiest pooled connection).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field

import _common
import asyncpg
import httpx
from _common import PASSWORD, log, percentile
from tqdm import tqdm

QUERY = "{ viewer { role tenant { slug } } activity(first: 5) { edges { node { kind } } } }"

# Request loops are bounded: a measurement or a warm-up never exceeds MAX_SAMPLES requests.
MAX_SAMPLES = 2000


@dataclass
class Latency:
    """Latencies (ms) of one measurement, and how many statements asyncpg had to prepare meanwhile."""

    samples: list[float] = field(default_factory=list)
    prepares: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def prepares_per_request(self) -> float:
        return self.prepares / len(self.samples)

    def describe(self) -> str:
        return (
            f"p50 {self.p50:7.2f} ms  p99 {self.p99:7.2f} ms  ({len(self.samples)} requests, "
            f"{self.prepares_per_request:.2f} statements prepared per request)"
        )


class PrepareCounter:
    """Counts ``asyncpg.Connection.prepare`` calls: SQLAlchemy's asyncpg adapter prepares a statement
    exactly when it misses its per-connection cache, so this is the cache miss count."""

    def __init__(self) -> None:
        self.count = 0
        self._original = asyncpg.Connection.prepare
        counter = self

        async def prepare(conn, *args, **kwargs):
            counter.count += 1
            return await counter._original(conn, *args, **kwargs)

        self._patched = prepare

    def __enter__(self) -> PrepareCounter:
        asyncpg.Connection.prepare = self._patched
        return self

    def __exit__(self, *exc) -> None:
        asyncpg.Connection.prepare = self._original


@dataclass
class TenantCreds:
    slug: str
    token: str


class Bench:
    def __init__(self, client: httpx.AsyncClient, prepares: PrepareCounter) -> None:
        self.client = client
        self.prepares = prepares
        self._next: dict[int, int] = {}  # where each tenant list's round-robin cycle continues

    async def query(self, tenant: TenantCreds) -> float:
        """One authenticated GraphQL request; returns its latency in ms after checking the answer."""
        start = time.perf_counter()
        response = await self.client.post(
            "/graphql",
            json={"query": QUERY},
            headers={
                "authorization": f"Bearer {tenant.token}",
                "accept": "application/graphql-response+json",
            },
        )
        elapsed = (time.perf_counter() - start) * 1000
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"query failed for {tenant.slug}: {response.status_code} {body}")
        data = body["data"]
        if data["viewer"]["tenant"]["slug"] != tenant.slug:  # cheap isolation check while we are here
            raise RuntimeError(f"token of {tenant.slug} answered for {data['viewer']['tenant']['slug']}")
        if [e["node"]["kind"] for e in data["activity"]["edges"]] != ["tenant.provisioned"]:
            raise RuntimeError(f"unexpected activity for {tenant.slug}: {data['activity']}")
        return elapsed

    async def requests(self, tenants: list[TenantCreds], count: int, into: Latency | None = None) -> int:
        """``count`` sequential requests, round-robin over ``tenants`` (continuing the previous cycle).
        Records into ``into`` when given; returns how many statements were prepared meanwhile."""
        pos = self._next.get(id(tenants), 0)
        before = self.prepares.count
        for i in range(pos, pos + count):
            elapsed = await self.query(tenants[i % len(tenants)])
            if into is not None:
                into.samples.append(elapsed)
        self._next[id(tenants)] = (pos + count) % len(tenants)
        prepared = self.prepares.count - before
        if into is not None:
            into.prepares += prepared
        return prepared

    async def warm_up(self, tenants: list[TenantCreds], *, cap: int) -> int:
        """Full rounds over ``tenants`` until the caches are steady: a round that prepared nothing, or
        a thrashing one (from the third round on: half the requests or more prepared, and no better
        than the round before). Requests reach two pooled connections in a shifting pattern, so the
        first two rounds are both cold. At most ``cap`` requests; returns how many were made."""
        made, rounds, last = 0, 0, 0
        while made < cap:
            count = min(len(tenants), cap - made)
            prepared = await self.requests(tenants, count)
            made, rounds = made + count, rounds + 1
            thrashing = rounds >= 3 and prepared >= len(tenants) / 2 and prepared >= 0.9 * last
            if prepared == 0 or thrashing:
                break
            last = prepared
        return made

    async def compare(
        self,
        one: list[TenantCreds],
        many: list[TenantCreds],
        *,
        q1_samples: int,
        qn_samples: int,
        rounds: int,
        single_warmup: int,
    ) -> tuple[Latency, Latency, int]:
        """Warm up, then alternate short blocks of 1-tenant and N-tenant requests, so that the drift of
        a noisy machine (other processes, CPU frequency) hits both sides alike. A block of N-tenant
        requests is far shorter than the cache, so it cannot evict the single tenant's statement.
        At most ``rounds`` warm-up rounds. Returns (q1, qN, warm-up requests)."""
        await self.requests(one, single_warmup)
        warm = await self.warm_up(many, cap=min(MAX_SAMPLES, rounds * len(many)))
        q1, qn = Latency(), Latency()
        blocks = max(1, q1_samples // 10)
        for b in range(blocks):
            await self.requests(one, _share(q1_samples, blocks, b), q1)
            await self.requests(many, _share(qn_samples, blocks, b), qn)
        return q1, qn, warm


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


async def provision(db, index: int) -> tuple[float, TenantCreds]:
    """Sign one tenant up; returns (ms spent in signup, credentials). Runs its first job inline."""
    from app.activity.jobs import tenant_provisioned
    from tenants.service import signup

    slug = f"bench_{index:05d}"
    start = time.perf_counter()
    tenant, tokens = await signup(
        db,
        organization=f"Bench group {index}",
        tenant_name=f"Bench brand {index}",
        slug=slug,
        email=f"owner{index}@{slug}.example.com",
        password=PASSWORD,
        name="Bench owner",
    )
    elapsed = (time.perf_counter() - start) * 1000
    # What the worker would do once the outbox relays the job; not part of the signup request.
    await tenant_provisioned(
        None, outbox_id=0, tenant_id=tenant.id, schema_name=tenant.schema_name, slug=tenant.slug
    )
    return elapsed, TenantCreds(slug, tokens.access_token)


async def server_prepared_statements(database) -> list[int]:
    """Server-side prepared statements held by each idle pooled connection: bounded by the cache size
    if evicted statements are really closed on the server."""
    from sqlalchemy import text

    idle = database.engine.pool.checkedin()
    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(database.engine.connect()) for _ in range(max(idle, 1))]
        return [await c.scalar(text("SELECT count(*) FROM pg_prepared_statements")) for c in conns]


async def run(args: argparse.Namespace, db_url: str) -> dict[str, str]:
    from app import db as dbmod
    from app.asgi import create_app
    from app.config import get_settings
    from app.migrate import upgrade_control
    from app.redis import close_redis

    n = args.tenants
    default_cache = get_settings().statement_cache_size
    # A request takes 10-20 ms on 2 shared cores and a signup 0.2-0.7 s (it grows with the tenant
    # migrations): --quick keeps its request counts small to stay under a minute even on a busy machine.
    q1first_samples = 30 if args.quick else 300
    q1_samples = 40 if args.quick else 600
    qn_samples = min(MAX_SAMPLES, max(n, 100 if args.quick else 600))  # at least one full round
    warmup_rounds = 3 if args.quick else 4
    single_warmup = 10 if args.quick else 30
    big = f"cache{args.cache_size}"

    def fmt(value: float) -> str:
        return f"{value:.2f}"

    def reinit(cache: int | None):
        """A fresh process-wide Database (fresh pool, empty caches) with the given statement cache."""
        return dbmod.init_db(db_url, statement_cache_size=cache)

    database = reinit(None)
    try:
        async with database.engine.begin() as conn:
            await upgrade_control(conn)
        app = create_app(manage_resources=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        with PrepareCounter() as prepares:
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
                bench = Bench(client, prepares)
                log(f"provisioning {n} tenants through tenants.service.signup ...")
                durations: list[float] = []
                tenants: list[TenantCreds] = []
                for i in tqdm(range(n), desc="signup", unit="tenant", file=sys.stderr, mininterval=0.5):
                    ms, creds = await provision(dbmod.get_db(), i)
                    durations.append(ms)
                    tenants.append(creds)
                    if i == 0:
                        q1first = Latency()
                        await bench.requests(tenants, single_warmup)
                        await bench.requests(tenants, q1first_samples, q1first)
                        log(f"{'q1first (1 tenant exists)':<34}{q1first.describe()}")
                tenth = max(1, n // 10)
                first, last = statistics.median(durations[:tenth]), statistics.median(durations[-tenth:])
                log(
                    f"provisioning: median {statistics.median(durations):.1f} ms, "
                    f"p95 {percentile(durations, 95):.1f} ms, first tenth {first:.1f} ms, "
                    f"last tenth {last:.1f} ms ({sum(durations) / 1000:.1f} s in signup)"
                )
                one = tenants[:1]
                results: dict[str, tuple[Latency, Latency, list[int]]] = {}
                for label, cache in (("default", None), (big, args.cache_size)):
                    await dbmod.close_db()
                    database = reinit(cache)
                    size = default_cache if cache is None else cache
                    log(f"statement cache {size}: warming up, then interleaving 1-tenant and {n}-tenant runs")
                    q1, qn, warm = await bench.compare(
                        one,
                        tenants,
                        q1_samples=q1_samples,
                        qn_samples=qn_samples,
                        rounds=warmup_rounds,
                        single_warmup=single_warmup,
                    )
                    held = await server_prepared_statements(database)
                    log(f"{f'  q1 (one tenant of {n})':<34}{q1.describe()}")
                    log(f"{f'  qN (round-robin over {n})':<34}{qn.describe()}")
                    log(f"  warm-up {warm} requests; server-side prepared statements per connection: {held}")
                    results[label] = (q1, qn, held)
    finally:
        await close_redis()
        await dbmod.close_db()

    q1, qn, held = results["default"]
    q1_big, qn_big, held_big = results[big]
    out = {
        "tenants": str(n),
        "statement_cache": str(default_cache),
        "provision_median_ms": fmt(statistics.median(durations)),
        "provision_p95_ms": fmt(percentile(durations, 95)),
        "provision_first10pct_median_ms": fmt(first),
        "provision_last10pct_median_ms": fmt(last),
        "q1first_p50_ms": fmt(q1first.p50),
        "q1first_p99_ms": fmt(q1first.p99),
        "q1_p50_ms": fmt(q1.p50),
        "q1_p99_ms": fmt(q1.p99),
        "qN_p50_ms": fmt(qn.p50),
        "qN_p99_ms": fmt(qn.p99),
        "ratio_p50": fmt(qn.p50 / q1.p50),
        "ratio_p99": fmt(qn.p99 / q1.p99),
        f"q1_{big}_p50_ms": fmt(q1_big.p50),
        f"qN_{big}_p50_ms": fmt(qn_big.p50),
        f"qN_{big}_p99_ms": fmt(qn_big.p99),
        f"ratio_{big}_p50": fmt(qn_big.p50 / q1_big.p50),
        f"ratio_{big}_p99": fmt(qn_big.p99 / q1_big.p99),
        "qN_prepares_per_req": fmt(qn.prepares_per_request),
        f"qN_{big}_prepares_per_req": fmt(qn_big.prepares_per_request),
        "server_prepared_max": str(max(held)),
        f"server_prepared_{big}_max": str(max(held_big)),
        "qN_requests": str(qn_samples),
    }
    verdict(n, default_cache, args.cache_size, q1, qn, q1_big, qn_big)
    return out


# Below this many statements prepared per request the cache holds the working set (what is left is
# warm-up residue: a tenant's first request on the other pooled connection); a thrashing cache
# prepares about one statement per request.
THRASH = 0.25


def verdict(n: int, cache: int, big_cache: int, q1: Latency, qn: Latency, q1_big: Latency, qn_big: Latency):
    """The closing note: is the default cache too small for this many tenants, and does tuning help?

    Latencies are compared as qN/q1 ratios of the same phase (interleaved), not across phases: the two
    phases run minutes apart and a shared machine drifts more than the effect being measured."""
    misses, misses_big = qn.prepares_per_request, qn_big.prepares_per_request
    ratio, ratio_big = qn.p50 / q1.p50, qn_big.p50 / q1_big.p50
    ratio99, ratio99_big = qn.p99 / q1.p99, qn_big.p99 / q1_big.p99
    log()
    log(
        f"cache {cache}: qN/q1 = {ratio:.2f} at p50, {ratio99:.2f} at p99, {misses:.2f} statements prepared "
        f"per request; cache {big_cache}: {ratio_big:.2f}, {ratio99_big:.2f}, {misses_big:.2f}."
    )
    if misses < THRASH:
        log(
            f"note: at {n} tenants the working set fits the default cache ({cache}): no tuning needed at "
            "this size. The cliff comes once tenants x tenant-queries + shared statements exceed it."
        )
    elif misses_big < THRASH:
        gain = (ratio - ratio_big) * 100
        worth = gain >= 10  # smaller differences are run-to-run noise here; p99 is noisier still
        log(
            f"note: at {n} tenants the default cache ({cache}) thrashes and {big_cache} holds the working "
            f"set, which changes the p50 gap to one tenant by {-gain:+.0f}% of q1. "
            + (
                "Worth raising OMS_STATEMENT_CACHE_SIZE above tenants x tenant-queries + shared "
                "statements (it is per pooled connection, so mind server memory)."
                if worth
                else "That is within run-to-run noise: a re-prepare is one extra round trip, small next "
                "to the rest of a request, so tuning is optional for this query; it matters more as "
                "tenant-queries per request multiply."
            )
        )
    else:
        log(
            f"note: even a cache of {big_cache} thrashes at {n} tenants; raising the size only moves the "
            "cliff (and costs server memory per connection). Statements that do not embed the schema "
            "(search_path per tenant session) would keep one SQL text for all tenants."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=None, help="how many tenants (default 200)")
    parser.add_argument("--quick", action="store_true", help="50 tenants and fewer requests (< 60 s)")
    parser.add_argument(
        "--cache-size", type=int, default=1000, help="the larger statement cache to compare with (1000)"
    )
    args = parser.parse_args(argv)
    if args.tenants is None:
        args.tenants = 50 if args.quick else 200
    if args.tenants < 1:
        parser.error("--tenants must be at least 1")

    return _common.run(
        lambda db_url: run(args, db_url),
        env={"OMS_ACCESS_TOKEN_TTL": "7200"},  # tokens of the first tenants must outlive a long run
    )


if __name__ == "__main__":
    _common.main(main)
