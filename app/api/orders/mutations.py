"""Operator mutations on one order (hold, release, cancel, address, note) and the audit settings.

Each runs in one tenant transaction through ``app.orders.service``; the timeline names the caller
(``actor_name``). A UserError becomes ``userErrors`` and rolls everything back.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import ADMIN, WRITE, actor_name, need_row
from app.api.orders.queries import AuditRuleType
from app.api.orders.types import OrderNode
from app.errors import UserError
from app.orders import audit, service, waiting
from app.orders.models import Order
from app.routing import unmerge


@strawberry.input
class HoldOrderInput:
    id: strawberry.ID
    reason: str = strawberry.field(description="1-500 characters; shown on the hold and the timeline.")


@strawberry.input
class ReleaseOrderHoldsInput:
    id: strawberry.ID
    codes: list[str] | None = strawberry.field(
        default=None, description="Only holds with these codes; all when left out."
    )


@strawberry.input
class CancelOrderInput:
    id: strawberry.ID
    reason: str = ""


@strawberry.input(description="Fields left out stay as they are.")
class OrderAddressInput:
    name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    province: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    district: str | None = strawberry.UNSET
    street: str | None = strawberry.UNSET
    postcode: str | None = strawberry.UNSET


@strawberry.input
class EditOrderAddressInput:
    id: strawberry.ID
    address: OrderAddressInput


@strawberry.input
class AddOrderNoteInput:
    id: strawberry.ID
    text: str = strawberry.field(description="1-2000 characters.")


@strawberry.input
class SetAuditRuleInput:
    code: str
    enabled: bool | None = None
    weight: int | None = None
    params: JSON | None = strawberry.field(default=None, description="Replaces the rule's parameters.")


@strawberry.input
class AddToBlacklistInput:
    kind: str = strawberry.field(description="phone, email, buyer (platform:id) or address.")
    value: str = strawberry.field(description="Stored only as a keyed hash.")
    reason: str = ""


@strawberry.input(description="Nothing to give: every order waiting for stock is looked at.")
class ResumeWaitingOrdersInput:
    limit: int | None = strawberry.field(
        default=None, description="Orders looked at in this call (1-500, default 500); a job does the rest."
    )


@strawberry.type
class ResumeWaitingOrdersPayload:
    resumed: int = strawberry.field(default=0, description="Orders that went on to routing.")
    follow_up: bool = strawberry.field(default=False, description="More were waiting: a job goes on.")
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class OrderPayload:
    order: OrderNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class AuditRulePayload:
    rule: AuditRuleType | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type(name="BlacklistEntry", description="A blocked identifier (kept only as a hash).")
class BlacklistEntryType:
    kind: str
    reason: str
    created_at: datetime


@strawberry.type
class AddToBlacklistPayload:
    entry: BlacklistEntryType | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _address(input: OrderAddressInput) -> dict[str, str | None]:
    return {k: v for k, v in vars(input).items() if v is not strawberry.UNSET}


async def _order_payload(info: Info, gid: strawberry.ID, act) -> OrderPayload:
    """Decode the caller's order id, run ``act(session, order_id, actor)``, return the fresh order."""
    actor = await actor_name(info)

    async def work(session: AsyncSession) -> Order:
        order = await act(session, need_row(info, gid, "Order", "order"), actor)
        await session.refresh(order)  # columns the service set with SQL (now()) are read back
        return order

    order, errors = await in_tenant(info, work)
    return OrderPayload(order=OrderNode.from_row(order) if order else None, user_errors=errors)


@strawberry.type
class OrderMutations:
    @strawberry.mutation(permission_classes=WRITE, description="Hold an order by hand, with a reason.")
    async def hold_order(self, info: Info, input: HoldOrderInput) -> OrderPayload:
        return await _order_payload(
            info, input.id, lambda s, oid, actor: service.hold(s, oid, reason=input.reason, actor=actor)
        )

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Release holds (all, or some codes); with none left the order goes on to stock.",
    )
    async def release_order_holds(self, info: Info, input: ReleaseOrderHoldsInput) -> OrderPayload:
        return await _order_payload(
            info,
            input.id,
            lambda s, oid, actor: service.release_holds(s, oid, actor=actor, codes=input.codes or None),
        )

    @strawberry.mutation(permission_classes=WRITE, description="Cancel and give back reserved stock.")
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderPayload:
        if len(input.reason) > 500:
            err = UserError("INVALID_REASON", "a reason is at most 500 characters", "reason")
            return OrderPayload(user_errors=[UserErrorType.from_exc(err)])
        return await _order_payload(
            info,
            input.id,
            lambda s, oid, actor: service.cancel(s, oid, reason=input.reason.strip(), actor=actor),
        )

    @strawberry.mutation(
        permission_classes=WRITE,
        description=(
            "Change the delivery address before release. A merged order whose new address no longer"
            " matches the merge's leaves it and is routed on its own; once the merge was handed to a"
            " location the edit is refused (ADDRESS_LOCKED)."
        ),
    )
    async def edit_order_address(self, info: Info, input: EditOrderAddressInput) -> OrderPayload:
        return await _order_payload(
            info,
            input.id,
            lambda s, oid, actor: unmerge.edit_address(s, oid, _address(input.address), actor=actor),
        )

    @strawberry.mutation(permission_classes=WRITE, description="Add a note to the order's timeline.")
    async def add_order_note(self, info: Info, input: AddOrderNoteInput) -> OrderPayload:
        return await _order_payload(
            info, input.id, lambda s, oid, actor: service.add_note(s, oid, input.text, actor=actor)
        )

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Serve the orders waiting for stock that stock now covers, first placed first.",
    )
    async def resume_waiting_orders(
        self, info: Info, input: ResumeWaitingOrdersInput
    ) -> ResumeWaitingOrdersPayload:
        actor = await actor_name(info)
        if input.limit is not None and not 1 <= input.limit <= waiting.PAGE:
            err = UserError("INVALID_LIMIT", f"limit must be from 1 to {waiting.PAGE}", "limit")
            return ResumeWaitingOrdersPayload(user_errors=[UserErrorType.from_exc(err)])

        async def work(session: AsyncSession):
            return await waiting.resume_waiting(session, actor=actor, page=input.limit or waiting.PAGE)

        result, errors = await in_tenant(info, work)
        if errors:
            return ResumeWaitingOrdersPayload(user_errors=errors)
        return ResumeWaitingOrdersPayload(resumed=result.count, follow_up=result.follow_up)

    @strawberry.mutation(permission_classes=ADMIN, description="Turn an audit rule on or off, tune it.")
    async def set_audit_rule(self, info: Info, input: SetAuditRuleInput) -> AuditRulePayload:
        async def work(session: AsyncSession):
            return await audit.set_rule(
                session, input.code, enabled=input.enabled, weight=input.weight, params=input.params
            )

        rule, errors = await in_tenant(info, work)
        return AuditRulePayload(rule=AuditRuleType.from_setting(rule) if rule else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE, description="Hold every future order showing this phone, e-mail, …"
    )
    async def add_to_blacklist(self, info: Info, input: AddToBlacklistInput) -> AddToBlacklistPayload:
        tenant_id = info.context.require_principal().tenant.id

        async def work(session: AsyncSession):
            return await audit.add_blacklist(session, tenant_id, input.kind, input.value, input.reason)

        entry, errors = await in_tenant(info, work)
        if errors:
            return AddToBlacklistPayload(user_errors=errors)
        return AddToBlacklistPayload(
            entry=BlacklistEntryType(kind=entry.kind, reason=entry.reason, created_at=entry.created_at)
        )
