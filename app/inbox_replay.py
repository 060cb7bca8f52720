"""The operators' path over the inbox, and the sweep that takes it for payloads left behind.

A failed (or received but never finished) row is replayed through exactly the code that first took it:
channel payloads through ``orders.doors``, CSV files through ``orders.csv_import``, fulfilment callbacks
through ``fulfillment.inbound``. This module sits above those domains (like ``app.worker``) so none of
their doors needs to know the others.

The sweep: a webhook payload is committed to the inbox before it is ingested. If the API process dies in
between (a deploy, a crash, or a webhook answered at ``?ack=stored`` whose background ingest was lost),
the row stays ``received``. Every minute (arq cron ``inbox_sweep``, see ``app.worker``) rows older than
STALE are replayed through ``replay``: ingest is idempotent, so a row whose sender also re-delivered it
makes one order. Only channel payloads: a CSV import may legitimately run for minutes, and its file is
replayed by the operator who started it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.db import Database, TenantRef, get_db
from app.errors import NotFound, UserError
from app.fulfillment import inbound
from app.inbox import InboxMessage, InboxStatus
from app.orders.csv_import import replay_csv
from app.orders.doors import ChannelRef, DoorResult, resolve_tenant, run_stored

log = logging.getLogger(__name__)
STALE = timedelta(minutes=2)  # well past any ingest still running in an API process
BATCH = 500  # per minute; the rest waits for the next one


async def replay(
    db: Database, tenant: TenantRef | int, inbox_id: int, *, actor: str = "replay"
) -> DoorResult:
    """Re-run a failed (or received but never finished) inbox row of this tenant through the same path:
    channel payloads, CSV files and fulfilment callbacks alike."""
    ref = await resolve_tenant(db, tenant)
    async with db.control_session() as session:
        msg = await session.scalar(
            select(InboxMessage).where(InboxMessage.id == inbox_id, InboxMessage.tenant_id == ref.id)
        )
    if msg is None:
        raise NotFound("inbox message", "id")
    if msg.status is InboxStatus.processed:
        raise UserError("ALREADY_PROCESSED", f"inbox message {inbox_id} is already processed", "id")
    if msg.status is InboxStatus.rejected:
        raise UserError(
            "NOT_REPLAYABLE", f"inbox message {inbox_id} failed authentication and is never processed", "id"
        )
    door, _, ident = msg.source.partition(":")
    if door == "csv" and ident.isdigit():
        return await replay_csv(db, ref, int(ident), msg, actor=actor)
    if door == "fulfilment" and ident.isdigit():
        answer = await inbound.process(db, ref, int(ident), msg.id, msg.body)
        return DoorResult(msg.id, answer.body["status"], error=answer.body["error"], kind="fulfilment")
    if door != "channel" or not ident.isdigit():
        raise UserError(
            "NOT_REPLAYABLE", f"inbox message {inbox_id} ({msg.source}) is not an order payload", "id"
        )
    return await run_stored(db, ChannelRef(ref, int(ident)), msg.id, msg.body, msg.headers, actor)


async def list_inbox(
    db: Database, tenant_id: int, *, status: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[InboxMessage]:
    """This tenant's inbox rows, newest first (operators look for failed ones to replay)."""
    query = select(InboxMessage).where(InboxMessage.tenant_id == tenant_id)
    if status is not None:
        query = query.where(InboxMessage.status == InboxStatus(status))
    if before_id is not None:
        query = query.where(InboxMessage.id < before_id)
    async with db.control_session() as session:
        return list((await session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit))).all())


async def replay_stale(db: Database, *, now: datetime | None = None) -> Counter:
    """Replay stale ``received`` channel payloads, each in its own tenant; counts outcomes by inbox
    status (``error`` for one that raised). ``now``: a test's clock; default the database's."""
    cutoff = (now if now is not None else func.now()) - STALE
    async with db.control_session() as session:
        rows = (
            await session.execute(
                select(InboxMessage.id, InboxMessage.tenant_id)
                .where(
                    InboxMessage.status == InboxStatus.received,
                    InboxMessage.source.startswith("channel:"),
                    InboxMessage.tenant_id.is_not(None),
                    InboxMessage.received_at <= cutoff,
                )
                .order_by(InboxMessage.id)
                .limit(BATCH)
            )
        ).all()
    outcomes: Counter = Counter()
    for inbox_id, tenant_id in rows:
        try:
            result = await replay(db, tenant_id, inbox_id, actor="inbox_sweep")
            outcomes[result.status] += 1
        except Exception:  # one bad row (e.g. its tenant was dropped) does not stop the others
            log.exception("inbox sweep: replay of row %s (tenant %s) failed", inbox_id, tenant_id)
            outcomes["error"] += 1
    return outcomes


async def inbox_sweep(ctx) -> dict[str, int]:
    """arq cron, every minute: replay channel payloads stored but never processed."""
    outcomes = await replay_stale(ctx.get("db") or get_db())
    if outcomes:
        log.info("inbox sweep: %s", dict(outcomes))
    return dict(outcomes)
