"""GraphQL of carriers: list and read them (any reader of orders), create, change and deactivate them
(tenant admins, like the routing policy). The services/rates shape is documented in
``app.routing.carriers``; a bad one comes back as ``INVALID_CARRIER`` with the field path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.orders.common import ADMIN, READ, READ_SCOPE, need_row
from app.api.relay import RowLoader, TenantScopedNode, load_nodes, paginate
from app.api.scopes import guarded_by
from app.errors import UserError
from app.fulfillment.models import Carrier
from app.routing import carriers as service


@guarded_by(READ_SCOPE)
@strawberry.type(name="Carrier", description="A carrier and its services (rates by region/weight, SLA).")
class CarrierNode(TenantScopedNode):
    id: relay.NodeID[int]
    code: str
    name: str
    services: JSON = strawberry.field(
        description='service -> {"rates": {"<local|province|region|*>": {"first_kg", "extra_kg"}},'
        ' "sla_days", "cold_chain", "cutoff"}'
    )
    sla_days: float = strawberry.field(description="Days to deliver, unless a service says otherwise.")
    cold_chain: bool
    cutoff: str | None = strawberry.field(description='Local "HH:MM": later parcels leave the next day.')
    active: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Carrier) -> CarrierNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            services=row.services or {},
            sla_days=row.sla_days,
            cold_chain=row.cold_chain,
            cutoff=row.cutoff,
            active=row.active,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids, required: bool = False):
        return await load_nodes(info, RowLoader(info, Carrier), node_ids, cls.from_row, tenant_scoped=True)


@strawberry.input
class CarrierFilter:
    active: bool | None = None


@strawberry.input
class CreateCarrierInput:
    code: str = strawberry.field(description="Unique per tenant, 1-60 characters; fixed once created.")
    name: str
    services: JSON = strawberry.field(default_factory=dict)
    sla_days: float = 2.0
    cold_chain: bool = False
    cutoff: str | None = None
    active: bool = True


@strawberry.input(description="Fields left out keep their value; services replaces the whole table.")
class UpdateCarrierInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    services: JSON | None = strawberry.UNSET
    sla_days: float | None = strawberry.UNSET
    cold_chain: bool | None = strawberry.UNSET
    cutoff: str | None = strawberry.field(default=strawberry.UNSET, description="null: no cut-off.")
    active: bool | None = strawberry.UNSET


@strawberry.input
class DeactivateCarrierInput:
    id: strawberry.ID


@strawberry.type
class CarrierPayload:
    carrier: CarrierNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


FIELD_NAMES = {"sla_days": "slaDays", "cold_chain": "coldChain"}


def _given(input: Any, skip: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    out = {k: v for k, v in vars(input).items() if v is not strawberry.UNSET and k not in skip}
    for key, value in out.items():
        if value is None and key != "cutoff":
            raise UserError(
                "INVALID_CARRIER", "give a value or leave the field out", FIELD_NAMES.get(key, key)
            )
    return out


@strawberry.type
class CarrierQueries:
    @strawberry.field(permission_classes=READ, description="The tenant's carriers, by code.")
    async def carriers(
        self,
        info: Info,
        filter: CarrierFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[CarrierNode]:
        query = select(Carrier)
        if filter is not None and filter.active is not None:
            query = query.where(Carrier.active.is_(filter.active))
        async with info.context.tenant_session() as session:
            return await paginate(
                session, query, Carrier.id, CarrierNode.from_row, first=first, after=after, newest_first=False
            )


@strawberry.type
class CarrierMutations:
    @strawberry.mutation(permission_classes=ADMIN, description="Add a carrier with its services.")
    async def create_carrier(self, info: Info, input: CreateCarrierInput) -> CarrierPayload:
        async def work(session):
            return CarrierNode.from_row(await service.create_carrier(session, _given(input, ())))

        result, errors = await in_tenant(info, work)
        return CarrierPayload(carrier=result, user_errors=errors)

    @strawberry.mutation(
        permission_classes=ADMIN, description="Change a carrier; applies to the next routing."
    )
    async def update_carrier(self, info: Info, input: UpdateCarrierInput) -> CarrierPayload:
        async def work(session):
            carrier_id = need_row(info, input.id, "Carrier", "carrier")
            return CarrierNode.from_row(await service.update_carrier(session, carrier_id, _given(input)))

        result, errors = await in_tenant(info, work)
        return CarrierPayload(carrier=result, user_errors=errors)

    @strawberry.mutation(
        permission_classes=ADMIN, description="Stop choosing a carrier (kept for past decisions)."
    )
    async def deactivate_carrier(self, info: Info, input: DeactivateCarrierInput) -> CarrierPayload:
        async def work(session):
            carrier_id = need_row(info, input.id, "Carrier", "carrier")
            return CarrierNode.from_row(await service.deactivate_carrier(session, carrier_id))

        result, errors = await in_tenant(info, work)
        return CarrierPayload(carrier=result, user_errors=errors)
