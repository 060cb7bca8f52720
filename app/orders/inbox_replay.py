"""The operators' path over the inbox: list a tenant's stored payloads and replay one through its door.

A failed (or received but never finished) row is replayed through exactly the code that first took it:
channel payloads through ``doors``, CSV files through ``csv_import``, fulfilment callbacks through
``fulfillment.inbound``. This module sits above those doors so none of them needs to know the others.
"""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database, TenantRef
from app.errors import NotFound, UserError
from app.fulfillment import inbound
from app.inbox import InboxMessage, InboxStatus
from app.orders.csv_import import replay_csv
from app.orders.doors import ChannelRef, DoorResult, resolve_tenant, run_stored


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
