"""DataLoaders of the inventory types; registered on the request's Loaders as ``loaders.inventory``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_
from strawberry.dataloader import DataLoader

from app.inventory.models import (
    AllocationPool,
    Location,
    Reservation,
    StockAlert,
    StockLevel,
    StockMovement,
    StockPublication,
)


class InventoryLoaders:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.location = self._rows(Location)
        self.stock_movement = self._rows(StockMovement)
        self.reservation = self._rows(Reservation)
        self.allocation_pool = self._rows(AllocationPool)
        self.stock_alert = self._rows(StockAlert)
        self.stock_publication = self._rows(StockPublication)
        self.stock_level = DataLoader(load_fn=self._levels)

    def _rows(self, model) -> DataLoader[int, Any]:
        async def load(keys: list[int]) -> list[Any]:
            async with self._ctx.tenant_session() as session:
                rows = (await session.scalars(select(model).where(model.id.in_(keys)))).all()
            return _in_order({row.id: row for row in rows}, keys)

        return DataLoader(load_fn=load)

    async def _levels(self, keys: list[tuple[int, int]]) -> list[StockLevel | None]:
        pair = tuple_(StockLevel.location_id, StockLevel.material_id)
        async with self._ctx.tenant_session() as session:
            rows = (await session.scalars(select(StockLevel).where(pair.in_(keys)))).all()
        return _in_order({(r.location_id, r.material_id): r for r in rows}, keys)


def _in_order(found: dict, keys: Sequence) -> list[Any]:
    return [found.get(key) for key in keys]
