"""What every order resolver shares: scopes, the actor name, global ids, one-transaction mutations."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.api.permissions import requires
from app.api.relay import decode_tenant_node_id
from app.errors import NotFound

READ_SCOPE = "orders:read"
READ = requires(READ_SCOPE)
WRITE = requires("orders:write")
ADMIN = requires("tenant:admin")
ACTOR_MAX = 200  # order_events.actor / order_holds.created_by


async def actor_name(info: Info) -> str:
    """Who the timeline names: the user's e-mail, or ``api-key:<name>`` for an API key.

    Principal.actor ("user:7") means nothing to an operator reading the timeline; the lookup goes
    through the request's DataLoaders (control schema), so it costs one query per request at most.
    """
    ctx = info.context
    cached = ctx._loaders.get("actor_name")
    if cached is not None:
        return cached
    principal = ctx.require_principal()
    name = principal.actor
    if principal.user_id is not None:
        user = await ctx.loaders.user.load(principal.user_id)
        name = user.email if user is not None else name
    elif principal.api_key_id is not None:
        key = await ctx.loaders.api_key.load(principal.api_key_id)
        name = f"api-key:{key.name}" if key is not None else name
    ctx._loaders["actor_name"] = name[:ACTOR_MAX]
    return ctx._loaders["actor_name"]


def need_row(info: Info, gid: Any, type_name: str, what: str, field: str | list[str] = "id") -> int:
    """The row id in a tenant-scoped global id of ``type_name`` that is the caller's, else NOT_FOUND."""
    found = decode_tenant_node_id(info, gid, type_name)
    if found is None:
        raise NotFound(what, field)
    return found


def gid(info: Info, type_name: str, row: int) -> strawberry.ID:
    tenant = info.context.require_principal().tenant.id
    return strawberry.ID(relay.to_base64(type_name, f"{tenant}.{row}"))
