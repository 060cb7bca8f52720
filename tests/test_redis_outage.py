"""A Redis outage under a real ``oms worker`` process: the test starts its own ``redis-server``, kills it
under the worker, and starts it again empty. The worker (and the outbox relay inside it) must wait,
log the outage once, and carry on: an order placed during the outage and one placed after it are both
routed, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from app.config import PROJECT_ROOT, get_settings
from app.db import get_db
from app.orders.models import OrderStatus
from app.outbox import OutboxMessage
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    assert_ledger,
    decisions,
    fulfillment_orders,
    ingest,
    make_shop,
    order_of,
    route_job,
    warehouse,
)

ROUTED = (OrderStatus.routed, OrderStatus.released)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A ``redis-server`` of the test's own that keeps nothing: a restart comes back empty."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not come up")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis():
    server = RedisServer(_free_port())
    server.start()
    yield server
    server.kill()


def spawn_worker(redis_url: str, log: Path) -> subprocess.Popen:
    """``oms worker`` as its own process against the test database and ``redis_url``; its JSON log lines
    go to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "OMS_REDIS_URL": redis_url},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    process.log = log
    return process


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as a supervisor stops it; the exit code (SIGKILL after 15 s, which fails the check)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            return -9
    return process.returncode


@pytest.fixture
def worker_process(own_redis, tmp_path):
    process = spawn_worker(own_redis.url, tmp_path / "worker.log")
    try:
        yield process
    finally:
        stop(process)


def log_lines(log: Path) -> list[dict]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(raw))
    return lines


async def wait_until(check, what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def worker_polls(url: str) -> bool:
    """The worker writes its health key on its first poll."""
    r = aioredis.from_url(url)
    try:
        return bool(await r.exists(f"{get_settings().queue_name}:health-check"))
    except OSError:
        return False
    finally:
        await r.aclose()


async def quiet(ref, url: str) -> bool:
    """No outbox row of the tenant due and unsent, and the worker's queue empty."""
    async with get_db().control_session() as session:
        due = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == ref.id,
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.available_at <= func.now(),
            )
        )
    r = aioredis.from_url(url)
    try:
        return not due and not await r.zcard(get_settings().queue_name)
    finally:
        await r.aclose()


async def test_the_worker_waits_out_a_redis_restart_and_routes_every_order_once(
    db, tenant_a, own_redis, worker_process
):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    await wait_until(lambda: worker_polls(own_redis.url), "the worker's first poll")
    await wait_until(lambda: quiet(ref, own_redis.url), "the shop's own jobs to run")

    own_redis.kill()
    during = await ingest(shop, f"DURING-{secrets.token_hex(3)}")  # its route job cannot be handed over
    await asyncio.sleep(3)
    assert worker_process.poll() is None, "oms worker exited when Redis went away"
    assert (await route_job(ref, during)).sent_at is None, "the relay must keep the row unsent"

    own_redis.start()  # same port, empty
    after = await ingest(shop, f"AFTER-{secrets.token_hex(3)}")

    async def both_routed() -> bool:
        return all([(await order_of(ref, o)).status in ROUTED for o in (during, after)])

    await wait_until(both_routed, "both orders to be routed")
    await wait_until(lambda: quiet(ref, own_redis.url), "the tenant's jobs to run")
    assert worker_process.poll() is None
    for order_id in (during, after):
        assert (await order_of(ref, order_id)).status in ROUTED
        assert len(await decisions(ref, order_id)) == 1
        assert len(await fulfillment_orders(ref, order_id)) == 1
    await assert_ledger(ref)

    lines = log_lines(worker_process.log)
    for logger in ("app.worker", "app.outbox"):
        down = [x for x in lines if x["logger"] == logger and "Redis unreachable" in x["msg"]]
        back = [x for x in lines if x["logger"] == logger and "Redis is back" in x["msg"]]
        assert len(down) == 1 and len(back) == 1, (logger, down, back)


async def test_a_worker_started_while_redis_is_down_waits_for_it_and_stops_cleanly_on_sigterm(
    db, own_redis, tmp_path
):
    own_redis.kill()
    process = spawn_worker(own_redis.url, tmp_path / "worker.log")
    try:
        await asyncio.sleep(3)
        assert process.poll() is None, "oms worker exited: Redis was not there at start"
        own_redis.start()
        await wait_until(lambda: worker_polls(own_redis.url), "the worker's first poll", within_s=30)
        own_redis.kill()  # and a supervisor stops it in the middle of the next outage
        await asyncio.sleep(1)
        assert process.poll() is None
    finally:
        code = stop(process)
    assert code == 0, code
    lines = log_lines(process.log)
    down = [x for x in lines if x["logger"] == "app.worker" and "Redis unreachable" in x["msg"]]
    assert len(down) == 2, down  # once per outage, not once per try
