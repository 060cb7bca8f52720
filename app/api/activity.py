"""GraphQL for the tenant's activity log (lives in the tenant schema)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.activity import service
from app.activity.models import ActivityEvent
from app.api.permissions import requires
from app.api.relay import TenantScopedNode, load_nodes, paginate
from app.api.scopes import guarded_by


@guarded_by("tenant:read")
@strawberry.type(name="ActivityEvent")
class ActivityEventNode(TenantScopedNode):
    id: relay.NodeID[int]
    kind: str
    actor: str
    data: JSON
    created_at: datetime

    @classmethod
    def from_row(cls, row: ActivityEvent) -> ActivityEventNode:
        return cls(id=row.id, kind=row.kind, actor=row.actor, data=row.data, created_at=row.created_at)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(
            info,
            info.context.loaders.activity_event,
            node_ids,
            cls.from_row,
            tenant_scoped=True,
        )


@strawberry.type
class ActivityQueries:
    @strawberry.field(
        permission_classes=requires("tenant:read"), description="The account log, newest first."
    )
    async def activity(
        self, info: Info, first: int | None = None, after: str | None = None, kind: str | None = None
    ) -> relay.Connection[ActivityEventNode]:
        async with info.context.tenant_session() as session:
            return await paginate(
                session,
                service.list_query(kind),
                ActivityEvent.id,
                ActivityEventNode.from_row,
                first=first,
                after=after,
            )
