"""The order state machine: every legal transition, declared once.

``TRANSITIONS[from]`` lists the statuses an order may move to. Anything else is a user error
(``ILLEGAL_TRANSITION``), whoever asks: an operator, an automation or a worker.
"""

from __future__ import annotations

from app.errors import UserError
from app.orders.models import OrderStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    # received -> shipped: the platform ships it from its own stock (``fulfilled_by_platform``).
    S.received: frozenset({S.on_hold, S.reserved, S.awaiting_stock, S.presale, S.shipped, S.cancelled}),
    S.on_hold: frozenset({S.received, S.reserved, S.awaiting_stock, S.presale, S.cancelled}),
    S.awaiting_stock: frozenset({S.reserved, S.on_hold, S.cancelled}),
    S.presale: frozenset({S.reserved, S.routed, S.on_hold, S.cancelled}),
    S.reserved: frozenset({S.routed, S.on_hold, S.cancelled}),
    S.routed: frozenset({S.released, S.reserved, S.on_hold, S.cancelled}),
    S.released: frozenset({S.partially_shipped, S.shipped, S.routed, S.cancelled}),
    S.partially_shipped: frozenset({S.shipped, S.cancelled}),
    S.shipped: frozenset({S.delivered, S.returned}),
    S.delivered: frozenset({S.completed, S.returned}),
    S.completed: frozenset({S.returned}),
    S.cancelled: frozenset(),
    S.returned: frozenset(),
}

# Before these, the order has not left any warehouse: holds, address edits and a plain cancel are fine.
BEFORE_RELEASE = frozenset({S.received, S.on_hold, S.awaiting_stock, S.presale, S.reserved, S.routed})
# Stock is reserved for the order in these statuses (cancel must give it back).
HOLDS_STOCK = frozenset({S.reserved, S.presale, S.routed, S.released, S.partially_shipped})
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def check(current: S, target: S) -> None:
    if target not in TRANSITIONS[current]:
        raise UserError(
            "ILLEGAL_TRANSITION",
            f"an order that is {current.value} cannot become {target.value}",
            "status",
        )
