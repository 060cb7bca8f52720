"""Split approval: an order whose best plan needs more shipments than the policy allows
(``max_shipments``, the engine's ``needs_split_approval``) is put on hold with the code
``split_approval``; releasing that hold (``releaseHolds``) is the approval.

The hold release sends the order back to stock and routing (``orders.proceed``), and the next routing
of the order finds the released hold not used yet by any decision (``approval``): it routes with the
shipment limit lifted (``lifted``) and stores in its decision row's ``policy`` who approved
(``split_approval``), which also marks the approval as used, so it counts for that one attempt only.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders import service as orders
from app.orders import states
from app.orders.models import Order, OrderHold, OrderStatus
from app.routing.models import RoutingDecision
from app.routing.policy import Policy

HOLD_CODE = "split_approval"
RECORD_KEY = "split_approval"  # in routing_decisions.policy


async def approval(session: AsyncSession, order_id: int) -> OrderHold | None:
    """The order's latest released split-approval hold, if no decision used it yet."""
    hold = await session.scalar(
        select(OrderHold)
        .where(
            OrderHold.order_id == order_id,
            OrderHold.code == HOLD_CODE,
            OrderHold.released_at.is_not(None),
        )
        .order_by(OrderHold.id.desc())
        .limit(1)
    )
    if hold is None:
        return None
    used = await session.scalar(
        select(RoutingDecision.id)
        .where(
            RoutingDecision.order_id == order_id,
            RoutingDecision.policy[RECORD_KEY]["hold_id"].as_integer() == hold.id,
        )
        .limit(1)
    )
    return None if used else hold


def lifted(policy: Policy) -> Policy:
    """The policy without any shipment limit (its field and its ``max_shipments`` rules)."""
    return dataclasses.replace(
        policy, max_shipments=None, rules=tuple(r for r in policy.rules if r.kind != "max_shipments")
    )


def record(hold: OrderHold, policy: Policy) -> dict:
    """What the decision row keeps of the approval (beside the policy it was decided with)."""
    limits = [policy.max_shipments] if policy.max_shipments else []
    limits += [int(r.params["max"]) for r in policy.rules if r.kind == "max_shipments" and r.enabled]
    return {
        "hold_id": hold.id,
        "approved_by": hold.released_by,
        "approved_at": hold.released_at.isoformat() if hold.released_at else None,
        "lifted_limit": min(limits) if limits else None,
    }


async def hold_for_approval(session: AsyncSession, order: Order, reason: str, *, actor: str) -> bool:
    """Hold the order until someone approves the split; False when its status cannot be held (e.g. a
    re-route of an order already released: it keeps its status and the timeline says why)."""
    if OrderStatus.on_hold not in states.TRANSITIONS[OrderStatus(order.status)]:
        return False
    await orders.place_holds(session, order, [(HOLD_CODE, 0, reason[:500])], actor=actor)
    return True
