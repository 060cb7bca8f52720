"""Selling stock: channel pools, low-stock protection, and reserving/releasing stock for an order.

``reserveStock`` / ``releaseStock`` are what a brand's back office (and later the orders flow) call;
both are idempotent on the reference.
"""

from __future__ import annotations

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.inventory.common import WRITE, actor, clean_text
from app.api.inventory.ids import need_id, opt_id
from app.api.inventory.types import AllocationPoolNode, InventorySettings, PoolModeEnum, ReservationNode
from app.errors import NotFound, UserError
from app.inventory import atp, service
from app.inventory.ledger import check_quantity
from app.inventory.models import PoolMode, Reservation

MAX_RESERVE_LINES = 100


@strawberry.input
class SetAllocationPoolInput:
    channel_id: strawberry.ID
    material_id: strawberry.ID | None = strawberry.field(
        default=None, description="Omit to set the channel's default for every material."
    )
    mode: PoolModeEnum
    value: float = strawberry.field(default=0, description="Units (quota) or 0-100 (percent).")


@strawberry.type
class AllocationPoolPayload:
    allocation_pool: AllocationPoolNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class SetLowStockProtectionInput:
    protect_below: int = strawberry.field(
        description="Below this many available units only core channels may sell; 0 turns it off."
    )


@strawberry.type
class LowStockProtectionPayload:
    settings: InventorySettings | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class ReserveLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class ReserveStockInput:
    reference: str = strawberry.field(
        description="Your order number; reserving it again changes nothing. Once released, a reference"
        " cannot be reserved again (RESERVATION_RELEASED)."
    )
    channel_id: strawberry.ID | None = strawberry.field(
        default=None, description="Apply this channel's pool and the low-stock protection."
    )
    lines: list[ReserveLineInput] = strawberry.field(description=f"1-{MAX_RESERVE_LINES} lines.")


@strawberry.type
class ReserveStockPayload:
    reservations: list[ReservationNode] | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class ReleaseStockInput:
    reference: str
    reason: str = ""


@strawberry.type
class ReleaseStockPayload:
    released: int | None = strawberry.field(default=None, description="Units given back by this call.")
    reservations: list[ReservationNode] | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _reference(value: str) -> str:
    """Kept exactly as given (it is a key), but it must be storable."""
    if not isinstance(value, str) or not 0 < len(value) <= 200 or any(ord(ch) < 32 for ch in value):
        raise UserError(
            "INVALID_REFERENCE", "reference must be 1-200 characters without control characters", "reference"
        )
    return value


async def _reservations(session, reference: str) -> list[ReservationNode]:
    rows = await session.scalars(
        select(Reservation)
        .where(Reservation.reference == reference)
        .order_by(Reservation.material_id)
        .execution_options(populate_existing=True)
    )
    return [ReservationNode.from_row(r) for r in rows]


@strawberry.type
class AllocationMutations:
    @strawberry.mutation(permission_classes=WRITE, description="A channel's share of stock.")
    async def set_allocation_pool(self, info: Info, input: SetAllocationPoolInput) -> AllocationPoolPayload:
        async def work(session):
            channel_id = need_id(info, input.channel_id, "Channel", "channel", "channelId")
            material_id = opt_id(info, input.material_id, "Material", "material", "materialId")
            mode = PoolMode(input.mode)
            if mode is PoolMode.quota and input.value != int(input.value):
                raise UserError("INVALID_POOL", "a quota is a whole number of units", "value")
            return await service.set_pool(session, channel_id, mode, input.value, material_id)

        pool, errors = await in_tenant(info, work)
        return AllocationPoolPayload(
            allocation_pool=AllocationPoolNode.from_row(pool) if pool else None, user_errors=errors
        )

    @strawberry.mutation(permission_classes=WRITE)
    async def set_low_stock_protection(
        self, info: Info, input: SetLowStockProtectionInput
    ) -> LowStockProtectionPayload:
        async def work(session):
            await service.set_protect_below(session, input.protect_below)
            return InventorySettings(protect_below=await atp.protect_below(session))

        settings, errors = await in_tenant(info, work)
        return LowStockProtectionPayload(settings=settings, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Hold stock for an order: every line or none (INSUFFICIENT_STOCK). Idempotent on"
        " the reference.",
    )
    async def reserve_stock(self, info: Info, input: ReserveStockInput) -> ReserveStockPayload:
        async def work(session):
            reference = _reference(input.reference)
            if not 0 < len(input.lines) <= MAX_RESERVE_LINES:
                raise UserError("INVALID_LINES", f"give 1-{MAX_RESERVE_LINES} lines", "lines")
            lines = [
                service.ReserveLine(
                    need_id(info, line.product_id, "Product", "product", ["lines", str(i), "productId"]),
                    check_quantity(line.quantity, ["lines", str(i), "quantity"]),
                )
                for i, line in enumerate(input.lines)
            ]
            channel_id = opt_id(info, input.channel_id, "Channel", "channel", "channelId")
            # Safe under concurrency on its own: a second call for the reference waits for the first.
            await service.reserve(
                session, lines, reference=reference, channel_id=channel_id, actor=actor(info)
            )
            return await _reservations(session, reference)

        rows, errors = await in_tenant(info, work)
        return ReserveStockPayload(reservations=rows, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Give back what a reference holds. Releasing it again gives back nothing.",
    )
    async def release_stock(self, info: Info, input: ReleaseStockInput) -> ReleaseStockPayload:
        async def work(session):
            reference = _reference(input.reference)
            reason = clean_text(input.reason, "reason", 300, "INVALID_REASON")
            exists = await session.scalar(
                select(Reservation.id).where(Reservation.reference == reference).limit(1)
            )
            if exists is None:
                raise NotFound("reservation", "reference")
            released = await service.release(session, reference, actor=actor(info), reason=reason)
            await session.flush()
            return released, await _reservations(session, reference)

        result, errors = await in_tenant(info, work)
        if result is None:
            return ReleaseStockPayload(user_errors=errors)
        return ReleaseStockPayload(released=result[0], reservations=result[1])
