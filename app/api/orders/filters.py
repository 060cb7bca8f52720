"""The order list: its filter and sort inputs, and keyset pagination that stays stable under any sort.

A cursor carries the sort it was made for and the (sort value, id) of its row, so the next page starts
strictly after that row even when many orders share a placed time or a total. Ids in a filter that are
not the caller's (another tenant's, another type, garbage) match nothing.
"""

from __future__ import annotations

import base64
import enum
import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

import strawberry
from sqlalchemy import Select, false, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.types import Info

from app.api.filters import contains, text_is
from app.api.orders.types import OrderNode, OrderStatusEnum
from app.api.relay import DEFAULT_PAGE, MAX_PAGE, connection, decode_tenant_node_id
from app.errors import UserError
from app.orders.models import Order, OrderStatus

MAX_IN_LIST = 100


@strawberry.enum
class OrderSortField(enum.Enum):
    PLACED_AT = "placed_at"
    CREATED_AT = "created_at"
    TOTAL = "total"


@strawberry.enum
class SortDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input
class OrderSort:
    field: OrderSortField = OrderSortField.PLACED_AT
    direction: SortDirection = SortDirection.DESC


@strawberry.input
class OrderFilter:
    number: str | None = None
    external_id: str | None = strawberry.field(default=None, description="The channel's order id.")
    customer_id: strawberry.ID | None = None
    status: list[OrderStatusEnum] | None = None
    channel_id: list[strawberry.ID] | None = None
    placed_from: datetime | None = strawberry.field(default=None, description="Placed at or after.")
    placed_to: datetime | None = strawberry.field(default=None, description="Placed before (exclusive).")
    search: str | None = strawberry.field(
        default=None, description="Part of the buyer's or recipient's name, phone or address."
    )
    on_hold: bool | None = None


def orders_query(info: Info, f: OrderFilter) -> Select:
    query = select(Order)
    query = text_is(query, Order.number, f.number)
    query = text_is(query, Order.external_id, f.external_id)
    if f.customer_id is not None:
        customer = decode_tenant_node_id(info, f.customer_id, "Customer")
        query = query.where(false() if customer is None else Order.customer_id == customer)
    if f.status is not None:
        query = query.where(Order.status.in_([OrderStatus(s.value) for s in f.status]))
    if f.channel_id is not None:
        if len(f.channel_id) > MAX_IN_LIST:
            raise UserError("TOO_MANY_IDS", f"give at most {MAX_IN_LIST} channel ids", "channelId")
        ids = {decode_tenant_node_id(info, g, "Channel") for g in f.channel_id} - {None}
        query = query.where(Order.channel_id.in_(ids) if ids else false())
    if f.placed_from is not None:
        query = query.where(Order.placed_at >= f.placed_from)
    if f.placed_to is not None:
        query = query.where(Order.placed_at < f.placed_to)
    if f.search and f.search.strip():
        pattern = contains(f.search)
        query = query.where(Order.search_text.ilike(pattern))
    if f.on_hold is not None:
        held = Order.status == OrderStatus.on_hold
        query = query.where(held if f.on_hold else ~held)
    return query


_COLUMNS = {
    OrderSortField.PLACED_AT: Order.placed_at,
    OrderSortField.CREATED_AT: Order.created_at,
    OrderSortField.TOTAL: Order.total,
}


def _encode(sort: OrderSort, row: Order) -> str:
    value = getattr(row, sort.field.value)
    raw = [sort.field.value, sort.direction.value, str(value) if isinstance(value, Decimal) else value]
    if isinstance(value, datetime):
        raw[2] = value.isoformat()
    raw.append(row.id)
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()


def _decode(sort: OrderSort, cursor: str) -> tuple[object, int]:
    try:
        field, direction, value, row = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if (field, direction) != (sort.field.value, sort.direction.value) or type(row) is not int:
            raise ValueError
        if not 0 < row < 2**63:
            raise ValueError
        if sort.field is OrderSortField.TOTAL:
            parsed: object = Decimal(value)
            if not (parsed.is_finite() and abs(parsed) < 10**14):
                raise ValueError
        else:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError
        return parsed, row
    except (ValueError, TypeError, InvalidOperation, UnicodeDecodeError) as exc:
        raise UserError("INVALID_CURSOR", "cursor is not valid for this sort", "after") from exc


async def paginate_orders(
    session: AsyncSession, query: Select, sort: OrderSort, *, first: int | None, after: str | None
) -> relay.Connection[OrderNode]:
    """Keyset pagination on (sort column, id): one SQL statement per page, ``first`` ≤ MAX_PAGE."""
    if first is not None and not 0 <= first <= MAX_PAGE:
        raise UserError("INVALID_PAGE_SIZE", f"first must be between 0 and {MAX_PAGE}", "first")
    limit = DEFAULT_PAGE if first is None else first
    column = _COLUMNS[sort.field]
    key = tuple_(column, Order.id)
    descending = sort.direction is SortDirection.DESC
    if after:
        value, row = _decode(sort, after)
        query = query.where(key < tuple_(value, row) if descending else key > tuple_(value, row))
    order_by = (column.desc(), Order.id.desc()) if descending else (column.asc(), Order.id.asc())
    rows = list((await session.scalars(query.order_by(*order_by).limit(limit + 1))).all())
    return connection(rows, limit, after, lambda r: (OrderNode.from_row(r), _encode(sort, r)))
