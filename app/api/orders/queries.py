"""Order queries: one order (by id or number), the filtered and sorted list, audit rules, the inbox."""

from __future__ import annotations

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.orders.common import READ
from app.api.orders.filters import OrderFilter, OrderSort, orders_query, paginate_orders
from app.api.orders.inbox import NEEDS_ATTENTION, InboxMessageNode, InboxStatusEnum, inbox_query
from app.api.orders.loaders import order_loaders
from app.api.orders.types import OrderNode
from app.api.relay import decode_tenant_node_id, paginate
from app.inbox import InboxMessage, InboxStatus
from app.orders import audit
from app.orders.models import Order


@strawberry.type(name="AuditRule", description="A tenant's setting of one built-in audit rule.")
class AuditRuleType:
    code: str
    description: str
    enabled: bool
    weight: int = strawberry.field(description="What the rule adds towards the hold threshold.")
    params: JSON

    @classmethod
    def from_setting(cls, rule: audit.RuleSetting) -> AuditRuleType:
        return cls(
            code=rule.code,
            description=rule.description,
            enabled=rule.enabled,
            weight=rule.weight,
            params=rule.params or {},
        )


@strawberry.type
class OrderQueries:
    @strawberry.field(permission_classes=READ, description="An order of yours by its global id.")
    async def order(self, info: Info, id: strawberry.ID) -> OrderNode | None:
        row_id = decode_tenant_node_id(info, id, "Order")
        if row_id is None:
            return None
        row = await order_loaders(info).order.load(row_id)
        return OrderNode.from_row(row) if row else None

    @strawberry.field(permission_classes=READ, description="An order by our order number.")
    async def order_by_number(self, info: Info, number: str) -> OrderNode | None:
        if "\x00" in number or len(number) > 30:
            return None
        async with info.context.tenant_session() as session:
            row = await session.scalar(select(Order).where(Order.number == number))
        return OrderNode.from_row(row) if row else None

    @strawberry.field(
        permission_classes=READ, description="Orders, filtered; newest placed first unless sorted."
    )
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: OrderFilter | None = None,
        sort: OrderSort | None = None,
    ) -> relay.Connection[OrderNode]:
        query = orders_query(info, filter or OrderFilter())
        async with info.context.tenant_session() as session:
            return await paginate_orders(session, query, sort or OrderSort(), first=first, after=after)

    @strawberry.field(permission_classes=READ, description="Every audit rule with this tenant's setting.")
    async def audit_rules(self, info: Info) -> list[AuditRuleType]:
        async with info.context.tenant_session() as session:
            return [AuditRuleType.from_setting(r) for r in await audit.rules(session)]

    @strawberry.field(
        permission_classes=READ,
        description="Inbound payloads of your tenant, newest first; by default those that need"
        " attention (received, failed, rejected).",
    )
    async def inbox_messages(
        self,
        info: Info,
        status: list[InboxStatusEnum] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[InboxMessageNode]:
        wanted = list(NEEDS_ATTENTION) if status is None else [InboxStatus(s.value) for s in status]
        async with info.context.control_session() as session:
            return await paginate(
                session,
                inbox_query(info, wanted),
                InboxMessage.id,
                InboxMessageNode.from_row,
                first=first,
                after=after,
            )
