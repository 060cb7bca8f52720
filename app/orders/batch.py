"""Set-based ingest: many new, plain orders of one channel created with a fixed number of statements.

``ingest`` creates one order with some fifty statements; at the rates channels deliver on a promotion
day that is Python time, not database time. This module is the fast path for the common case: a new,
paid order whose lines all resolve to active products that cannot go short, that no audit rule would
hold, and whose stock is there. Such an order's outcome is fully determined, so the rows are written
for the whole batch at once: customers and their identities, orders, lines, materials, timeline, usage
events, outbox rows, then the network reservation (the batch's materials locked in id order, one
conditional UPDATE), its ledger movements and channel usage, each one statement. They are the rows
``ingest`` would write (tests compare both paths).

Everything else is left to ``ingest``, order by order: known orders (updates), cancellations, unpaid
orders, orders the platform fulfils itself (nothing to reserve), anything an audit rule might hold (the
rules are screened set-based; ``ingest`` then decides exactly), unknown/inactive items, presale or
backorder products, materials a capped channel pool limits, buyers whose identities point at several
customers, and a second order of one buyer to one address in the batch (a possible duplicate). The fast
path runs in a savepoint and is all or nothing: if a race or short stock shows while writing (a twin
delivery claimed an order, other orders took the stock, a new customer's phone was claimed meanwhile, a
deadlock), it is rolled back and every order of the batch takes the one-order path, which handles each of
those cases.

Two steps, a module each: ``batch_plan`` reads (which orders take the fast path, and what each needs),
``batch_write`` writes their rows."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.models import Channel
from app.channels.normalized import NormalizedOrder
from app.db import is_lost_connection, is_transient, session_tenant
from app.orders.batch_plan import Read, plan_batch
from app.orders.batch_write import Abort, write_batch
from app.orders.ingest import IngestResult, order_number
from app.orders.models import OrderStatus as S


async def ingest_batch(
    session: AsyncSession,
    channel: Channel,
    items: list[tuple[NormalizedOrder, int | None]],
    *,
    actor: str,
) -> tuple[dict[int, IngestResult], list[int]]:
    """Create the plain new orders among ``items`` set-based, in the caller's transaction.

    Returns (results by index for the orders created here, the indexes left for ``ingest``, in order).
    """
    everything = list(range(len(items)))
    if not channel.active or not items:
        return {}, everything
    tenant_id = session_tenant(session).id
    read = Read()
    plans, rest = await plan_batch(session, channel, items, tenant_id, read)
    if not plans:
        return {}, everything
    try:
        async with session.begin_nested():
            await write_batch(session, channel, plans, read, tenant_id, actor)
    except Abort:
        return {}, everything
    except Exception as exc:
        if not is_transient(exc) or is_lost_connection(exc):  # no going on in a broken session
            raise
        return {}, everything  # a deadlock or serialization failure: the one-order path retries
    results = {
        p.index: IngestResult(p.order_id, order_number(p.order_id), "created", S.reserved.value)
        for p in plans
    }
    return results, sorted(rest)
