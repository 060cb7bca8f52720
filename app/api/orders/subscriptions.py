"""``orderEvents``: new timeline events of the caller's tenant, pushed over the GraphQL websocket.

Implementation: polling, not pub/sub. Every POLL_S the subscription reads ``order_events`` with an id
above what it has handled, in a session of the caller's tenant. It needs no publisher (services, jobs and
automations all write the timeline the same way, in their own transaction), cannot leak across tenants
(the query runs in the caller's schema), and survives a Redis outage. Cost: one indexed query per
subscriber per POLL_S.

Identity ids are assigned at insert but become visible at commit, so a slow transaction can commit a
lower id after a higher one was seen. The subscription therefore keeps a floor (every id at or below it
is handled) and a set of ids seen above it; a gap below the newest seen id is waited for up to GAP_WAIT_S
(rolled-back inserts leave gaps for ever) before the floor moves past it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import strawberry
from sqlalchemy import func, select
from strawberry.types import Info

from app.api.orders.common import READ, need_row
from app.api.orders.loaders import forget_loaders
from app.api.orders.types import OrderEventNode
from app.errors import NotFound
from app.orders.models import Order, OrderEvent

POLL_S = 0.5
GAP_WAIT_S = 10.0
BATCH = 500


class EventCursor:
    """Which event ids a subscriber has handled: a floor plus the ids seen above it."""

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.seen: set[int] = set()
        self.gap_since: dict[int, float] = {}

    def is_new(self, event_id: int) -> bool:
        if event_id <= self.floor or event_id in self.seen:
            return False
        self.seen.add(event_id)
        self.gap_since.pop(event_id, None)
        return True

    def advance(self, now: float) -> None:
        """Move the floor over consecutive handled ids, and over gaps older than GAP_WAIT_S."""
        top = max(self.seen, default=self.floor)
        while self.floor < top:
            nxt = self.floor + 1
            if nxt in self.seen:
                self.seen.discard(nxt)
            elif now - self.gap_since.setdefault(nxt, now) >= GAP_WAIT_S:
                self.gap_since.pop(nxt)
            else:
                break
            self.floor = nxt


async def _start(info: Info, order_id: int | None) -> int:
    async with info.context.tenant_session() as session:
        if order_id is not None and await session.get(Order, order_id) is None:
            raise NotFound("order", "orderId")
        return await session.scalar(select(func.coalesce(func.max(OrderEvent.id), 0)))


@strawberry.type
class OrderSubscriptions:
    @strawberry.subscription(
        permission_classes=READ,
        description="New timeline events of your orders (all of them, or one), as they are written.",
    )
    async def order_events(
        self, info: Info, order_id: strawberry.ID | None = None
    ) -> AsyncGenerator[OrderEventNode, None]:
        only = None if order_id is None else need_row(info, order_id, "Order", "order", "orderId")
        cursor = EventCursor(await _start(info, only))
        while True:
            await asyncio.sleep(POLL_S)
            query = select(OrderEvent).where(OrderEvent.id > cursor.floor).order_by(OrderEvent.id)
            async with info.context.tenant_session() as session:
                rows = (await session.scalars(query.limit(BATCH))).all()
            fresh = [r for r in rows if cursor.is_new(r.id) and (only is None or r.order_id == only)]
            cursor.advance(time.monotonic())
            if fresh:
                forget_loaders(info)  # the websocket context lives long: resolve each batch afresh
            for row in fresh:
                yield OrderEventNode.from_row(row)
