"""GraphQL of order merges (``app.routing.merge``): taking an order out of its merge before release
(``unmergeOrder``). The merge an order is in (``Order.merge``, type ``OrderMerge``) is an order type, in
``app.api.orders.types``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import WRITE, actor_name, need_row
from app.api.orders.types import OrderNode
from app.routing import unmerge


@strawberry.input
class UnmergeOrderInput:
    order_id: strawberry.ID


@strawberry.type
class UnmergeOrderPayload:
    order: OrderNode | None = None
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
        actor = await actor_name(info)

        async def work(session):
            order = await unmerge.unmerge(
                session, need_row(info, input.order_id, "Order", "order", "orderId"), actor=actor
            )
            await session.refresh(order)
            return OrderNode.from_row(order)

        result, errors = await in_tenant(info, work)
        return UnmergeOrderPayload(order=result, user_errors=errors)
