"""Channel stock sync: compute what each affected listing should show and publish changes. One job per
tenant syncs every material changed since the last run (the debounce is in ``app.inventory.signals``).

Until channel adapters exist, a publication is recorded with the payload that would be pushed; the
listing's ``last_published_qty`` makes a second run publish nothing new (idempotent).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.models import ChannelListing, ProductComponent
from app.channels.models import Channel
from app.inventory import signals
from app.inventory.atp import channel_atp, product_atp
from app.inventory.models import StockPublication, SyncRequest

UNLIMITED_PUBLISH_QTY = 9999  # what virtual/service listings show
MAX_ROUNDS = 5


async def sync_pending(session: AsyncSession) -> int:
    """Consume the tenant's sync buffer and publish every listing whose quantity changed.

    The buffer is deleted in rounds until one finds it empty: a change that relied on this job holds a
    lock on a buffer row, which makes a round wait for its commit, and the next round (a new snapshot)
    then sees its materials (see ``app.inventory.signals``). Past MAX_ROUNDS of steady changes, the rest
    is left to a follow-up job."""
    materials: set[int] = set()
    for _ in range(MAX_ROUNDS):
        taken = (await session.scalars(delete(SyncRequest).returning(SyncRequest.material_id))).all()
        if not taken:
            break
        materials.update(taken)
    else:
        await signals.enqueue_sync(session)
    if not materials:
        return 0
    materials = sorted(materials)
    product_ids = select(ProductComponent.product_id).where(ProductComponent.material_id.in_(materials))
    listings = (
        await session.scalars(
            select(ChannelListing).where(ChannelListing.product_id.in_(product_ids), ChannelListing.active)
        )
    ).all()
    return await publish(session, listings)


async def publish(session: AsyncSession, listings) -> int:
    components = await catalog.explode(session, sorted({lst.product_id for lst in listings}))
    by_channel: dict[int, list[ChannelListing]] = defaultdict(list)
    for listing in listings:
        by_channel[listing.channel_id].append(listing)
    published = 0
    for channel_id, channel_listings in by_channel.items():
        channel = await session.get(Channel, channel_id)
        material_ids = sorted({m for lst in channel_listings for m, _ in components.get(lst.product_id, [])})
        atp = await channel_atp(session, channel_id, material_ids) if material_ids else {}
        for listing in channel_listings:
            qty = product_atp(components.get(listing.product_id, []), atp)
            qty = UNLIMITED_PUBLISH_QTY if qty is None else qty
            if qty == listing.last_published_qty:
                continue
            session.add(
                StockPublication(
                    listing_id=listing.id,
                    quantity=qty,
                    payload={
                        "channel": channel.code,
                        "platform": channel.platform,
                        "item_id": listing.external_item_id,
                        "sku_id": listing.external_sku_id,
                        "quantity": qty,
                    },
                )
            )
            listing.last_published_qty = qty
            published += 1
    return published
