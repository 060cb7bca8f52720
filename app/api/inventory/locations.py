"""Location mutations: create one; pause (with a reason), resume or close it; set its fulfilment
timeouts (a store's time to accept, a pick-up's hold)."""

from __future__ import annotations

import strawberry
from sqlalchemy.exc import IntegrityError
from strawberry.types import Info

from app.api.errors import UserErrorType, in_tenant
from app.api.inventory.common import WRITE, clean_text
from app.api.inventory.ids import need_id
from app.api.inventory.types import LocationKindEnum, LocationNode, LocationStatusEnum
from app.errors import NotFound, UserError
from app.inventory import service
from app.inventory.models import Location, LocationStatus

MAX_TAGS = 20


@strawberry.input
class CreateLocationInput:
    code: str = strawberry.field(description="Unique per tenant, 1-60 characters.")
    name: str
    kind: LocationKindEnum
    address: str = ""
    city: str = ""
    province: str = ""
    region: str = ""
    lat: float | None = None
    lng: float | None = None
    priority: int = strawberry.field(default=100, description="Lower ships first on ties.")
    capabilities: list[str] = strawberry.field(
        default_factory=lambda: ["ship"], description="Any of: ship, pickup, same_day."
    )
    daily_capacity: int | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    accept_timeout_minutes: int = strawberry.field(
        default=30, description="A store's time to accept a fulfilment order (1-1440 minutes)."
    )
    pickup_hold_hours: int = strawberry.field(
        default=48, description="How long a pick-up is held before it is cancelled (1-720 hours)."
    )


@strawberry.input
class SetLocationTimeoutsInput:
    id: strawberry.ID
    accept_timeout_minutes: int | None = strawberry.field(default=None, description="1-1440; unset: keep.")
    pickup_hold_hours: int | None = strawberry.field(default=None, description="1-720; unset: keep.")


MAX_ACCEPT_MINUTES = 24 * 60
MAX_HOLD_HOURS = 30 * 24


def apply_timeouts(row, accept_timeout_minutes: int | None, pickup_hold_hours: int | None) -> None:
    """Check and set a location's fulfilment timeouts (None keeps the current value)."""
    if accept_timeout_minutes is not None:
        if not 1 <= accept_timeout_minutes <= MAX_ACCEPT_MINUTES:
            raise UserError(
                "INVALID_TIMEOUT",
                f"accept timeout must be 1-{MAX_ACCEPT_MINUTES} minutes",
                "acceptTimeoutMinutes",
            )
        row.accept_timeout_minutes = accept_timeout_minutes
    if pickup_hold_hours is not None:
        if not 1 <= pickup_hold_hours <= MAX_HOLD_HOURS:
            raise UserError(
                "INVALID_TIMEOUT", f"pick-up hold must be 1-{MAX_HOLD_HOURS} hours", "pickupHoldHours"
            )
        row.pickup_hold_hours = pickup_hold_hours


@strawberry.input
class SetLocationStatusInput:
    id: strawberry.ID
    status: LocationStatusEnum
    reason: str | None = strawberry.field(default=None, description="Required to pause or close.")


@strawberry.type
class LocationPayload:
    location: LocationNode | None = None
    user_errors: list[UserErrorType] = strawberry.field(default_factory=list)


def location_data(data: CreateLocationInput) -> service.LocationInput:
    tags: list[str] = []
    for i, tag in enumerate(data.tags):
        tag = clean_text(tag, "tags", 50, "INVALID_TAG", required=True)
        if tag not in tags:
            tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise UserError("INVALID_TAG", f"at most {MAX_TAGS} tags", ["tags", str(i)])
    return service.LocationInput(
        code=clean_text(data.code, "code", service.MAX_CODE, "INVALID_CODE", required=True),
        name=clean_text(data.name, "name", 200, "INVALID_NAME", required=True),
        kind=data.kind,
        address=clean_text(data.address, "address", 500, "INVALID_ADDRESS"),
        city=clean_text(data.city, "city", 100, "INVALID_ADDRESS"),
        province=clean_text(data.province, "province", 100, "INVALID_ADDRESS"),
        region=clean_text(data.region, "region", 50, "INVALID_ADDRESS"),
        lat=data.lat,
        lng=data.lng,
        priority=data.priority,
        capabilities=tuple(dict.fromkeys(data.capabilities)),
        daily_capacity=data.daily_capacity,
        tags=tuple(tags),
    )


@strawberry.type
class LocationMutations:
    @strawberry.mutation(permission_classes=WRITE)
    async def create_location(self, info: Info, input: CreateLocationInput) -> LocationPayload:
        async def work(session):
            row = await service.create_location(session, location_data(input))
            apply_timeouts(row, input.accept_timeout_minutes, input.pickup_hold_hours)  # rolls back if bad
            await session.flush()
            return row

        try:
            row, errors = await in_tenant(info, work)
        except IntegrityError as exc:  # two creates with one code at the same moment
            if "uq_locations_code" not in str(exc):
                raise
            error = UserError("DUPLICATE_CODE", "a location with this code exists", "code")
            return LocationPayload(user_errors=[UserErrorType.from_exc(error)])
        return LocationPayload(location=LocationNode.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Pause (say why) or close a location: its stock stops selling at once. Resume with"
        " status active.",
    )
    async def set_location_status(self, info: Info, input: SetLocationStatusInput) -> LocationPayload:
        async def work(session):
            location_id = need_id(info, input.id, "Location", "location", "id")
            reason = clean_text(input.reason, "reason", 300, "INVALID_REASON")
            return await service.set_location_status(
                session, location_id, LocationStatus(input.status), reason
            )

        row, errors = await in_tenant(info, work)
        return LocationPayload(location=LocationNode.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=WRITE,
        description="Set a location's fulfilment timeouts: how long a store has to accept a fulfilment"
        " order, how long a pick-up is held. Applies to fulfilment orders handed over from now on.",
    )
    async def set_location_timeouts(self, info: Info, input: SetLocationTimeoutsInput) -> LocationPayload:
        async def work(session):
            location_id = need_id(info, input.id, "Location", "location", "id")
            row = await session.get(Location, location_id, with_for_update=True)
            if row is None:
                raise NotFound("location", "id")
            apply_timeouts(row, input.accept_timeout_minutes, input.pickup_hold_hours)
            await session.flush()
            return row

        row, errors = await in_tenant(info, work)
        return LocationPayload(location=LocationNode.from_row(row) if row else None, user_errors=errors)
