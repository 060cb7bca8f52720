"""Real processes for fault tests: a ``redis-server`` of the test's own, an ``oms worker`` subprocess,
and waiting on them (see tests/server_support.py for ``oms serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

from app.config import PROJECT_ROOT, get_settings
from tests.server_support import free_port


class RedisServer:
    """A ``redis-server`` of the test's own that keeps nothing: a restart comes back empty."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
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


def spawn_worker(redis_url: str, log: Path, **env: str) -> subprocess.Popen:
    """``oms worker`` as its own process against the test database and ``redis_url`` (``OMS_*``
    overrides in ``env``); its JSON log lines go to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "OMS_REDIS_URL": redis_url, **{f"OMS_{k}": v for k, v in env.items()}},
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


def log_lines(log: Path) -> list[dict]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(raw))
    return lines


async def wait_until(check, what: str, within_s: float = 60.0, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
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
