"""Stock mutations at one location: receive, adjust, count, safety stock, defective, transfers.

Each is one ledger movement (two for a transfer) through ``app.inventory.service``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.inventory.common import WRITE, actor, clean_text
from app.api.inventory.ids import need_id, require_row
from app.api.inventory.types import StockLevelNode
from app.catalog.models import Material
from app.inventory import service
from app.inventory.models import Location, StockLevel


@strawberry.input
class ReceiveStockInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    quantity: int
    reference: str = strawberry.field(default="", description="E.g. the purchase order or ASN.")
    reason: str = ""


@strawberry.input
class AdjustStockInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    delta: int = strawberry.field(description="Signed change of on hand, e.g. -2 for two broken units.")
    reason: str


@strawberry.input
class CountStockInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    counted: int = strawberry.field(description="What was counted; on hand becomes this.")
    reference: str = ""


@strawberry.input
class SetSafetyStockInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    safety_stock: int


@strawberry.input
class MarkDefectiveInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    quantity: int
    reason: str = ""


@strawberry.input
class TransferStockInput:
    from_location_id: strawberry.ID
    to_location_id: strawberry.ID
    material_id: strawberry.ID
    quantity: int
    reference: str = ""


@strawberry.input
class ReceiveTransferInput:
    location_id: strawberry.ID
    material_id: strawberry.ID
    quantity: int
    reference: str = ""


@strawberry.type
class StockLevelPayload:
    stock_level: StockLevelNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class TransferStockPayload:
    source: StockLevelNode | None = None
    target: StockLevelNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


async def _target(
    info: Info, session: AsyncSession, location_gid, material_gid, location_field: str = "locationId"
) -> tuple[int, int]:
    """(location row, material row) of the caller's tenant, or NOT_FOUND for the field concerned."""
    location_id = need_id(info, location_gid, "Location", "location", location_field)
    material_id = need_id(info, material_gid, "Material", "material", "materialId")
    await require_row(session, Location, location_id, "location", location_field)
    await require_row(session, Material, material_id, "material", "materialId")
    return location_id, material_id


def _reference(value: str) -> str:
    return clean_text(value, "reference", 200, "INVALID_REFERENCE")


def _reason(value: str, *, required: bool = False) -> str:
    return clean_text(value, "reason", 300, "INVALID_REASON", required=required)


_TEXT = {"reference": _reference, "reason": _reason}


async def _change(
    info: Info, input, change: Callable[..., Awaitable[StockLevel]], amount: int, **text: str
) -> StockLevelPayload:
    """The body of every one-location stock mutation, in one tenant transaction: decode the location and
    material ids (NOT_FOUND unless the caller's), clean the ``text`` inputs (reference, reason), call
    ``change(session, location_id, material_id, amount, actor=…, **text)`` and answer with the new
    level, or with the user errors of any step."""

    async def work(session):
        location_id, material_id = await _target(info, session, input.location_id, input.material_id)
        cleaned = {name: _TEXT[name](value) for name, value in text.items()}
        return await change(session, location_id, material_id, amount, actor=actor(info), **cleaned)

    level, errors = await in_tenant(info, work)
    return StockLevelPayload(
        stock_level=StockLevelNode.from_row(level) if level else None, user_errors=errors
    )


@strawberry.type
class StockMutations:
    @strawberry.mutation(permission_classes=WRITE, description="Goods arrived at a location.")
    async def receive_stock(self, info: Info, input: ReceiveStockInput) -> StockLevelPayload:
        return await _change(
            info, input, service.receive, input.quantity, reference=input.reference, reason=input.reason
        )

    @strawberry.mutation(permission_classes=WRITE, description="Correct on hand up or down, with a reason.")
    async def adjust_stock(self, info: Info, input: AdjustStockInput) -> StockLevelPayload:
        return await _change(info, input, service.adjust, input.delta, reason=input.reason)

    @strawberry.mutation(permission_classes=WRITE, description="Record a stock count; on hand becomes it.")
    async def count_stock(self, info: Info, input: CountStockInput) -> StockLevelPayload:
        return await _change(info, input, service.count, input.counted, reference=input.reference)

    @strawberry.mutation(permission_classes=WRITE, description="Units kept back from every channel.")
    async def set_safety_stock(self, info: Info, input: SetSafetyStockInput) -> StockLevelPayload:
        return await _change(info, input, service.set_safety_stock, input.safety_stock)

    @strawberry.mutation(permission_classes=WRITE, description="Move units from on hand to defective.")
    async def mark_defective(self, info: Info, input: MarkDefectiveInput) -> StockLevelPayload:
        return await _change(info, input, service.mark_defective, input.quantity, reason=input.reason)

    @strawberry.mutation(
        permission_classes=WRITE, description="Transferred units arrived: in transit → on hand."
    )
    async def receive_transfer(self, info: Info, input: ReceiveTransferInput) -> StockLevelPayload:
        return await _change(info, input, service.receive_transfer, input.quantity, reference=input.reference)

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Ship units to another location: they leave on hand here and are in transit there.",
    )
    async def transfer_stock(self, info: Info, input: TransferStockInput) -> TransferStockPayload:
        async def work(session):
            source, material_id = await _target(
                info, session, input.from_location_id, input.material_id, "fromLocationId"
            )
            target, _ = await _target(info, session, input.to_location_id, input.material_id, "toLocationId")
            await service.transfer(
                session,
                source,
                target,
                material_id,
                input.quantity,
                reference=_reference(input.reference),
                actor=actor(info),
            )
            levels = [
                await session.get(StockLevel, (loc, material_id), populate_existing=True)
                for loc in (source, target)
            ]
            return levels

        levels, errors = await in_tenant(info, work)
        if levels is None:
            return TransferStockPayload(user_errors=errors)
        return TransferStockPayload(
            source=StockLevelNode.from_row(levels[0]), target=StockLevelNode.from_row(levels[1])
        )
