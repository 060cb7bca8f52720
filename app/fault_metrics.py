"""What the fault nets do, for the API's ``/metrics``: the worker serves no HTTP, so it counts in a Redis
hash (``<OMS_REDIS_PREFIX>:metrics:faults``) that the API reads at scrape time, next to the outbox's
state read from the database (two counts on partial indexes).

* ``oms_fault_events_total{event}``: ``stuck_<outcome>`` for each order the stuck-order sweep looked
  at (``app.routing.stuck``), ``outbox_<outcome>`` for rows the relay's lease check handed over again
  (``again``) or found done (``done``). A Redis restarting empty resets them, as counters may.
* ``oms_outbox_rows{state}``: ``pending`` (not handed to Redis yet), ``unfinished`` (handed over, job not
  known to have run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.asyncio import Redis

from app.config import get_settings

log = logging.getLogger(__name__)


def _key() -> str:
    return f"{get_settings().redis_prefix}:metrics:faults"


async def count(redis: Redis | None, prefix: str, outcomes: Mapping[str, int]) -> None:
    """Add ``outcomes`` as ``<prefix>_<outcome>`` events; a Redis that is down costs the counts only."""
    if redis is None or not any(outcomes.values()):
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for outcome, n in outcomes.items():
                if n:
                    pipe.hincrby(_key(), f"{prefix}_{outcome}", n)
            await pipe.execute()
    except Exception as exc:
        log.warning("could not count %s events: %s", prefix, type(exc).__name__)


async def render(redis: Redis | None, outbox_rows: Mapping[str, int] | None) -> bytes:
    """The Prometheus text of the fault counters and the outbox gauges (``app.outbox.row_counts``; None
    when the database did not answer)."""
    lines = [
        "# HELP oms_fault_events_total What the worker's fault nets did.",
        "# TYPE oms_fault_events_total counter",
    ]
    try:
        counts = await redis.hgetall(_key()) if redis is not None else {}
        for event, n in sorted(counts.items()):
            lines.append(f'oms_fault_events_total{{event="{event.decode()}"}} {int(n)}')
    except Exception as exc:
        log.warning("fault counters unavailable: %s", type(exc).__name__)
    lines += ["# HELP oms_outbox_rows Outbox rows whose job has not run.", "# TYPE oms_outbox_rows gauge"]
    for state, n in (outbox_rows or {}).items():
        lines.append(f'oms_outbox_rows{{state="{state}"}} {n}')
    return ("\n".join(lines) + "\n").encode()
