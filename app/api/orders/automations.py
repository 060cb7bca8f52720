"""GraphQL of order automations: list them (readers of orders), create, change, pause and delete them
(writers of orders). The job that applies them is ``run_order_automation``; the settings are checked
by ``app.orders.automations`` as that job expects, and a bad one comes back as ``userErrors``."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import READ, READ_SCOPE, WRITE, need_row
from app.api.orders.types import OrderStatusEnum
from app.api.relay import RowLoader, TenantScopedNode, load_nodes
from app.api.scopes import guarded_by
from app.errors import UserError
from app.orders import automations
from app.orders.models import Automation, OrderStatus

ACTION_HELP = "cancel (where the order can be cancelled) or release (holds of orders on hold)."


@guarded_by(READ_SCOPE)
@strawberry.type(name="Automation", description="An action run some minutes after an order enters a status.")
class AutomationNode(TenantScopedNode):
    id: relay.NodeID[int]
    name: str
    on_status: OrderStatusEnum
    action: str = strawberry.field(description=ACTION_HELP)
    after_minutes: int
    hold_code: str | None = strawberry.field(description="release: only holds of this code.")
    enabled: bool

    @classmethod
    def from_row(cls, row: Automation) -> AutomationNode:
        return cls(
            id=row.id,
            name=row.name,
            on_status=OrderStatus(row.on_status),
            action=row.action,
            after_minutes=row.after_minutes,
            hold_code=row.hold_code,
            enabled=row.enabled,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, RowLoader(info, Automation), node_ids, cls.from_row, tenant_scoped=True)


@strawberry.input
class CreateAutomationInput:
    name: str = strawberry.field(description="1-100 characters; the timeline names it.")
    on_status: OrderStatusEnum
    action: str = strawberry.field(description=ACTION_HELP)
    after_minutes: int = strawberry.field(description="0-43200 (30 days).")
    hold_code: str | None = None
    enabled: bool = True


@strawberry.input(description="Fields left out keep their value; the result is checked as a whole.")
class UpdateAutomationInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    on_status: OrderStatusEnum | None = strawberry.UNSET
    action: str | None = strawberry.UNSET
    after_minutes: int | None = strawberry.UNSET
    hold_code: str | None = strawberry.field(default=strawberry.UNSET, description="null: every hold.")
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="false pauses it: jobs already scheduled then do nothing."
    )


@strawberry.input
class DeleteAutomationInput:
    id: strawberry.ID


@strawberry.type
class AutomationPayload:
    automation: AutomationNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteAutomationPayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


FIELD_NAMES = {"on_status": "onStatus", "after_minutes": "afterMinutes"}


def _changes(input: UpdateAutomationInput) -> dict[str, Any]:
    out = {k: v for k, v in vars(input).items() if v is not strawberry.UNSET and k != "id"}
    for key, value in out.items():
        if value is None and key != "hold_code":
            raise UserError(
                "INVALID_AUTOMATION", "give a value or leave the field out", FIELD_NAMES.get(key, key)
            )
    if "on_status" in out:
        out["on_status"] = out["on_status"].value
    return out


@strawberry.type
class AutomationQueries:
    @strawberry.field(permission_classes=READ, description="The tenant's order automations, oldest first.")
    async def automations(self, info: Info) -> list[AutomationNode]:
        async with info.context.tenant_session() as session:
            return [AutomationNode.from_row(row) for row in await automations.list_automations(session)]


@strawberry.type
class AutomationMutations:
    @strawberry.mutation(
        permission_classes=WRITE,
        description="Add an automation; orders entering its status from now on get it.",
    )
    async def create_automation(self, info: Info, input: CreateAutomationInput) -> AutomationPayload:
        async def work(session: AsyncSession) -> AutomationNode:
            row = await automations.create_automation(
                session,
                input.name,
                input.on_status.value,
                input.action,
                input.after_minutes,
                input.hold_code,
                enabled=input.enabled,
            )
            return AutomationNode.from_row(row)

        automation, errors = await in_tenant(info, work)
        return AutomationPayload(automation=automation, user_errors=errors)

    @strawberry.mutation(permission_classes=WRITE, description="Change, pause or resume an automation.")
    async def update_automation(self, info: Info, input: UpdateAutomationInput) -> AutomationPayload:
        async def work(session: AsyncSession) -> AutomationNode:
            automation_id = need_row(info, input.id, "Automation", "automation")
            row = await automations.update_automation(session, automation_id, _changes(input))
            return AutomationNode.from_row(row)

        automation, errors = await in_tenant(info, work)
        return AutomationPayload(automation=automation, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE, description="Delete an automation; its jobs already scheduled do nothing."
    )
    async def delete_automation(self, info: Info, input: DeleteAutomationInput) -> DeleteAutomationPayload:
        async def work(session: AsyncSession) -> None:
            await automations.delete_automation(session, need_row(info, input.id, "Automation", "automation"))

        _, errors = await in_tenant(info, work)
        return DeleteAutomationPayload(deleted_id=None if errors else input.id, user_errors=errors)
