"""The process-wide Redis connection (an arq pool, which is a redis-py client too)."""

from __future__ import annotations

import dataclasses
import logging
import time

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from app.config import get_settings

_redis: ArqRedis | None = None


def redis_settings(url: str | None = None) -> RedisSettings:
    url = url or get_settings().redis_url
    if not url:
        raise RuntimeError("OMS_REDIS_URL is not set (run `oms dev` for the embedded default)")
    # Fail fast rather than arq's default of retrying for a long time: readiness and the outbox relay retry
    # on their own schedule.
    return dataclasses.replace(RedisSettings.from_dsn(url), conn_retries=1)


async def get_redis() -> ArqRedis:
    global _redis
    if _redis is None:
        settings = get_settings()
        _redis = await create_pool(redis_settings(), default_queue_name=settings.queue_name)
    return _redis


async def close_redis() -> None:
    global _redis
    if _redis is not None:
        await _redis.aclose()
        _redis = None


# What "Redis is not there" looks like: refused or broken connections, timeouts, a server still loading.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)  # OSError covers TimeoutError


def is_redis_down(exc: BaseException) -> bool:
    """True for REDIS_DOWN, and for the WatchError redis-py raises when the connection under a WATCH
    is lost."""
    if isinstance(exc, WatchError):
        return isinstance(exc.__context__, REDIS_DOWN)
    return isinstance(exc, REDIS_DOWN)


class RedisOutage:
    """One loop's view of a Redis outage (the worker's polling, the outbox relay): it logs the start
    once and the end once, not a line per try, and says how long to wait before the next try (doubling
    from ``first_s`` up to ``max_s``), so an outage of any length costs a try every few seconds."""

    def __init__(self, who: str, log: logging.Logger, *, first_s: float = 0.2, max_s: float = 5.0):
        self.who, self.log, self.first_s, self.max_s = who, log, first_s, max_s
        self.since: float | None = None
        self.tries = 0
        self.wait_s = 0.0  # before the next try, while down

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed try; returns the seconds to wait before the next one."""
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s: Redis unreachable (%s: %s); waiting for it, retrying with back-off",
                self.who,
                type(exc).__name__,
                exc,
            )
        self.tries += 1
        self.wait_s = min(self.max_s, self.first_s * 2 ** (self.tries - 1))
        return self.wait_s

    def ok(self) -> None:
        """Note a successful try: ends the outage (logged once) if there was one."""
        if self.since is not None:
            self.log.info(
                "%s: Redis is back after %.1f s (%s tries); resuming",
                self.who,
                time.monotonic() - self.since,
                self.tries,
            )
            self.since, self.tries = None, 0
