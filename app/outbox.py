"""Transactional outbox: the ONE way to enqueue a job.

``enqueue(session, job, **kwargs)`` inserts a row inside the caller's transaction, so the job exists
exactly when the data that caused it was committed. A relay (started by the worker) hands pending rows
to arq with ``<prefix>:outbox:<id>`` as the job id and marks them sent; if Redis is down the rows simply wait.
arq may run a job more than once, so every job must be idempotent (the outbox id is passed to it as a
natural idempotency key).

A row is done when its job has run, not when Redis accepted it (a Redis restarting empty loses what it
had accepted). The worker notes each job that ran (``app.worker.job``: returned, or failed for good) in
a ``DoneMarks`` set that the relay writes back with one set-based UPDATE per cycle (``done_at``). A row
sent but not done after the lease (``OMS_OUTBOX_LEASE_S``) is handed over again under the same job id:
arq refuses it while the job is still queued or running (the lease is renewed) or while its result is
kept (the row is done: only the note was lost), and runs it again when Redis lost it.

The relay does not just poll: a transaction that enqueues a job due now also sends ``NOTIFY`` on
NOTIFY_CHANNEL (once per transaction; PostgreSQL delivers it at commit, and never for a rollback), and
the relay LISTENs on a connection of its own, so a job reaches arq within milliseconds of its commit
instead of up to one idle poll (0.2 s) later. Polling stays as the fallback (delayed rows, a lost
listener connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import fault_metrics
from app.config import get_settings
from app.db import ControlBase, Database, TenantRef, get_db
from app.redis import RedisOutage, is_redis_down

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "oms_outbox"


class OutboxMessage(ControlBase):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "id", postgresql_where=text("sent_at IS NULL")),
        Index(
            "ix_outbox_unfinished",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL AND done_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    job: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # its job has run
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


async def enqueue(
    session: AsyncSession,
    job: str,
    *,
    tenant_id: int | None = None,
    delay: timedelta | None = None,
    **kwargs: Any,
) -> OutboxMessage:
    """Record a job to run once the caller's transaction commits. kwargs must be JSON-serialisable;
    the job is called with them plus ``outbox_id`` (and ``tenant_id`` when given)."""
    msg = OutboxMessage(job=job, tenant_id=tenant_id, kwargs=kwargs, attempts=0)
    if delay:
        msg.available_at = func.now() + delay
    session.add(msg)
    await session.flush()
    if not delay:
        await _notify_relay(session)
    return msg


async def _notify_relay(session: AsyncSession) -> None:
    """Wake the relays when this transaction commits; one NOTIFY per transaction is enough."""
    transaction = session.sync_session.get_transaction()
    if session.info.get(NOTIFY_CHANNEL) is transaction:
        return
    await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    session.info[NOTIFY_CHANNEL] = transaction


async def job_tenant(tenant_id: int) -> TenantRef | None:
    """The tenant a job runs for (an outbox row carries only its id), looked up fresh in the control
    plane; None once the tenant is gone."""
    from tenants.models import Tenant  # the control plane's table; tenants imports this module

    async with get_db().control_session() as session:
        tenant = await session.get(Tenant, tenant_id)
        return TenantRef(tenant.id, tenant.schema_name) if tenant is not None else None


def job_id(outbox_id: int) -> str:
    """Namespaced by the Redis prefix: a rebuilt database restarts ids, and arq refuses a job id whose
    result it still keeps."""
    return f"{get_settings().redis_prefix}:outbox:{outbox_id}"


async def relay_once(
    db: Database, redis: ArqRedis, *, queue_name: str, batch: int = 200, outage: RedisOutage | None = None
) -> int:
    """Hand one batch of pending rows to arq. Returns how many were handed over.

    Rows are locked with SKIP LOCKED so several relays (several workers) never hand the same row twice
    at the same time; even if one did, the job id makes arq drop the duplicate. A Redis that is down
    leaves the rows unsent (with the error) and, given ``outage``, is noted there instead of logged.
    """
    async with db.control_session() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.available_at <= func.now())
                .order_by(OutboxMessage.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        sent: list[int] = []
        for row in rows:
            try:
                await _hand_over(redis, row, queue_name)
            except Exception as exc:  # Redis down or refusing: keep the row, try again later
                if outage is not None and is_redis_down(exc):
                    outage.failed(exc)
                else:
                    log.warning("outbox relay could not enqueue %s: %s", row.id, exc)
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(attempts=OutboxMessage.attempts + 1, last_error=str(exc)[:2000])
                )
                break
            sent.append(row.id)
            if outage is not None:
                outage.ok()
        if sent:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(sent))
                .values(sent_at=func.now(), attempts=OutboxMessage.attempts + 1)
            )
        return len(sent)


async def pending_count(db: Database) -> int:
    async with db.control_session() as session:
        return await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )


async def row_counts(db: Database) -> dict[str, int]:
    """Rows whose job has not run: ``pending`` (not handed over) and ``unfinished`` (handed over, not
    known to have run); each count reads its partial index."""
    async with db.control_session() as session:
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
        unfinished = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.is_not(None), OutboxMessage.done_at.is_(None))
        )
    return {"pending": pending, "unfinished": unfinished}


class DoneMarks:
    """Outbox ids whose jobs ran in this worker, until the relay writes their ``done_at`` (one UPDATE
    for all of them, off the jobs' path). A mark lost with its process costs one look after the lease."""

    def __init__(self) -> None:
        self._ids: set[int] = set()

    def add(self, outbox_id: int) -> None:
        self._ids.add(outbox_id)

    def __len__(self) -> int:
        return len(self._ids)

    async def write(self, db: Database, *, chunk: int = 5000) -> int:
        """Mark the noted rows done; on an error the marks stay for the next call."""
        ids, self._ids = sorted(self._ids), set()
        try:
            async with db.control_session() as session:
                for start in range(0, len(ids), chunk):
                    part = ids[start : start + chunk]
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(part), OutboxMessage.done_at.is_(None))
                        .values(done_at=func.now())
                    )
        except BaseException:
            self._ids.update(ids)
            raise
        return len(ids)


LEASE_BATCH = 200


async def relay_expired(
    db: Database, redis: ArqRedis, *, queue_name: str, lease_s: float, batch: int = LEASE_BATCH
) -> dict[str, int]:
    """Rows handed over more than ``lease_s`` ago whose job is not known to have run: hand them over
    again under the same job id. arq refuses one still queued or running (its lease is renewed) or
    whose result it keeps (it ran: the row is done); one Redis lost is queued again. Counts by outcome."""
    async with db.control_session() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.sent_at.is_not(None),
                    OutboxMessage.done_at.is_(None),
                    OutboxMessage.sent_at <= func.now() - timedelta(seconds=lease_s),
                )
                .order_by(OutboxMessage.sent_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        outcomes: dict[str, list[int]] = {"again": [], "waiting": [], "done": []}
        for row in rows:
            try:
                if await _hand_over(redis, row, queue_name):
                    outcomes["again"].append(row.id)
                elif await redis.exists(result_key_prefix + job_id(row.id)):
                    outcomes["done"].append(row.id)
                else:
                    outcomes["waiting"].append(row.id)
            except Exception as exc:  # Redis down again: the rest keep their lease expired
                log.warning("outbox relay could not re-check %s: %s", row.id, type(exc).__name__)
                break
        values = {
            "again": {"sent_at": func.now(), "attempts": OutboxMessage.attempts + 1},
            "waiting": {"sent_at": func.now()},
            "done": {"done_at": func.now()},
        }
        for outcome, ids in outcomes.items():
            if ids:
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values[outcome])
                )
    await fault_metrics.count(redis, "outbox", {k: len(v) for k, v in outcomes.items() if k != "waiting"})
    if outcomes["again"]:
        log.warning(
            "outbox relay: %d jobs handed to Redis never ran (lost in Redis?): handed over again",
            len(outcomes["again"]),
        )
    return {outcome: len(ids) for outcome, ids in outcomes.items()}


async def _hand_over(redis: ArqRedis, row: OutboxMessage, queue_name: str) -> bool:
    """Enqueue the row's job; False when arq already has a job or a result under its id."""
    kwargs = dict(row.kwargs, outbox_id=row.id)
    if row.tenant_id is not None:
        kwargs["tenant_id"] = row.tenant_id
    job = await redis.enqueue_job(row.job, _job_id=job_id(row.id), _queue_name=queue_name, **kwargs)
    return job is not None


async def run_relay(
    db: Database,
    redis: ArqRedis,
    *,
    queue_name: str,
    idle_s: float = 0.2,
    stop: asyncio.Event | None = None,
    done: DoneMarks | None = None,
    lease_s: float | None = None,
) -> None:
    """Relay forever (until ``stop`` is set): drain while there is work, then wait for a NOTIFY from a
    committed ``enqueue`` or ``idle_s``, whichever comes first. While Redis is down, rows wait and the
    relay tries again with back-off (a NOTIFY cannot bring Redis back), logging the outage once.
    Each cycle also writes the ``done`` marks of the jobs that ran, and every so often hands over again
    what outlived its lease (``lease_s``, default ``OMS_OUTBOX_LEASE_S``)."""
    stop = stop or asyncio.Event()
    wake = asyncio.Event()
    outage = RedisOutage("outbox relay", log)
    lease_s = lease_s if lease_s is not None else get_settings().outbox_lease_s
    check_every = max(0.5, min(lease_s / 4, 15.0))
    next_check = asyncio.get_running_loop().time() + check_every
    listener = await _listen(db, wake)
    try:
        while not stop.is_set():
            wake.clear()  # before reading: a NOTIFY arriving while we relay sets it again
            try:
                if done:
                    await done.write(db)
                n = await relay_once(db, redis, queue_name=queue_name, outage=outage)
                if not outage.down and asyncio.get_running_loop().time() >= next_check:
                    looked = await relay_expired(db, redis, queue_name=queue_name, lease_s=lease_s)
                    next_check = asyncio.get_running_loop().time() + check_every
                    if sum(looked.values()) >= LEASE_BATCH:  # more may be due (Redis lost thousands):
                        next_check, n = 0.0, n + 1  # look again next cycle, without the idle wait
            except Exception:
                log.exception("outbox relay failed; retrying")
                n = 0
            if outage.down:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), outage.wait_s)
            elif n == 0:
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
                try:
                    await asyncio.wait(waits, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
    finally:
        if done:
            with contextlib.suppress(Exception):
                await done.write(db)
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()


async def _listen(db: Database, wake: asyncio.Event):
    """A connection of its own LISTENing on NOTIFY_CHANNEL, setting ``wake``; None (poll only) when it
    cannot be had."""
    import asyncpg

    from app.db import plain_url

    try:
        conn = await asyncpg.connect(plain_url(db.url))
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
        return conn
    except Exception as exc:
        log.warning("outbox relay cannot LISTEN (%s): polling every cycle instead", exc)
        return None
