"""What follows a change of a material's network availability: low-stock alerts and channel sync.

Both are recorded in the same transaction as the change.

**Alerts.** A material's availability falling below its ``low_stock_threshold`` records one alert, at
the crossing. Falling below zero (more reserved than the network can sell, after a count, an adjustment
or a location pause: reality wins, the change still applies) always records one, threshold or not.

**Channel sync is debounced per tenant.** ``stock_sync_requests`` is the buffer of materials changed
since the last sync; the tenant's one pending ``sync_channel_stock`` job (delayed by SYNC_DEBOUNCE) syncs
all of them. Only a change that finds the buffer empty enqueues a job; every other change relies on the
pending one, so a 10k-row import enqueues one job, not one per material.

Relying on a pending job is only safe if that job cannot miss the change, so each change holds a row
lock on a buffer row it relies on until it commits: the row of its own material when that was already
there (the upsert locks it), else any other row it can lock at once (``FOR KEY SHARE SKIP LOCKED``:
never waiting there, so changes do not queue behind each other on one buffer row). The job
(``sync.sync_pending``) deletes the buffer in rounds until a round finds it empty: a round waits for
those locks, and the next round, a new statement with a new snapshot under READ COMMITTED, sees what
their holders committed. A change whose own row the job is deleting waits for the job to commit and
inserts it again; a change that finds no row it can lock (the buffer is empty, or the job holds it)
enqueues the next job. So a job may occasionally find nothing to do, which is harmless: it publishes
nothing.

**Orders waiting for stock are woken up, debounced per tenant.** A change that raises a material's
availability (a receipt, a transfer arriving, a count or adjustment up, a location active again, a
reservation released by a cancel) asks for the tenant's ``resume_waiting_orders`` job
(``app.orders.waiting``), delayed by RESUME_DEBOUNCE. The job takes no list of materials: it looks at
the whole waiting queue, so it needs no buffer, only the guarantee that it starts after the change
commits. The pending job is its outbox row: a change relies on a pending row only while that row is
more than RESUME_MARGIN from being due, and holds ``FOR KEY SHARE`` on it until it commits (``SKIP
LOCKED``: never waiting). The relay takes rows ``FOR UPDATE SKIP LOCKED``, so it cannot hand the job to
arq before every change relying on it has committed; and since nobody starts relying on a row in its
last RESUME_MARGIN, the relay is never starved by a stream of changes. A change that finds no such row
enqueues one (concurrent first changes may enqueue one each: the job is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import all_, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.catalog.models import Material
from app.db import session_tenant
from app.inventory.models import StockAlert, SyncRequest
from app.outbox import OutboxMessage, enqueue

SYNC_DEBOUNCE = timedelta(seconds=2)
SYNC_JOB = "sync_channel_stock"
RESUME_JOB = "resume_waiting_orders"
RESUME_DEBOUNCE = timedelta(seconds=2)
RESUME_MARGIN = timedelta(milliseconds=500)


async def stock_changed(session: AsyncSession, material_id: int, available: int, delta: int) -> None:
    """``available`` is the network availability after the change, ``delta`` how much it moved."""
    await stock_changed_many(session, [(material_id, available, delta)])


async def stock_changed_many(session: AsyncSession, changes: Iterable[tuple[int, int, int]]) -> None:
    """``stock_changed`` for many ``(material id, available after, delta)`` at once: one query for the
    thresholds, one insert for the alerts, one sync request."""
    changes = list(changes)
    falling = [(m, available, delta) for m, available, delta in changes if delta < 0]
    if falling:
        wanted = arrays.id_table({m for m, _, _ in falling})
        thresholds = dict(
            (
                await session.execute(
                    select(Material.id, Material.low_stock_threshold).join(wanted, Material.id == wanted.c.id)
                )
            ).all()
        )
        alerts = []
        for material_id, available, delta in falling:
            line = crossed(available, delta, thresholds.get(material_id))
            if line is not None:
                alerts.append({"material_id": material_id, "available": available, "threshold": line})
        if alerts:
            await session.execute(insert(StockAlert), alerts)
    await request_sync(session, [m for m, _, _ in changes])
    if any(delta > 0 for _, _, delta in changes):
        await request_resume(session)


def crossed(available: int, delta: int, threshold: int | None) -> int | None:
    """The alert line a fall from ``available - delta`` to ``available`` crossed, if any: the material's
    threshold first, else zero (oversold)."""
    before = available - delta
    for line in (threshold, 0):
        if line is not None and available < line <= before:
            return line
    return None


async def request_sync(session: AsyncSession, material_ids: list[int]) -> None:
    """Put materials in the sync buffer; enqueue the tenant's sync job if none is pending."""
    ids = sorted(set(material_ids))
    if not ids:
        return
    new = arrays.id_table(ids)
    stmt = insert(SyncRequest).from_select(["material_id"], select(new.c.id).order_by(new.c.id))
    stmt = stmt.on_conflict_do_update(
        index_elements=[SyncRequest.material_id], set_={"requested_at": func.now()}
    ).returning(literal_column("xmax = 0"))
    inserted = (await session.scalars(stmt)).all()
    if not all(inserted):
        return  # a row was there (now locked by this transaction): its job will see these too
    other = await session.scalar(
        select(SyncRequest.material_id)
        .where(SyncRequest.material_id != all_(arrays.ids(ids)))
        .limit(1)
        .with_for_update(key_share=True, skip_locked=True)
    )
    if other is None:
        await enqueue_sync(session)


async def enqueue_sync(session: AsyncSession) -> None:
    tenant = session_tenant(session)
    await enqueue(session, SYNC_JOB, tenant_id=tenant.id, delay=SYNC_DEBOUNCE, schema_name=tenant.schema_name)


async def request_resume(session: AsyncSession) -> None:
    """Make sure the tenant's ``resume_waiting_orders`` job runs after this transaction commits.

    A transaction that enqueued one relies on it from then on (checked per transaction, and the row
    must still be in the session: a rolled-back savepoint takes it away). So a long transaction, say
    an import, enqueues one job, not one per change once its row's ``available_at`` (the transaction's
    start + RESUME_DEBOUNCE) has gone by."""
    transaction = session.sync_session.get_transaction()
    own = session.info.get(RESUME_JOB)
    if own is not None and own[0] is transaction and own[1] in session:
        return
    tenant = session_tenant(session)
    pending = await session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.tenant_id == tenant.id,
            OutboxMessage.job == RESUME_JOB,
            OutboxMessage.available_at > func.clock_timestamp() + RESUME_MARGIN,
            ~OutboxMessage.kwargs.has_key("after"),  # a follow-up page does not look at the whole queue
        )
        .limit(1)
        .with_for_update(key_share=True, skip_locked=True)
    )
    if pending is None:
        row = await enqueue(session, RESUME_JOB, tenant_id=tenant.id, delay=RESUME_DEBOUNCE)
        session.info[RESUME_JOB] = (transaction, row)
