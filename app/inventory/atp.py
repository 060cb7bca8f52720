"""Available-to-promise per channel: network stock, minus the low-stock protection for non-core
channels, capped by the channel's allocation pool (shared, fixed quota, or a percentage)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import any_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.channels.models import Channel
from app.errors import NotFound
from app.inventory.models import (
    AllocationPool,
    ChannelUsage,
    InventorySettings,
    NetworkStock,
    PoolMode,
)


@dataclass(frozen=True)
class ChannelRules:
    channel_id: int
    is_core: bool
    protect_below: int
    pools: dict[int | None, AllocationPool]  # material id (None = channel default) -> pool

    def pool_for(self, material_id: int) -> AllocationPool | None:
        return self.pools.get(material_id) or self.pools.get(None)

    def floor(self) -> int:
        """Units a non-core channel must leave for core channels."""
        return 0 if self.is_core else self.protect_below


def pool_limit(pool: AllocationPool | None, on_hand: int, safety_stock: int) -> int | None:
    """Most units the channel may hold reserved for a material; None = no cap."""
    if pool is None or pool.mode is PoolMode.shared:
        return None
    if pool.mode is PoolMode.quota:
        return int(pool.value)
    return math.floor(float(pool.value) * max(on_hand - safety_stock, 0) / 100)


async def protect_below(session: AsyncSession) -> int:
    return await session.scalar(select(InventorySettings.protect_below).where(InventorySettings.id == 1)) or 0


async def channel_rules(session: AsyncSession, channel_id: int, material_ids: list[int]) -> ChannelRules:
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("channel", "channelId")
    pools = (
        await session.scalars(
            select(AllocationPool).where(
                AllocationPool.channel_id == channel_id,
                or_(
                    AllocationPool.material_id.is_(None),
                    AllocationPool.material_id == any_(arrays.ids(material_ids)),
                ),
            )
        )
    ).all()
    return ChannelRules(
        channel_id, channel.is_core, await protect_below(session), {p.material_id: p for p in pools}
    )


async def channel_atp(session: AsyncSession, channel_id: int, material_ids: list[int]) -> dict[int, int]:
    """ATP per material for one channel (0 for materials with no stock)."""
    rules = await channel_rules(session, channel_id, material_ids)
    network = {
        n.material_id: n
        for n in (
            await session.scalars(
                select(NetworkStock).where(NetworkStock.material_id == any_(arrays.ids(material_ids)))
            )
        )
    }
    usage = dict(
        (
            await session.execute(
                select(ChannelUsage.material_id, ChannelUsage.reserved).where(
                    ChannelUsage.channel_id == channel_id,
                    ChannelUsage.material_id == any_(arrays.ids(material_ids)),
                )
            )
        ).all()
    )
    result: dict[int, int] = {}
    for material_id in material_ids:
        n = network.get(material_id)
        if n is None:
            result[material_id] = 0
            continue
        atp = n.on_hand - n.reserved - n.safety_stock - rules.floor()
        limit = pool_limit(rules.pool_for(material_id), n.on_hand, n.safety_stock)
        if limit is not None:
            atp = min(atp, limit - usage.get(material_id, 0))
        result[material_id] = max(atp, 0)
    return result


def product_atp(components: list[tuple[int, int]], atp: dict[int, int]) -> int | None:
    """A bundle's ATP is the minimum over its components; no components (virtual, service) = unlimited."""
    if not components:
        return None
    return min(atp.get(material_id, 0) // quantity for material_id, quantity in components)
