"""What every benchmark shares: finding the project, a database and Redis prefix of its own, the
``OMS_*`` environment, clean-up on any exit, and the closing ``key=value`` line (DESIGN §8).

Import it first in a benchmark script (``import _common`` / ``from _common import ...``): a script's
own directory comes first on ``sys.path``, and ``bench/tenants.py`` sits there, so on import this module
puts the project root first and takes ``bench/`` off the path. ``import tenants`` then finds the project
package, not that script, from any working directory.

``run(measure)`` is the whole life of a benchmark:

1. servers from ``OMS_DATABASE_URL`` / ``OMS_REDIS_URL`` when set, else the embedded ones are started
   under ``.oms/bench`` (``app.devstack.local_services``);
2. a database ``oms_bench_<hex>`` is created on that server (``app.db.create_database``), and the
   ``OMS_*`` variables point at it, with a Redis prefix and arq queue of its own;
3. ``await measure(db_url)`` runs; SIGTERM cancels it like Ctrl-C does, so every ``finally`` in it runs on
   a healthy event loop (an exception raised from a signal handler could land inside asyncpg's protocol
   code and leave a pooled connection that never comes back);
4. the database is dropped and the Redis keys deleted, also on error, Ctrl-C or SIGTERM;
5. the figures ``measure`` returned are printed as the last line, ``key=value`` pairs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(PROJECT_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() not in (_HERE, PROJECT_ROOT)
]

RUN_ID = secrets.token_hex(4)
BENCH_DB = f"oms_bench_{RUN_ID}"
REDIS_PREFIX = f"oms:bench:{RUN_ID}"
PASSWORD = "correct horse battery staple"

Measure = Callable[[str], Awaitable[dict[str, str]]]


def log(message: str = "") -> None:
    """A line of progress; goes around any tqdm bar on stderr."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _terminate(signum, frame) -> None:  # outside the measurement, SIGTERM behaves like Ctrl-C
    raise KeyboardInterrupt


async def _cancel_on_sigterm(measure: Measure, db_url: str) -> dict[str, str]:
    """``measure`` with SIGTERM turned into a cancellation of it, as asyncio.run does for Ctrl-C."""
    from app.config import get_settings

    get_settings.cache_clear()  # the OMS_* variables of this run, whatever was read before
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    try:
        return await measure(db_url)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _terminate)


async def _cleanup(server_url: str, redis_url: str) -> None:
    import redis.asyncio as aioredis

    from app.db import drop_database

    await drop_database(server_url, BENCH_DB)
    r = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{REDIS_PREFIX}*", count=1000)]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


def run(measure: Measure, *, env: dict[str, str] | None = None) -> int:
    """Set up, ``measure``, clean up, print the figures. ``env``: extra ``OMS_*`` variables."""
    from app import devstack
    from app.db import create_database, with_database

    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    with devstack.local_services(PROJECT_ROOT / ".oms" / "bench") as (server_url, redis_url):
        asyncio.run(create_database(server_url, BENCH_DB))
        log(f"database {BENCH_DB} created; redis prefix {REDIS_PREFIX}")
        try:
            db_url = with_database(server_url, BENCH_DB)
            os.environ.update(
                OMS_DATABASE_URL=db_url,
                OMS_REDIS_URL=redis_url,
                OMS_ENV="test",
                OMS_SECRET_KEY=f"bench-secret-{secrets.token_hex(16)}",
                OMS_QUEUE_NAME=f"{REDIS_PREFIX}:queue",
                OMS_REDIS_PREFIX=REDIS_PREFIX,
                **(env or {}),
            )
            out = asyncio.run(_cancel_on_sigterm(measure, db_url))
        except asyncio.CancelledError:  # SIGTERM while measuring
            raise KeyboardInterrupt from None
        finally:
            asyncio.run(_cleanup(server_url, redis_url))
            log(f"database {BENCH_DB} dropped")
    log(f"total {time.perf_counter() - started:.1f} s")
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


def main(entry: Callable[[], int]) -> None:
    """The ``if __name__ == "__main__"`` body: exit 130 after an interruption, as a shell expects."""
    try:
        sys.exit(entry())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


async def bench_tenant(database, slug: str):
    """The control schema, then one tenant signed up as a brand would be: (TenantRef, its owner's tokens).
    ``slug`` also names the owner's e-mail domain."""
    from app.db import TenantRef
    from app.migrate import upgrade_control
    from tenants.service import signup

    async with database.engine.begin() as conn:
        await upgrade_control(conn)
    row, tokens = await signup(
        database,
        organization="Bench group",
        tenant_name="Bench brand",
        slug=slug,
        email=f"owner@{slug.replace('_', '-')}.example.com",
        password=PASSWORD,
        name="Bench owner",
    )
    return TenantRef(row.id, row.schema_name), tokens


async def listed_product(session, channel_id: int, code: str, item: str) -> int:
    """A material sold as a single product of the same code, listed on the channel with SKU id ``code``
    and item id ``item``; the material's id (stock is the caller's)."""
    from app.catalog import listings
    from app.catalog import service as catalog

    material = await catalog.create_material(session, {"code": code, "name": f"Material {code}"})
    product = await catalog.create_product(
        session, {"code": code, "name": code, "kind": "single"}, [(material.id, 1)]
    )
    await listings.create_listing(
        session, channel_id=channel_id, product_id=product.id, external_item_id=item, external_sku_id=code
    )
    return material.id


class Connection:
    """A lean HTTP/1.1 client for load: one keep-alive connection per sender, requests written as bytes,
    answers read by Content-Length. httpx spends more CPU per request than the API it would measure (the
    load generator shares the two cores with the server), so a benchmark that hammers one endpoint sends
    through this; everything else keeps httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        """POST and return (status, JSON answer); reconnects once when the server closed an idle one."""
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "content-length": len(body)}.items())
            self.writer.write(f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\n{head}\r\n".encode() + body)
            try:
                await self.writer.drain()
                return await self._answer()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _answer(self) -> tuple[int, dict]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed by the server")
        status = int(status_line.split()[1])
        length, closing = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                closing = True
        body = await self.reader.readexactly(length)
        if closing:
            self.close()
        return status, json.loads(body) if body else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
