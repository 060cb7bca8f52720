"""DataLoaders, one per relation, created per request so a list page runs a constant number of queries.

Loaders that read tenant-owned rows filter by the caller's tenant: an id from another tenant loads None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from app.activity.models import ActivityEvent
from app.api.inventory.loaders import InventoryLoaders
from app.catalog.models import ChannelListing, Material, Product
from app.catalog.service import components_of
from app.channels.models import Channel
from tenants.models import ApiKey, Invitation, Membership, User


def _by_id(rows: Sequence[Any], keys: Sequence[int]) -> list[Any]:
    found = {row.id: row for row in rows}
    return [found.get(key) for key in keys]


class Loaders:
    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.user = self._make(self._users)
        self.api_key = self._make(self._api_keys)
        self.membership = self._make(self._memberships)
        self.invitation = self._make(lambda keys: self._control_rows(Invitation, keys, tenant_scoped=True))
        self.activity_event = self._make(self._activity_events)
        self.material = self._make(lambda keys: self._tenant_rows(Material, keys))
        self.product = self._make(lambda keys: self._tenant_rows(Product, keys))
        self.product_components = self._make(self._product_components)
        self.channel = self._make(lambda keys: self._tenant_rows(Channel, keys))
        self.channel_listing = self._make(lambda keys: self._tenant_rows(ChannelListing, keys))
        self.inventory = InventoryLoaders(ctx)

    @staticmethod
    def _make(fn: Callable[[list[int]], Awaitable[list[Any]]]) -> DataLoader[int, Any]:
        return DataLoader(load_fn=fn)

    async def _control_rows(self, model, keys: list[int], *, tenant_scoped: bool) -> list[Any]:
        query = select(model).where(model.id.in_(keys))
        if tenant_scoped:
            query = query.where(model.tenant_id == self._ctx.require_principal().tenant.id)
        async with self._ctx.control_session() as session:
            return _by_id((await session.scalars(query)).all(), keys)

    async def _users(self, keys: list[int]) -> list[User | None]:
        return await self._control_rows(User, keys, tenant_scoped=False)

    async def _api_keys(self, keys: list[int]) -> list[ApiKey | None]:
        return await self._control_rows(ApiKey, keys, tenant_scoped=True)

    async def _memberships(self, keys: list[int]) -> list[Membership | None]:
        return await self._control_rows(Membership, keys, tenant_scoped=True)

    async def _activity_events(self, keys: list[int]) -> list[ActivityEvent | None]:
        async with self._ctx.tenant_session() as session:
            rows = (await session.scalars(select(ActivityEvent).where(ActivityEvent.id.in_(keys)))).all()
        return _by_id(rows, keys)

    async def _tenant_rows(self, model, keys: list[int]) -> list[Any]:
        async with self._ctx.tenant_session() as session:
            return _by_id((await session.scalars(select(model).where(model.id.in_(keys)))).all(), keys)

    async def _product_components(self, keys: list[int]) -> list[list[tuple[int, int]]]:
        """Product id -> [(material id, quantity)]."""
        async with self._ctx.tenant_session() as session:
            found = await components_of(session, keys)
        return [found[key] for key in keys]
