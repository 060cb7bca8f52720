"""Relay helpers: keyset-paginated connections over SQLAlchemy queries, and global id decoding."""

from __future__ import annotations

import base64
import inspect
from collections import defaultdict
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.relay.fields import NodeExtension
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.cast import cast as strawberry_cast

from app.api.scopes import required_scope
from app.errors import UserError

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 20
MAX_NODES = 100  # ids per nodes(ids:) call


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"c:{key}".encode()).decode()


MAX_KEY_DIGITS = 18  # every 18-digit number fits a bigint; 19 digits may not


def row_id(text: str) -> int | None:
    """A database id from its decimal text, or None: only ASCII digits ("²".isdigit() is true but int()
    refuses it; " 1" and "1_0" are not ids either), and few enough of them to fit a bigint."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_KEY_DIGITS:
        return int(text)
    return None


def decode_cursor(cursor: str) -> int:
    """The key inside a cursor of ``encode_cursor``; INVALID_CURSOR for anything else, including keys
    no id column can hold (which would otherwise reach the database and fail there)."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, AttributeError):
        raw = ""
    kind, _, key = raw.partition(":")
    found = row_id(key) if kind == "c" else None
    if found is None:
        raise UserError("INVALID_CURSOR", "cursor is not valid", "after")
    return found


def decode_node_id(gid: strawberry.ID | str, type_name: str, field: str = "id") -> int | None:
    """The database id inside a global id of the expected type, or None (treated as not found)."""
    try:
        parsed = relay.GlobalID.from_id(str(gid))
    except Exception:
        return None
    if parsed.type_name != type_name:
        return None
    return row_id(parsed.node_id)


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
    return [row_id(str(raw)) for raw in node_ids]


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
        mine = principal is not None and tenant == str(principal.tenant.id)
        out.append(row_id(row) if mine else None)
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


class RowLoader:
    """``load_many`` of one model's rows by id in the tenant session: for node types that have no
    per-request DataLoader (their lists are read in one query elsewhere)."""

    def __init__(self, info, model) -> None:
        self.info = info
        self.model = model

    async def load_many(self, ids: list[int]) -> list[Any]:
        async with self.info.context.tenant_session() as session:
            return list((await session.scalars(select(self.model).where(self.model.id.in_(ids)))).all())


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


def _node_type(info, type_name: str) -> type[relay.Node] | None:
    """The node class a global id names, or None for every other name: unknown ones, interfaces (``Node``
    itself), scalars, inputs, and object types that are not nodes (``Query``, ``Money``)."""
    definition = info.schema.get_type_by_name(type_name)
    if not isinstance(definition, StrawberryObjectDefinition):
        return None
    if definition.is_interface or definition.is_input:
        return None
    origin = definition.origin
    return origin if isinstance(origin, type) and issubclass(origin, relay.Node) else None


async def _resolve_global_ids(info, ids: list[strawberry.ID]) -> list[Any]:
    """The node of each global id, in order; None for anything that does not name one of ours."""
    wanted: defaultdict[type[relay.Node], list[tuple[int, str]]] = defaultdict(list)
    for index, gid in enumerate(ids):
        try:
            parsed = relay.GlobalID.from_id(str(gid))
        except Exception:
            continue
        node_type = _node_type(info, parsed.type_name)
        if node_type is not None:
            wanted[node_type].append((index, parsed.node_id))
    out: list[Any] = [None] * len(ids)
    for node_type, entries in wanted.items():
        node_ids = [node_id for _, node_id in entries]
        nodes = node_type.resolve_nodes(info=info, node_ids=node_ids, required=False)
        if inspect.isawaitable(nodes):
            nodes = await nodes
        for (index, _), node in zip(entries, list(nodes), strict=False):
            out[index] = None if node is None else strawberry_cast(node_type, node)
    return out


class _NodeLookup(NodeExtension):
    """Strawberry's ``node``/``nodes`` resolvers, except that an id naming no node of ours (garbage, an
    unknown type, ``Node`` or ``Query``) is simply not found instead of an error, and ``nodes`` takes
    at most MAX_NODES ids. Same arguments, so the schema does not change."""

    def get_node_resolver(self, field):
        async def resolver(
            info: strawberry.Info,
            id: Annotated[strawberry.ID, strawberry.argument(description="The ID of the object.")],
        ) -> Any:
            return (await _resolve_global_ids(info, [id]))[0]

        return resolver

    def get_node_list_resolver(self, field):
        async def resolver(
            info: strawberry.Info,
            ids: Annotated[list[strawberry.ID], strawberry.argument(description="The IDs of the objects.")],
        ) -> list[Any]:
            if len(ids) > MAX_NODES:
                raise UserError("BAD_USER_INPUT", f"at most {MAX_NODES} ids at once", "ids")
            return await _resolve_global_ids(info, ids)

        return resolver


def node_field(**kwargs: Any) -> Any:
    """Use instead of ``relay.node()`` for the ``node`` and ``nodes`` query fields."""
    return strawberry.field(default=strawberry.UNSET, extensions=[_NodeLookup()], **kwargs)
