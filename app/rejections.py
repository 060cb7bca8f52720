"""A budget for deliveries refused at the webhook doors, so refusals cannot fill the inbox.

A payload with a bad signature for a channel (or location) that exists is kept in the inbox as
``rejected``: the tenant sees who is knocking and nothing authentic is ever lost. Keeping costs storage,
so each sender gets :data:`BUDGET` refused payloads per :data:`WINDOW_S` for one tenant and target
(channel or location); past it the door answers 429 with ``Retry-After`` and keeps nothing. Counted in
Redis (a fixed window per key, under ``settings.redis_prefix``), so every process shares the budget.

Ids that do not exist get no budget at all: nothing is stored for them (see ``app/api/webhooks.py``).
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from app.config import get_settings
from app.redis import get_redis

log = logging.getLogger(__name__)

BUDGET = 30  # refused payloads kept per sender, tenant and target
WINDOW_S = 60


def _key(door: str, tenant_id: int, target_id: int, address: str) -> str:
    return f"{get_settings().redis_prefix}:rejected:{door}:{tenant_id}:{target_id}:{address}"


async def retry_after(door: str, tenant_id: int, target_id: int, address: str) -> int | None:
    """Count one refused payload of ``address`` for ``door`` (channel | fulfilment) of a tenant's target:
    None when it may be kept, else the seconds until this sender's budget is renewed."""
    key = _key(door, tenant_id, target_id, address)
    try:
        redis = await get_redis()
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=WINDOW_S, nx=True)  # starts the window
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = await pipe.execute()
    except (RedisError, OSError):  # no budget to check: keep nothing refused, never fail the door
        log.warning("refusal budget unavailable (Redis); refused %s payload not kept", door, exc_info=True)
        return WINDOW_S
    return None if count <= BUDGET else max(int(ttl), 1)
