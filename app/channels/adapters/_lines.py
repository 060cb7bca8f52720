"""Turning platform line data into ``NormalizedLine``s, allocating order-level discounts on the way."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.channels.adapters._values import ZERO, allocate
from app.channels.normalized import AdapterError, NormalizedLine


@dataclass(slots=True)
class LineDraft:
    line_id: str
    item_id: str
    sku_id: str
    title: str
    quantity: int
    unit_price: Decimal
    gross: Decimal  # what the line costs before discounts (usually unit_price * quantity)
    discount: Decimal = ZERO  # discounts the platform already attributes to this line
    gift: bool | None = None  # None: decide from the amounts (a line discounted to zero is a free gift)
    path: str = "lines"


def build_lines(
    drafts: list[LineDraft], order_discount: Decimal = ZERO, discount_path: str = "order_discount"
) -> tuple[NormalizedLine, ...]:
    """Allocate ``order_discount`` over the lines in proportion to what each still costs, then freeze.

    The allocated parts sum exactly to ``order_discount`` (see ``allocate``); a line is never discounted
    below zero. ``discount_path`` names the payload field the order discount comes from, for errors.
    """
    if order_discount < 0:
        raise AdapterError(discount_path, f"negative order discount {order_discount}")
    remaining = [d.gross - d.discount for d in drafts]
    for d, left in zip(drafts, remaining, strict=True):
        if left < 0:
            raise AdapterError(d.path, f"discount {d.discount} exceeds the line amount {d.gross}")
    if order_discount > sum(remaining, ZERO):
        raise AdapterError(
            discount_path, f"order discount {order_discount} exceeds the lines' total {sum(remaining, ZERO)}"
        )
    shares = allocate(order_discount, remaining) if drafts else []
    lines = []
    for d, share in zip(drafts, shares, strict=True):
        discount = d.discount + share
        total = d.gross - discount
        gift = d.gift if d.gift is not None else total == ZERO
        lines.append(
            NormalizedLine(
                external_line_id=d.line_id,
                external_item_id=d.item_id,
                external_sku_id=d.sku_id,
                title=d.title,
                quantity=d.quantity,
                unit_price=d.unit_price,
                discount=discount,
                total=total,
                is_gift=gift,
            )
        )
    return tuple(lines)


def sum_money(values) -> Decimal:
    return sum(values, ZERO)
