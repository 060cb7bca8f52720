"""GraphQL to tag customers: the tags routing rules read (the ``vip_lane`` rule's ``tags``)."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import WRITE, need_row
from app.api.orders.types import CustomerNode
from app.customers import service


@strawberry.input
class SetCustomerTagsInput:
    customer_id: strawberry.ID
    tags: list[str] = strawberry.field(
        description="Replaces the tags (empty: none). Trimmed, lower-cased, each once; 1-50 characters"
        " each, at most 20."
    )


@strawberry.type
class CustomerPayload:
    customer: CustomerNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(
        permission_classes=WRITE,
        description="Set a customer's tags, e.g. vip; routing rules read them on the customer's next order.",
    )
    async def set_customer_tags(self, info: Info, input: SetCustomerTagsInput) -> CustomerPayload:
        async def work(session: AsyncSession) -> CustomerNode:
            customer_id = need_row(info, input.customer_id, "Customer", "customer", "customerId")
            return CustomerNode.from_row(await service.set_tags(session, customer_id, input.tags))

        customer, errors = await in_tenant(info, work)
        return CustomerPayload(customer=customer, user_errors=errors)
