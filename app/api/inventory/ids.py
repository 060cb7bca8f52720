"""Global ids of tenant-schema rows, in and out.

Inputs take plain ``ID``s and decode them here, so an id of another tenant, of the wrong type or plain
garbage is a NOT_FOUND user error rather than a top-level GraphQL error. Ids of catalog and channel
rows are written in the same ``Type:<tenant id>.<row id>`` form their own nodes use.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from app.api.relay import decode_tenant_node_id
from app.errors import NotFound

MAX_IDS = 100


def row_id(info, gid: Any, type_name: str) -> int | None:
    """The row id inside a tenant-scoped global id of ``type_name`` owned by the caller, else None."""
    return decode_tenant_node_id(info, gid, type_name)


def need_id(info, gid: Any, type_name: str, what: str, field: str | list[str]) -> int:
    found = row_id(info, gid, type_name)
    if found is None:
        raise NotFound(what, field)
    return found


def opt_id(info, gid: Any, type_name: str, what: str, field: str | list[str]) -> int | None:
    return None if gid is None else need_id(info, gid, type_name, what, field)


def gid(info, type_name: str, row: Any) -> strawberry.ID:
    """The global id a tenant-scoped node of ``type_name`` with row id ``row`` has for this caller."""
    tenant = info.context.require_principal().tenant.id
    return strawberry.ID(relay.to_base64(type_name, f"{tenant}.{row}"))


def opt_gid(info, type_name: str, row: Any) -> strawberry.ID | None:
    return None if row is None else gid(info, type_name, row)


async def require_row(session: AsyncSession, model, row: int, what: str, field: str | list[str]):
    found = await session.get(model, row)
    if found is None:
        raise NotFound(what, field)
    return found
