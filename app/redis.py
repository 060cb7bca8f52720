"""The process-wide Redis connection (an arq pool, which is a redis-py client too)."""

from __future__ import annotations

import dataclasses

from arq.connections import ArqRedis, RedisSettings, create_pool

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
