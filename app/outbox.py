"""Transactional outbox: the ONE way to enqueue a job.

``enqueue(session, job, **kwargs)`` inserts a row inside the caller's transaction, so the job exists
exactly when the data that caused it was committed. A relay (started by the worker) hands pending rows
to arq with ``<prefix>:outbox:<id>`` as the job id and marks them sent; if Redis is down the rows simply wait.
arq may run a job more than once, so every job must be idempotent (the outbox id is passed to it as a
natural idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
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

from app.config import get_settings
from app.db import ControlBase, Database, TenantRef, get_db

log = logging.getLogger(__name__)


class OutboxMessage(ControlBase):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "id", postgresql_where=text("sent_at IS NULL")),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    job: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    return msg


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


async def relay_once(db: Database, redis: ArqRedis, *, queue_name: str, batch: int = 200) -> int:
    """Hand one batch of pending rows to arq. Returns how many were handed over.

    Rows are locked with SKIP LOCKED so several relays (several workers) never hand the same row twice
    at the same time; even if one did, the job id makes arq drop the duplicate.
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
                kwargs = dict(row.kwargs, outbox_id=row.id)
                if row.tenant_id is not None:
                    kwargs["tenant_id"] = row.tenant_id
                await redis.enqueue_job(row.job, _job_id=job_id(row.id), _queue_name=queue_name, **kwargs)
            except Exception as exc:  # Redis down or refusing: keep the row, try again later
                log.warning("outbox relay could not enqueue %s: %s", row.id, exc)
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(attempts=OutboxMessage.attempts + 1, last_error=str(exc)[:2000])
                )
                break
            sent.append(row.id)
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


async def run_relay(
    db: Database, redis: ArqRedis, *, queue_name: str, idle_s: float = 0.2, stop: asyncio.Event | None = None
) -> None:
    """Relay forever (until ``stop`` is set): drain while there is work, then poll every ``idle_s``."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            n = await relay_once(db, redis, queue_name=queue_name)
        except Exception:
            log.exception("outbox relay failed; retrying")
            n = 0
        if n == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_s)
