"""Relay helpers: keyset-paginated connections over SQLAlchemy queries, and global id decoding."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import strawberry
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from app.api.scopes import required_scope
from app.errors import UserError

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 20


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"c:{key}".encode()).decode()


MAX_KEY_DIGITS = 18  # every 18-digit number fits a bigint; 19 digits may not


def decode_cursor(cursor: str) -> int:
    """The key inside a cursor of ``encode_cursor``; INVALID_CURSOR for anything else, including keys
    no id column can hold (which would otherwise reach the database and fail there)."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, AttributeError):
        raw = ""
    kind, _, key = raw.partition(":")
    if kind != "c" or not (key.isascii() and key.isdigit() and len(key) <= MAX_KEY_DIGITS):
        raise UserError("INVALID_CURSOR", "cursor is not valid", "after")
    return int(key)


def decode_node_id(gid: strawberry.ID | str, type_name: str, field: str = "id") -> int | None:
    """The database id inside a global id of the expected type, or None (treated as not found)."""
    try:
        parsed = relay.GlobalID.from_id(str(gid))
    except Exception:
        return None
    if parsed.type_name != type_name:
        return None
    try:
        return int(parsed.node_id)
    except ValueError:
        return None


async def paginate(
    session: AsyncSession,
    query: Select,
    key_column: Any,
    to_node,
    *,
    first: int | None,
    after: str | None,
    newest_first: bool = True,
) -> relay.Connection[Any]:
    """Keyset pagination on a unique, monotonically assigned column (ids), newest first by default.

    One SQL statement per page; ``first`` is capped at MAX_PAGE.
    """
    if first is not None and (first < 0 or first > MAX_PAGE):
        raise UserError("INVALID_PAGE_SIZE", f"first must be between 0 and {MAX_PAGE}", "first")
    limit = DEFAULT_PAGE if first is None else first
    if after:
        key = decode_cursor(after)
        query = query.where(key_column < key if newest_first else key_column > key)
    query = query.order_by(key_column.desc() if newest_first else key_column.asc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    return connection(rows, limit, after, lambda row: (to_node(row), encode_cursor(_key(row, key_column))))


def connection(rows: list[Any], limit: int, after: str | None, edge) -> relay.Connection[Any]:
    """A page from ``limit + 1`` fetched rows (the extra one only says there is a next page);
    ``edge(row)`` gives the row's (node, cursor)."""
    edges = [relay.Edge(node=node, cursor=cursor) for node, cursor in map(edge, rows[:limit])]
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=len(rows) > limit,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


def _key(row: Any, key_column: Any) -> int:
    return getattr(row, key_column.key)


def int_ids(node_ids) -> list[int | None]:
    out: list[int | None] = []
    for raw in node_ids:
        try:
            out.append(int(raw))
        except (TypeError, ValueError):
            out.append(None)
    return out


class TenantScopedNode(relay.Node):
    """Base for types stored in tenant schemas.

    Their rows are numbered per schema, so row 1 exists in every tenant; their global id therefore
    carries the tenant (``Type:<tenant id>.<row id>``) and another tenant's id resolves to nothing.
    """

    @classmethod
    def resolve_id(cls, root, *, info) -> str:
        return f"{info.context.require_principal().tenant.id}.{root.id}"


def tenant_row_ids(info, node_ids) -> list[int | None]:
    """Row ids from ``<tenant id>.<row id>`` node ids; None where the tenant is not the caller's."""
    principal = info.context.principal
    out: list[int | None] = []
    for raw in node_ids:
        tenant, _, row = str(raw).partition(".")
        # isascii: "²".isdigit() is true but int() refuses it; 18 digits keep it inside bigint.
        ok = principal is not None and tenant == str(principal.tenant.id) and row.isascii()
        ok = ok and row.isdigit() and len(row) <= 18
        out.append(int(row) if ok else None)
    return out


def decode_tenant_node_id(info, gid: strawberry.ID | str | None, type_name: str) -> int | None:
    """The row id inside a tenant-scoped global id of the expected type, or None (treated as not
    found): garbage, another type, and another tenant's id all look the same."""
    if gid is None:
        return None
    try:
        parsed = relay.GlobalID.from_id(str(gid))
    except Exception:
        return None
    if parsed.type_name != type_name:
        return None
    return tenant_row_ids(info, [parsed.node_id])[0]


async def load_nodes(info, loader, node_ids, build, *, tenant_scoped: bool = False):
    """Shared resolve_nodes body: nothing for callers without the type's scope (its ``@guarded_by``,
    read from the class ``build`` belongs to), None for foreign ids."""
    scope = required_scope(build.__self__)
    principal = info.context.principal
    ids = tenant_row_ids(info, node_ids) if tenant_scoped else int_ids(node_ids)
    if principal is None or scope not in principal.scopes:
        return [None] * len(ids)
    rows = await loader.load_many([i for i in ids if i is not None])
    by_id = {row.id: row for row in rows if row is not None}
    return [build(by_id[i]) if i in by_id else None for i in ids]
