"""The outbox relay is woken by NOTIFY when a transaction that enqueued a job commits, instead of
waiting for its next poll (``app.outbox.run_relay``)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from app.config import get_settings
from app.outbox import OutboxMessage, enqueue, run_relay


async def test_a_committed_job_wakes_the_relay_long_before_its_next_poll(db, redis):
    queue = f"{get_settings().queue_name}:notify-test"  # no worker reads it
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(db, redis, queue_name=queue, idle_s=30, stop=stop))
    try:
        await asyncio.sleep(0.5)  # the relay has drained what was due and sleeps (30 s at most)
        async with db.control_session() as session:
            row_id = (await enqueue(session, "notify_probe")).id
            await enqueue(session, "notify_probe")  # one NOTIFY per transaction is enough
        start, sent_at = time.perf_counter(), None
        while time.perf_counter() - start < 5 and sent_at is None:
            await asyncio.sleep(0.02)
            async with db.control_session() as session:
                sent_at = await session.scalar(
                    select(OutboxMessage.sent_at).where(OutboxMessage.id == row_id)
                )
        assert sent_at is not None, "the relay slept through the commit"
        assert time.perf_counter() - start < 5
    finally:
        stop.set()
        await relay
        await redis.delete(queue)
