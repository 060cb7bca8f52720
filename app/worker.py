"""arq WorkerSettings: job functions, the outbox relay, start-up and shut-down.

Every job is reached only through the outbox (``app.outbox.enqueue``) and must be idempotent.
"""

from __future__ import annotations

import asyncio
import logging

from arq import cron, func
from arq.worker import Worker

from app.activity.jobs import tenant_provisioned
from app.config import get_settings
from app.db import close_db, db_ready, init_db
from app.fulfillment.jobs import (
    deliver_connector_message,
    fulfilment_accept_timeout,
    fulfilment_sweep,
    location_outage,
    pickup_expiry,
    release_fulfilment,
    reroute_fulfilment,
)
from app.inventory.jobs import sync_channel_stock
from app.logs import configure_logging
from app.orders.jobs import inbox_sweep, resume_waiting_orders, run_order_automation
from app.outbox import run_relay
from app.redis import redis_settings
from app.routing.jobs import route_order

log = logging.getLogger("app.worker")

FUNCTIONS = [
    func(tenant_provisioned, name="tenant_provisioned", max_tries=10),
    func(sync_channel_stock, name="sync_channel_stock", max_tries=10),
    func(run_order_automation, name="run_order_automation", max_tries=10),
    func(resume_waiting_orders, name="resume_waiting_orders", max_tries=10),
    func(route_order, name="route_order", max_tries=10),
    func(release_fulfilment, name="release_fulfilment", max_tries=10),
    func(fulfilment_accept_timeout, name="fulfilment_accept_timeout", max_tries=10),
    func(reroute_fulfilment, name="reroute_fulfilment", max_tries=10),
    func(location_outage, name="location_outage", max_tries=10),
    func(pickup_expiry, name="pickup_expiry", max_tries=10),
    func(deliver_connector_message, name="deliver_connector_message", max_tries=10),
]

# Periodic safety nets (not data changes of their own: they call the idempotent job functions).
CRON_JOBS = [
    cron(fulfilment_sweep, name="fulfilment_sweep", second=0, unique=True, timeout=120),
    cron(inbox_sweep, name="inbox_sweep", second=30, unique=True, timeout=120),
]


async def startup(ctx: dict) -> None:
    # A worker embedded in a process that already has a Database (oms dev, tests) must not close it.
    ctx["owns_db"] = not db_ready()
    ctx["db"] = db = init_db()
    ctx["relay_stop"] = stop = asyncio.Event()
    ctx["relay"] = asyncio.create_task(
        run_relay(db, ctx["redis"], queue_name=get_settings().queue_name, stop=stop), name="outbox-relay"
    )


async def shutdown(ctx: dict) -> None:
    ctx["relay_stop"].set()
    await ctx["relay"]
    if ctx["owns_db"]:
        await close_db()


class WorkerSettings:
    """arq settings; Redis and the queue name come from OMS_* at run time (see make_worker)."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    job_timeout = 300
    keep_result = 3600  # while a result is kept, re-enqueueing the same outbox id is refused by arq
    poll_delay = 0.05  # arq's default 0.5 s adds ~250 ms to every hop of an order's way through jobs


def make_worker(*, burst: bool = False, handle_signals: bool = True, **overrides) -> Worker:
    settings = get_settings()
    return Worker(
        functions=WorkerSettings.functions,
        # A burst worker (tests, one-off drains) runs what is queued and stops: no periodic sweep.
        cron_jobs=[] if burst else WorkerSettings.cron_jobs,
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
