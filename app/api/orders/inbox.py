"""The tenant's inbound payloads (control.inbox rows with its tenant id): what failed, and replays.

Inbox rows live in the shared control schema, so they keep plain ids and every read filters by the
caller's tenant id; another tenant's row is simply not found.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from app.api.orders.common import READ_SCOPE
from app.api.relay import decode_node_id, int_ids
from app.api.scopes import guarded_by
from app.errors import NotFound
from app.inbox import InboxMessage, InboxStatus

InboxStatusEnum = strawberry.enum(InboxStatus, name="InboxStatus")
PREVIEW_CHARS = 500
NEEDS_ATTENTION = (InboxStatus.received, InboxStatus.failed, InboxStatus.rejected)


@guarded_by(READ_SCOPE)
@strawberry.type(name="InboxMessage", description="A raw inbound payload, stored before it was parsed.")
class InboxMessageNode(relay.Node):
    id: relay.NodeID[int]
    source: str = strawberry.field(description='Where it came from, e.g. "channel:42".')
    status: InboxStatusEnum
    error: str | None
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    body_size: int = strawberry.field(description="Bytes in the raw body.")
    body_preview: str = strawberry.field(description=f"The body's first {PREVIEW_CHARS} characters.")

    @classmethod
    def from_row(cls, row: InboxMessage) -> InboxMessageNode:
        body = bytes(row.body or b"")
        return cls(
            id=row.id,
            source=row.source,
            status=InboxStatus(row.status),
            error=row.error,
            attempts=row.attempts,
            received_at=row.received_at,
            processed_at=row.processed_at,
            body_size=len(body),
            body_preview=body[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS],
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        principal = info.context.principal
        ids = int_ids(node_ids)
        if principal is None or cls.required_scope not in principal.scopes:
            return [None] * len(ids)
        wanted = [i for i in ids if i is not None and 0 < i < 2**63]
        async with info.context.control_session() as session:
            rows = await session.scalars(inbox_query(info).where(InboxMessage.id.in_(wanted)))
            found = {row.id: row for row in rows}
        return [cls.from_row(found[i]) if i in found else None for i in ids]


def inbox_query(info: Info, statuses: list[InboxStatus] | None = None):
    tenant_id = info.context.require_principal().tenant.id
    query = select(InboxMessage).where(InboxMessage.tenant_id == tenant_id)
    if statuses is not None:
        query = query.where(InboxMessage.status.in_(statuses))
    return query


async def tenant_inbox_id(info: Info, gid: strawberry.ID | str) -> int:
    """The inbox row id in ``gid`` if that row is the caller's tenant's, else NOT_FOUND."""
    row = decode_node_id(gid, "InboxMessage")
    if row is None or not 0 < row < 2**63:
        raise NotFound("inbox message")
    async with info.context.control_session() as session:
        found = await session.scalar(
            inbox_query(info).with_only_columns(InboxMessage.id).where(InboxMessage.id == row)
        )
    if found is None:
        raise NotFound("inbox message")
    return found
