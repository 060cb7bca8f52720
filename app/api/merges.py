"""GraphQL of order merges (``app.routing.merge``): the merge an order is in (``Order.merge``) and
taking an order out of it before release (``unmergeOrder``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy import select
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import WRITE, actor_name, gid, need_row
from app.orders.models import Order, OrderMerge
from app.routing import unmerge

if TYPE_CHECKING:
    from app.api.orders.types import OrderNode

OrderNodeRef = Annotated["OrderNode", strawberry.lazy("app.api.orders.types")]


class _MergeLoaders:
    """A merge row and its member orders, each in one statement per request."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.merge = DataLoader(load_fn=self._merges)
        self.members = DataLoader(load_fn=self._members)

    async def _merges(self, keys: list[int]) -> list[OrderMerge | None]:
        async with self._ctx.tenant_session() as session:
            rows = (await session.scalars(select(OrderMerge).where(OrderMerge.id.in_(keys)))).all()
        found = {r.id: r for r in rows}
        return [found.get(k) for k in keys]

    async def _members(self, keys: list[int]) -> list[list[Order]]:
        async with self._ctx.tenant_session() as session:
            rows = (
                await session.scalars(select(Order).where(Order.merge_id.in_(keys)).order_by(Order.id))
            ).all()
        grouped: dict[int, list[Order]] = defaultdict(list)
        for r in rows:
            grouped[r.merge_id].append(r)
        return [grouped.get(k, []) for k in keys]


def _loaders(info: Info) -> _MergeLoaders:
    store = info.context._loaders
    if "merges" not in store:
        store["merges"] = _MergeLoaders(info.context)
    return store["merges"]


@strawberry.type(name="OrderMerge", description="Orders of one buyer to one address shipped together.")
class OrderMergeType:
    id: strawberry.ID
    created_at: datetime
    created_by: str
    row_id: strawberry.Private[int]

    @strawberry.field(description="The orders in the merge (this one included), oldest first.")
    async def orders(self, info: Info) -> list[OrderNodeRef]:
        from app.api.orders.types import OrderNode

        return [OrderNode.from_row(r) for r in await _loaders(info).members.load(self.row_id)]


async def merge_of(info: Info, merge_id: int | None) -> OrderMergeType | None:
    """``Order.merge``: the merge the order is in now, if any."""
    if merge_id is None:
        return None
    row = await _loaders(info).merge.load(merge_id)
    if row is None:
        return None
    return OrderMergeType(
        id=gid(info, "OrderMerge", row.id),
        created_at=row.created_at,
        created_by=row.created_by,
        row_id=row.id,
    )


@strawberry.input
class UnmergeOrderInput:
    order_id: strawberry.ID


@strawberry.type
class UnmergeOrderPayload:
    order: OrderNodeRef | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class MergeMutations:
    @strawberry.mutation(
        permission_classes=WRITE,
        description=(
            "Take an order out of its merge before anything of it is handed over (else ALREADY_RELEASED);"
            " every order of the merge is routed again, this one on its own from now on."
        ),
    )
    async def unmerge_order(self, info: Info, input: UnmergeOrderInput) -> UnmergeOrderPayload:
        from app.api.orders.types import OrderNode

        actor = await actor_name(info)

        async def work(session):
            order = await unmerge.unmerge(
                session, need_row(info, input.order_id, "Order", "order", "orderId"), actor=actor
            )
            await session.refresh(order)
            return OrderNode.from_row(order)

        result, errors = await in_tenant(info, work)
        return UnmergeOrderPayload(order=result, user_errors=errors)
