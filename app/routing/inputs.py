"""What the engine is given for one order: its unrouted lines and every location with its stock.

The engine is pure and speaks in plain ids; here they are chosen to make stored decisions readable:
engine material ids are material **codes** (an explanation says "no eligible location holds 2 x
SCARF-RED"), engine line ids are ``"<order line id>:<material id>"`` (a bundle line is one engine line
per material), location ids are the ``locations`` row ids.

Lines already on a live fulfilment order are not routed again (``app.fulfillment.open_lines``): what is left
is what a re-route after a rejection works on, and nothing left means the order is routed (the
idempotency of ``route_order``).

Shipping cost and SLA of each candidate: the price and SLA days of one parcel holding all the order's
open parcel lines (weights from ``Material.weight_g``, ``carriers.DEFAULT_UNIT_WEIGHT_G`` when
unknown; cold chain when any line needs it) from the location to the delivery address, with the carrier
service ``carriers.choose`` would pick for it (the order's requested carrier, else the lowest score
under the policy's ``carrier_weights``); the same rule that later picks each shipment's carrier, short
of the engine's mandated carrier, which its rules decide. A location no carrier can serve from gets the
highest cost and SLA of the others (unknown is not cheap); with no carriers at all every candidate keeps
cost 0 and the default SLA, so neither factor moves a decision. The rate tables price by weight, not
distance: ``cost_per_km`` stays 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material, ProductKind
from app.channels.models import Channel
from app.customers.models import Customer
from app.fulfillment.models import CLOSED_WITHOUT_SHIPPING, Carrier, FulfillmentOrder
from app.fulfillment.open_lines import OpenLine
from app.inventory.models import Location, StockLevel
from app.orders.models import Order, OrderLine
from app.routing import carriers, geo, policies
from app.routing.engine import Candidate, Decision, LineInput, OrderInput, stored_inputs
from app.routing.models import RoutingDecision

BUSINESS_TZ = geo.BUSINESS_TZ  # "today" for a location's load (channels default to it too)
FULFILMENT_TYPES = ("delivery", "pickup", "same_day")
COLD_CHAIN_TAG = "cold_chain"  # a location tag: it can ship cold-chain lines


@dataclass
class Built:
    order: OrderInput
    candidates: list[Candidate]
    lines: dict[str, OpenLine] = field(default_factory=dict)  # engine line id -> line
    kinds: dict[int, str] = field(default_factory=dict)  # location id -> kind


@dataclass(frozen=True)
class Shipping:
    """The order as one parcel, and the carriers that could take it: what each candidate is priced by."""

    carriers: Sequence[carriers.CarrierInfo]
    destination: carriers.Area
    weight_kg: float
    cold_chain: bool
    requested: str | None
    weights: Mapping[str, float]

    def quote(self, origin: carriers.Area) -> carriers.Quote | None:
        parcel = carriers.Parcel(origin, self.destination, self.weight_kg, self.cold_chain)
        return carriers.quote(self.carriers, parcel, requested=self.requested, weights=self.weights)


async def shipping(session: AsyncSession, order: Order, lines: list[OpenLine]) -> Shipping:
    """The tenant's carriers, the order's open ``lines`` as one parcel, its address, the policy weights."""
    rows = (await session.scalars(select(Carrier).order_by(Carrier.code))).all()
    grams = dict(
        (
            await session.execute(
                select(Material.id, Material.weight_g).where(Material.id.in_({x.material_id for x in lines}))
            )
        ).all()
    )
    total_g = sum((grams.get(x.material_id) or carriers.DEFAULT_UNIT_WEIGHT_G) * x.quantity for x in lines)
    address = order.address or {}
    city, province = address.get("city"), address.get("province")
    return Shipping(
        [carriers.CarrierInfo.from_row(r) for r in rows],
        carriers.area_of(
            city if isinstance(city, str) else None, province if isinstance(province, str) else None
        ),
        total_g / 1000,
        any(x.cold_chain for x in lines),
        order.requested_carrier,
        policies.carrier_weights(await policies.active_row(session)),
    )


async def rejected_by(session: AsyncSession, order_id: int) -> dict[int, str]:
    """Locations that rejected a fulfilment order of this order: not asked again for it."""
    rows = (
        await session.execute(
            select(FulfillmentOrder.location_id, FulfillmentOrder.id, FulfillmentOrder.reason)
            .where(FulfillmentOrder.order_id == order_id, FulfillmentOrder.status == "rejected")
            .order_by(FulfillmentOrder.id)
        )
    ).all()
    return {loc: f"rejected fulfilment order {fo}: {reason or 'no reason given'}" for loc, fo, reason in rows}


async def service_lines(session: AsyncSession, order_id: int) -> list[LineInput]:
    """Service lines (installation…): no stock, no parcel; the engine lists them apart."""
    rows = (
        await session.execute(
            select(OrderLine.id, OrderLine.quantity).where(
                OrderLine.order_id == order_id, OrderLine.kind == ProductKind.service.value
            )
        )
    ).all()
    return [LineInput(f"{line_id}:service", "service", int(q), service=True) for line_id, q in rows]


def _today_start():
    """Midnight in the business time zone, as a timestamptz (SQL)."""
    return func.timezone(BUSINESS_TZ, func.date_trunc("day", func.timezone(BUSINESS_TZ, func.now())))


async def candidates(
    session: AsyncSession,
    material_ids: list[int],
    codes: dict[int, str],
    excluded: dict[int, str],
    ship: Shipping | None = None,
) -> tuple[list[Candidate], dict[int, str]]:
    """Every location (whatever its status: the rules exclude, and the decision says why) with the
    availability of the order's materials, its load today, and what shipping the order from it costs
    and takes (``ship``; see the module docstring). Locations the order must not use again get status
    ``rejected``; locations with no coordinates nor a known city get ``unlocated``: the default status
    rule excludes both with that reason."""
    locations = (await session.scalars(select(Location).order_by(Location.id))).all()
    quotes = _quotes(locations, ship)
    stock: dict[int, dict[str, int]] = defaultdict(dict)
    if material_ids:
        for location_id, material_id, available in (
            await session.execute(
                select(
                    StockLevel.location_id,
                    StockLevel.material_id,
                    StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock,
                ).where(StockLevel.material_id.in_(material_ids))
            )
        ).all():
            if available > 0:
                stock[location_id][codes[material_id]] = int(available)
    load = dict(
        (
            await session.execute(
                select(FulfillmentOrder.location_id, func.count())
                .where(
                    FulfillmentOrder.created_at >= _today_start(),
                    FulfillmentOrder.status.not_in(CLOSED_WITHOUT_SHIPPING),
                )
                .group_by(FulfillmentOrder.location_id)
            )
        ).all()
    )
    out: list[Candidate] = []
    kinds: dict[int, str] = {}
    for loc in locations:
        status, reason = loc.status.value, loc.status_reason or ""
        lat, lng = loc.lat, loc.lng
        if lat is None or lng is None:
            place = geo.locate_address({"province": loc.province, "city": loc.city})
            if place is None:
                status, reason = "unlocated", "no coordinates, and its city and province are not known"
                lat, lng = 0.0, 0.0
            else:
                lat, lng = place.lat, place.lng
        if loc.id in excluded:
            status, reason = "rejected", excluded[loc.id]
        kinds[loc.id] = loc.kind.value
        out.append(
            Candidate(
                location_id=loc.id,
                name=loc.name,
                kind=loc.kind.value,
                lat=float(lat),
                lon=float(lng),
                priority=loc.priority,
                status=status,
                status_reason=reason,
                capabilities=frozenset(loc.capabilities or ()),
                cold_chain=COLD_CHAIN_TAG in (loc.tags or ()),
                daily_capacity=loc.daily_capacity or 0,
                load_today=int(load.get(loc.id, 0)),
                stock=stock.get(loc.id, {}),
                **quotes.get(loc.id, {}),
            )
        )
    return out, kinds


def _quotes(locations: Sequence[Location], ship: Shipping | None) -> dict[int, dict[str, float]]:
    """``cost_per_shipment`` and ``sla_days`` per location id; a location no carrier serves from gets
    the worst of the others; none when no location can be priced."""
    if ship is None or not ship.carriers:
        return {}
    priced = {loc.id: ship.quote(carriers.area_of(loc.city, loc.province)) for loc in locations}
    known = [q for q in priced.values() if q is not None]
    if not known:
        return {}
    worst = carriers.Quote(max(q.cost for q in known), max(q.sla_days for q in known))
    return {
        i: {"cost_per_shipment": (q or worst).cost, "sla_days": (q or worst).sla_days}
        for i, q in priced.items()
    }


async def build(
    session: AsyncSession,
    order: Order,
    lines: list[OpenLine],
    place: geo.Place,
    *,
    with_services: bool,
) -> Built:
    """The engine's inputs for ``order``'s open ``lines``, delivered to ``place``."""
    channel_code = await session.scalar(select(Channel.code).where(Channel.id == order.channel_id))
    tags: list[str] = []
    if order.customer_id is not None:
        tags = list(await session.scalar(select(Customer.tags).where(Customer.id == order.customer_id)) or [])
    extra = order.extra or {}
    kind = extra.get("fulfilment_type")
    engine_lines = [
        LineInput(x.key, x.material_code, x.quantity, presale=x.presale, cold_chain=x.cold_chain)
        for x in lines
    ]
    if with_services:
        engine_lines += await service_lines(session, order.id)
    order_input = OrderInput(
        id=order.number,
        lines=tuple(engine_lines),
        lat=place.lat,
        lon=place.lng,
        channel=channel_code or "",
        amount=order.total,
        customer_tags=frozenset(tags),
        fulfilment_type=kind if kind in FULFILMENT_TYPES else "delivery",
    )
    codes = {x.material_id: x.material_code for x in lines}
    cands, kinds = await candidates(
        session,
        sorted(codes),
        codes,
        await rejected_by(session, order.id),
        await shipping(session, order, lines),
    )
    return Built(order_input, cands, {x.key: x for x in lines}, kinds)


def decision_row(
    order: Order,
    attempt: int,
    policy: dict,
    built: Built,
    decision: Decision,
    place: geo.Place,
    *,
    job_key: str | None,
    explanation: str | None = None,
) -> RoutingDecision:
    """The stored decision of one routing attempt: inputs (with the located address and the level it
    was located at), outcome, words (ending with that level: a reader sees how precise distances are)."""
    stored = stored_inputs(built.order, built.candidates)
    stored["place"] = place.to_dict()
    words = decision.explain() if explanation is None else explanation
    return RoutingDecision(
        order_id=order.id,
        attempt=attempt,
        status=decision.status,
        policy=policy,
        inputs=stored,
        decision=decision.to_dict(),
        explanation=f"{words}\n{place.describe()}",
        job_key=job_key,
    )
