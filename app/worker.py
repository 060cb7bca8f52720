"""arq WorkerSettings: job functions, the outbox relay, start-up and shut-down.

Every job is reached only through the outbox (``app.outbox.enqueue``) and must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry, cron, func
from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Function, Worker
from redis.exceptions import RedisError

from app.activity.jobs import tenant_provisioned
from app.config import get_settings
from app.db import close_db, db_ready, init_db, is_transient
from app.fulfillment.jobs import (
    cancel_fulfilment,
    deliver_connector_message,
    fulfilment_accept_timeout,
    fulfilment_sweep,
    location_outage,
    pickup_expiry,
    release_fulfilment,
    reroute_fulfilment,
)
from app.inbox_replay import inbox_sweep
from app.inventory.jobs import sync_channel_stock
from app.logs import configure_logging
from app.orders.jobs import resume_waiting_orders, run_order_automation
from app.outbox import DoneMarks, run_relay
from app.redis import REDIS_DOWN, RedisOutage, is_redis_down, redis_settings
from app.routing.jobs import route_order, stuck_order_sweep

log = logging.getLogger("app.worker")

# A transient database error (a lost race, a dropped connection) retries the job after 0.5 s, 1 s,
# 2 s ... up to 30 s between tries: MAX_TRIES tries span about two minutes, enough for a failover or a
# server restart; then arq gives up ("max 10 retries exceeded") and the job counts as failed.
MAX_TRIES = 10
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0

# Timeouts. arq's default is 300 s, and a job whose worker was killed stays locked for its timeout plus
# 10 s before another worker may run it; an order waits that long. Jobs on an order's way (route,
# release, accept/pick-up expiry, re-route, automations, connector messages) and a new tenant's
# provisioning touch a few rows and make at most one HTTP call (10 s, connectors.TIMEOUT_S): SHORT. Jobs
# over many rows or remote calls (channel stock sync, a page of waiting orders, a location's outage)
# and the sweeps: LONG. SHORT is OMS_SHORT_JOB_S (default 30 s), read when this module is imported.
SHORT_JOB_S = get_settings().short_job_s
LONG_JOB_S = 120.0
OWN_TIMEOUT = 0.8  # share of a job's timeout after which it gives up and is retried (arq's fails it)


def retry_delay(job_try: int) -> float:
    """Seconds before try ``job_try + 1`` of a job that met a transient error (or its timeout)."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** max(job_try - 1, 0))


def job(
    coroutine: Callable[..., Awaitable[Any]], *, timeout_s: float, max_tries: int = MAX_TRIES
) -> Function:
    """An arq function for a job: transient database errors retry it with back-off, a killed worker
    holds it back for its own timeout (+10 s), not the longest one, and a job that ran (returned, or
    failed for good) has its outbox row marked done (``app.outbox.DoneMarks``).

    A job that runs past OWN_TIMEOUT of ``timeout_s`` (a starved CPU, a lock held long) is cancelled
    here, its transaction rolled back, and retried with back-off like a transient error; arq's timeout
    (``timeout_s``) only catches a job that ignores cancellation. Left to arq, a timed-out job fails for
    good and its order waits for the stuck-order sweep."""

    @functools.wraps(coroutine)
    async def run(ctx: dict, *args: Any, **kwargs: Any) -> Any:
        await _hold_in_progress(ctx, timeout_s)
        try:
            async with asyncio.timeout(timeout_s * OWN_TIMEOUT):
                result = await coroutine(ctx, *args, **kwargs)
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, TimeoutError)):
                if not isinstance(exc, Retry):  # arq runs it again: not done yet
                    _ran(ctx, kwargs)
                raise
            delay = retry_delay(ctx.get("job_try") or 1)
            log.warning(
                "%s: transient error (%s), try %s of %s, again in %.1f s",
                coroutine.__name__,
                type(exc).__name__,
                ctx.get("job_try"),
                max_tries,
                delay,
            )
            raise Retry(defer=delay) from exc
        _ran(ctx, kwargs)
        return result

    return func(run, name=coroutine.__name__, timeout=timeout_s, max_tries=max_tries)


def _ran(ctx: dict, kwargs: dict[str, Any]) -> None:
    marks, outbox_id = ctx.get("outbox_done"), kwargs.get("outbox_id")
    if marks is not None and outbox_id is not None:
        marks.add(outbox_id)


async def _hold_in_progress(ctx: dict, timeout_s: float) -> None:
    """arq marks a started job in progress for the LONGEST timeout of all functions + 10 s (one value
    per worker); shorten the mark to this job's own timeout + 10 s, so a dead worker's short job is
    free again soon. The job is cancelled at its timeout, so the mark still outlives any run."""
    redis, job_id = ctx.get("redis"), ctx.get("job_id")
    if redis is None or not job_id:
        return
    try:
        await redis.pexpire(in_progress_key_prefix + job_id, int((timeout_s + 10) * 1000))
    except (RedisError, OSError) as exc:  # the job itself may still run; arq's longer mark stays
        log.warning("could not shorten the in-progress mark of %s: %s", job_id, type(exc).__name__)


FUNCTIONS = [
    job(tenant_provisioned, timeout_s=SHORT_JOB_S),
    job(sync_channel_stock, timeout_s=LONG_JOB_S),
    job(run_order_automation, timeout_s=SHORT_JOB_S),
    job(resume_waiting_orders, timeout_s=LONG_JOB_S),
    job(route_order, timeout_s=SHORT_JOB_S),
    job(release_fulfilment, timeout_s=SHORT_JOB_S),
    job(cancel_fulfilment, timeout_s=SHORT_JOB_S),
    job(fulfilment_accept_timeout, timeout_s=SHORT_JOB_S),
    job(reroute_fulfilment, timeout_s=SHORT_JOB_S),
    job(location_outage, timeout_s=LONG_JOB_S),
    job(pickup_expiry, timeout_s=SHORT_JOB_S),
    job(deliver_connector_message, timeout_s=SHORT_JOB_S),
]

# Periodic safety nets (not data changes of their own: they call the idempotent job functions).
CRON_JOBS = [
    cron(fulfilment_sweep, name="fulfilment_sweep", second=0, unique=True, timeout=LONG_JOB_S),
    cron(inbox_sweep, name="inbox_sweep", second=30, unique=True, timeout=LONG_JOB_S),
]


def _every(seconds: int) -> set[int] | int:
    """arq's ``second=`` for a cron every ``seconds`` (whole minutes: once a minute, at second 15)."""
    return set(range(0, 60, seconds)) if 0 < seconds < 60 else 15


def cron_jobs() -> list:
    """The crons; the stuck-order sweep's period comes from ``OMS_STUCK_SWEEP_EVERY_S``."""
    every = get_settings().stuck_sweep_every_s
    stuck = cron(
        stuck_order_sweep, name="stuck_order_sweep", second=_every(every), unique=True, timeout=LONG_JOB_S
    )
    return [*CRON_JOBS, stuck]


async def startup(ctx: dict) -> None:
    # A worker embedded in a process that already has a Database (oms dev, tests) must not close it.
    ctx["owns_db"] = not db_ready()
    ctx["db"] = db = init_db()
    ctx["relay_stop"] = stop = asyncio.Event()
    ctx["outbox_done"] = done = DoneMarks()
    ctx["relay"] = asyncio.create_task(
        run_relay(db, ctx["redis"], queue_name=get_settings().queue_name, stop=stop, done=done),
        name="outbox-relay",
    )


async def shutdown(ctx: dict) -> None:
    ctx["relay_stop"].set()
    await ctx["relay"]
    if ctx["owns_db"]:
        await close_db()


class WorkerSettings:
    """arq settings; Redis and the queue name come from OMS_* at run time (see make_worker)."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS  # the fixed ones; make_worker adds the stuck-order sweep (cron_jobs())
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    job_timeout = LONG_JOB_S  # every job and cron names its own; this only bounds one that forgets
    keep_result = 3600  # while a result is kept, re-enqueueing the same outbox id is refused by arq
    poll_delay = 0.05  # arq's default 0.5 s adds ~250 ms to every hop of an order's way through jobs


class OmsWorker(Worker):
    """arq's Worker, riding out Redis outages. arq lets the first Redis error of a poll end ``main``,
    and the process exits within one poll; the outbox relay lives in this process, so a long-running
    worker instead waits (logging the outage once), retries with back-off and carries on when Redis is
    back. A burst worker (a one-off drain) still stops on the error: its caller wants to know."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_outage = RedisOutage("worker", log, first_s=0.5)

    async def main(self) -> None:
        if self._pool is None and not self.burst:
            self._pool = await self._connect()
        await super().main()

    async def _connect(self) -> ArqRedis:
        """The worker's Redis pool, once Redis answers (arq's own retries would log every try)."""
        settings = dataclasses.replace(self.redis_settings, conn_retries=0)
        while True:
            try:
                pool = await create_pool(
                    settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as exc:
                await asyncio.sleep(self.redis_outage.failed(exc))
            else:
                self.redis_outage.ok()
                return pool

    async def _poll_iteration(self) -> None:
        if self.burst:
            return await super()._poll_iteration()
        try:
            await super()._poll_iteration()
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            await asyncio.sleep(self.redis_outage.failed(exc))
        else:
            self.redis_outage.ok()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time: arq takes a slot before it asks Redis whether the job is free, and
        a Redis error there would keep the slot for good (enough outages and the worker takes nothing)."""
        for job_id in job_ids:
            if self.job_counter >= self.max_jobs:
                return
            counter, task = self.job_counter, self.tasks.get(job_id.decode())
            try:
                await super().start_jobs([job_id])
            except Exception as exc:
                if (
                    is_redis_down(exc)
                    and self.job_counter > counter
                    and self.tasks.get(job_id.decode()) is task
                ):
                    self._release_sem_dec_counter_on_complete()
                raise

    async def close(self) -> None:
        """arq's close, except that a Redis that is down does not skip the shut-down hook (the relay's
        stop, the database's close)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None


def make_worker(*, burst: bool = False, handle_signals: bool = True, **overrides) -> Worker:
    settings = get_settings()
    return OmsWorker(
        functions=WorkerSettings.functions,
        # A burst worker (tests, one-off drains) runs what is queued and stops: no periodic sweep.
        cron_jobs=[] if burst else cron_jobs(),
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(),
        queue_name=settings.queue_name,
        max_jobs=WorkerSettings.max_jobs,
        job_timeout=WorkerSettings.job_timeout,
        keep_result=WorkerSettings.keep_result,
        burst=burst,
        handle_signals=handle_signals,
        **{"poll_delay": WorkerSettings.poll_delay, **overrides},
    )


def run_worker(burst: bool = False) -> None:
    configure_logging()
    make_worker(burst=burst).run()
