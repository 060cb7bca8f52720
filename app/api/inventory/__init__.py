"""GraphQL for inventory: locations, stock levels and the ledger, reservations, pools, ATP, alerts,
publications, bulk and CSV stock imports. ``schema.py`` mixes in the two classes below."""

from __future__ import annotations

import strawberry

from app.api.inventory.allocation import AllocationMutations
from app.api.inventory.bulk import BulkStockMutations
from app.api.inventory.locations import LocationMutations
from app.api.inventory.queries import InventoryQueries
from app.api.inventory.stock import StockMutations


@strawberry.type
class InventoryMutations(LocationMutations, StockMutations, AllocationMutations, BulkStockMutations):
    pass


__all__ = ["InventoryMutations", "InventoryQueries"]
