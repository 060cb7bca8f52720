"""DataLoaders of the order types, one per relation, so an order list page runs a constant number of
SQL statements whatever its size (tests/test_orders_api.py counts them).

Kept on the request context under ``_loaders["orders"]``; a subscription drops them between batches so a
long-lived websocket never serves a stale order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from app.customers.models import Customer
from app.orders.models import Order, OrderEvent, OrderHold, OrderLine, OrderLineMaterial, OrderMerge

EventPageKey = tuple[int, int, int]  # (order id, events after this id, how many rows to fetch)


class OrderLoaders:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.order = self._rows(Order)
        self.customer = self._rows(Customer)
        self.event = self._rows(OrderEvent)
        self.lines = self._children(OrderLine, OrderLine.order_id, OrderLine.id)
        self.line_materials = self._children(
            OrderLineMaterial, OrderLineMaterial.line_id, OrderLineMaterial.material_id
        )
        self.holds = self._children(
            OrderHold, OrderHold.order_id, OrderHold.id, OrderHold.released_at.is_(None)
        )
        self.event_page = DataLoader(load_fn=self._event_pages)
        self.merge = self._rows(OrderMerge)
        self.merge_members = self._children(Order, Order.merge_id, Order.id)  # oldest first

    def _rows(self, model) -> DataLoader[int, Any]:
        async def load(keys: list[int]) -> list[Any]:
            async with self._ctx.tenant_session() as session:
                rows = (await session.scalars(select(model).where(model.id.in_(keys)))).all()
            found = {row.id: row for row in rows}
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=load)

    def _children(self, model, parent, order_by, *where) -> DataLoader[int, list[Any]]:
        async def load(keys: list[int]) -> list[list[Any]]:
            query = select(model).where(parent.in_(keys), *where).order_by(parent, order_by)
            async with self._ctx.tenant_session() as session:
                rows = (await session.scalars(query)).all()
            return _grouped(rows, parent.key, keys)

        return DataLoader(load_fn=load)

    async def _event_pages(self, keys: list[EventPageKey]) -> list[list[OrderEvent]]:
        """Oldest-first timeline pages of many orders: one window query per distinct (after, size)."""
        by_page: dict[tuple[int, int], list[int]] = defaultdict(list)
        for order_id, after, limit in keys:
            by_page[(after, limit)].append(order_id)
        found: dict[EventPageKey, list[OrderEvent]] = {}
        async with self._ctx.tenant_session() as session:
            for (after, limit), order_ids in by_page.items():
                rank = func.row_number().over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id)
                inner = (
                    select(OrderEvent, rank.label("rank"))
                    .where(OrderEvent.order_id.in_(order_ids), OrderEvent.id > after)
                    .subquery()
                )
                event = aliased(OrderEvent, inner)
                query = select(event).where(inner.c.rank <= limit).order_by(inner.c.order_id, inner.c.id)
                grouped = _grouped((await session.scalars(query)).all(), "order_id", order_ids)
                for order_id, rows in zip(order_ids, grouped, strict=True):
                    found[(order_id, after, limit)] = rows
        return [found[key] for key in keys]


def _grouped(rows: Sequence[Any], attr: str, keys: Sequence[int]) -> list[list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, attr)].append(row)
    return [groups.get(key, []) for key in keys]


def order_loaders(info: Info) -> OrderLoaders:
    store = info.context._loaders
    if "orders" not in store:
        store["orders"] = OrderLoaders(info.context)
    return store["orders"]


def forget_loaders(info: Info) -> None:
    """Drop every cached row of this context (subscriptions: each batch reads fresh)."""
    info.context._loaders.pop("orders", None)
    info.context.__dict__.pop("loaders", None)  # Context.loaders is a cached_property
