"""Carriers and choosing one for each shipment (issue #5).

A carrier row (``fulfillment.models.Carrier``) holds its services; ``services`` has this shape (checked by
``clean_services``, errors are ``INVALID_CARRIER`` naming the field path)::

    {"<service code>": {
        "rates": {"<rate key>": {"first_kg": 12, "extra_kg": 2}, ...},  # required, at least one
        "sla_days": 1.5,      # optional: else the carrier's sla_days
        "cold_chain": false,  # optional: else the carrier's cold_chain
        "cutoff": "17:00"}}   # optional: else the carrier's cutoff (local time, see geo.BUSINESS_TZ)

Rate keys: ``local`` (origin and destination in one province), a province (``Sichuan`` or ``四川``,
stored as the city table's English name), a region of the city table (``East``, ``Southwest``...), or
``*`` (anywhere). The most specific key that applies is used: local > province > region > ``*``. A
parcel costs ``first_kg + extra_kg * (ceil(kg) - 1)`` (at least one kg is billed).

``choose`` is pure: a mandated carrier (the engine's ``channel_carrier`` rule) wins when it is active and
can serve the shipment; else the requested one (the order's or its channel's default); else the lowest
weighted score of cost and SLA days, each normalised to [0, 1] over the services that can serve (0 =
best; weights from the routing policy's ``carrier_weights``). A service whose cut-off has passed (local
time) leaves tomorrow: one more SLA day. The ``Choice`` lists every service considered with its cost, SLA
days and score, or why it was left out. A tenant with no carriers at all keeps the plain behaviour: the
mandated, else the requested carrier code, with no service.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Material
from app.errors import NotFound, UserError
from app.fulfillment.models import Carrier
from app.inventory.models import Location
from app.routing import geo

DEFAULT_UNIT_WEIGHT_G = 500  # a unit whose material has no weight_g counts as this
DEFAULT_WEIGHTS = {"cost": 0.5, "sla": 0.5}
WEIGHT_KEYS = ("cost", "sla")
MAX_SERVICES = 20
MAX_RATES = 100
MAX_PRICE = 100_000
MAX_SLA_DAYS = 60
LOCAL, ANYWHERE = "local", "*"
SERVICE_KEYS = ("rates", "sla_days", "cold_chain", "cutoff")
RATE_KEYS = ("first_kg", "extra_kg")
_CUTOFF = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SERVICE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


# ----------------------------------------------------------------------------------------- places


@dataclass(frozen=True)
class Area:
    """Where a parcel leaves from or goes to, as the rate table speaks of it."""

    province: str | None = None
    region: str | None = None
    city: str | None = None


@cache
def _areas() -> tuple[dict[str, str], dict[str, str]]:
    """city -> province and province -> region, from geo's city table (English names)."""
    city_province: dict[str, str] = {}
    province_region: dict[str, str] = {}
    with geo.DATA.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            city_province.setdefault(row["city"], row["province"])
            province_region.setdefault(row["province"], row["region"])
    return city_province, province_region


def regions() -> frozenset[str]:
    return frozenset(_areas()[1].values())


def area_of(city: str | None, province: str | None) -> Area:
    """The province and region of an address (city or province in English or Chinese); empty if the
    city table knows neither."""
    place = geo.locate(city or None, province or None)
    if place is None:
        return Area()
    city_province, province_region = _areas()
    if place.matched == "city":
        prov = city_province.get(place.name)
        return Area(prov, province_region.get(prov or ""), place.name)
    return Area(place.name, province_region.get(place.name))


def _province_key(key: str) -> str | None:
    """The table's English name of a province written in English or Chinese, else None."""
    place = geo.locate(None, key)
    return place.name if place is not None and place.matched == "province" else None


# ----------------------------------------------------------------------------------------- validation


def _bad(message: str, path: Sequence[str]) -> UserError:
    return UserError("INVALID_CARRIER", message, [str(p) for p in path])


def _number(value: Any, path: Sequence[str], hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{'.'.join(path[1:]) or path[0]} must be a number", path)
    if not 0 <= value <= hi:
        raise _bad(f"{'.'.join(path[1:]) or path[0]} must be between 0 and {hi:g}", path)
    return float(value)


def clean_cutoff(value: Any, path: Sequence[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CUTOFF.match(value.strip()):
        raise _bad('cutoff is a local time "HH:MM" (24 hours)', path)
    return value.strip()


def clean_sla(value: Any, path: Sequence[str]) -> float:
    return _number(value, path, MAX_SLA_DAYS)


def clean_services(value: Any, field: str = "services") -> dict[str, Any]:
    """``value`` checked against the documented shape; province rate keys become the table's names."""
    if not isinstance(value, Mapping):
        raise _bad(
            "services must be an object: service code -> {rates, sla_days, cold_chain, cutoff}", [field]
        )
    if len(value) > MAX_SERVICES:
        raise _bad(f"at most {MAX_SERVICES} services", [field])
    out: dict[str, Any] = {}
    for code, raw in value.items():
        where = [field, str(code)]
        if not isinstance(code, str) or not _SERVICE_CODE.match(code):
            raise _bad("a service code is 1-40 letters, digits, '_', '.' or '-'", where)
        if not isinstance(raw, Mapping):
            raise _bad("a service is an object with rates (and sla_days, cold_chain, cutoff)", where)
        unknown = [k for k in raw if k not in SERVICE_KEYS]
        if unknown:
            raise _bad(
                f"unknown key {unknown[0]!r}; use {', '.join(SERVICE_KEYS)}", [*where, str(unknown[0])]
            )
        service: dict[str, Any] = {"rates": _rates(raw.get("rates"), [*where, "rates"])}
        if raw.get("sla_days") is not None:
            service["sla_days"] = clean_sla(raw["sla_days"], [*where, "sla_days"])
        if raw.get("cold_chain") is not None:
            if not isinstance(raw["cold_chain"], bool):
                raise _bad("cold_chain must be true or false", [*where, "cold_chain"])
            service["cold_chain"] = raw["cold_chain"]
        if raw.get("cutoff") is not None:
            service["cutoff"] = clean_cutoff(raw["cutoff"], [*where, "cutoff"])
        out[code] = service
    return out


def _rates(value: Any, where: list[str]) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping) or not value:
        raise _bad("rates must be a non-empty object: rate key -> {first_kg, extra_kg}", where)
    if len(value) > MAX_RATES:
        raise _bad(f"at most {MAX_RATES} rates per service", where)
    out: dict[str, dict[str, float]] = {}
    for key, rate in value.items():
        path = [*where, str(key)]
        name = key.strip() if isinstance(key, str) else ""
        if name in (LOCAL, ANYWHERE) or name in regions():
            canonical = name
        else:
            canonical = _province_key(name) if name else None
        if canonical is None:
            raise _bad(
                f"unknown rate key {key!r}: use 'local', '*', a province or a region"
                f" ({', '.join(sorted(regions()))})",
                path,
            )
        if canonical in out:
            raise _bad(f"rate key {key!r} given twice", path)
        if not isinstance(rate, Mapping):
            raise _bad("a rate is an object {first_kg, extra_kg}", path)
        unknown = [k for k in rate if k not in RATE_KEYS]
        if unknown:
            raise _bad(f"unknown key {unknown[0]!r}; use first_kg, extra_kg", [*path, str(unknown[0])])
        for k in RATE_KEYS:
            if k not in rate:
                raise _bad(f"{k} is required", [*path, k])
        out[canonical] = {k: _number(rate[k], [*path, k], MAX_PRICE) for k in RATE_KEYS}
    return out


def clean_weights(value: Any, field: str = "carrierWeights") -> dict[str, float]:
    """Policy ``carrier_weights``: {"cost": w, "sla": w}, each 0-1000 (INVALID_POLICY otherwise)."""
    if not isinstance(value, Mapping):
        raise UserError("INVALID_POLICY", f"{field} must be an object", field)
    out = {}
    for key, w in value.items():
        if key not in WEIGHT_KEYS:
            raise UserError("INVALID_POLICY", f"unknown key {key!r}; use cost, sla", [field, str(key)])
        if (
            isinstance(w, bool)
            or not isinstance(w, int | float)
            or not math.isfinite(w)
            or not 0 <= w <= 1000
        ):
            raise UserError(
                "INVALID_POLICY", f"{field}.{key} must be a number between 0 and 1000", [field, key]
            )
        out[key] = float(w)
    return out


# ----------------------------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class CarrierInfo:
    """A carrier as ``choose`` sees it (``from_row`` for a ``Carrier``)."""

    code: str
    name: str = ""
    services: Mapping[str, Any] = field(default_factory=dict)
    sla_days: float = 2.0
    cold_chain: bool = False
    cutoff: str | None = None
    active: bool = True

    @classmethod
    def from_row(cls, row: Carrier) -> CarrierInfo:
        return cls(
            row.code, row.name, row.services or {}, row.sla_days, row.cold_chain, row.cutoff, row.active
        )

    def matches(self, asked: str) -> bool:
        """A mandated or requested carrier names it by code or by name (case-insensitive)."""
        asked = asked.strip().casefold()
        return asked in (self.code.casefold(), self.name.strip().casefold())


@dataclass(frozen=True)
class Parcel:
    origin: Area
    destination: Area
    weight_kg: float
    cold_chain: bool = False


def rate_for(rates: Mapping[str, Any], parcel: Parcel) -> tuple[str, Mapping[str, float]] | None:
    """The most specific rate that applies: local > destination province > its region > '*'."""
    dest, origin = parcel.destination, parcel.origin
    keys = []
    if dest.province and origin.province == dest.province:
        keys.append(LOCAL)
    keys += [k for k in (dest.province, dest.region) if k]
    keys.append(ANYWHERE)
    for key in keys:
        if key in rates:
            return key, rates[key]
    return None


def price(rate: Mapping[str, float], weight_kg: float) -> float:
    extra = max(math.ceil(weight_kg - 1e-9), 1) - 1
    return round(rate["first_kg"] + rate["extra_kg"] * extra, 2)


def after_cutoff(cutoff: str | None, now: datetime) -> bool:
    if not cutoff:
        return False
    local = now.astimezone(ZoneInfo(geo.BUSINESS_TZ)).strftime("%H:%M")
    return local >= cutoff


@dataclass
class Option:
    """One service of one carrier, as considered for a parcel."""

    carrier: str
    service: str | None
    cost: float | None = None
    sla_days: float | None = None
    rate_key: str | None = None
    after_cutoff: bool = False
    excluded: str | None = None
    normalised: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "service": self.service,
            "cost": self.cost,
            "sla_days": self.sla_days,
            "rate_key": self.rate_key,
            "after_cutoff": self.after_cutoff,
            "excluded": self.excluded,
            "normalised": dict(self.normalised),
            "score": self.score,
            "chosen": self.chosen,
        }

    def describe(self) -> str:
        name = f"{self.carrier}/{self.service}" if self.service else self.carrier
        if self.excluded:
            return f"{name} excluded: {self.excluded}"
        late = ", after cut-off +1 day" if self.after_cutoff else ""
        cost = f"cost {self.cost:.2f} ({self.rate_key})"
        return f"{name} {cost}, {self.sla_days:g} days{late}, score {self.score:.3f}"


@dataclass
class Choice:
    carrier: str | None
    service: str | None
    how: str  # mandated | requested | scored | no_carriers | none_can_serve | none
    options: list[Option] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    weight_kg: float = 0.0
    cold_chain: bool = False

    @property
    def winner(self) -> Option | None:
        return next((o for o in self.options if o.chosen), None)

    def explain(self) -> str:
        win = self.winner
        what = f"{self.carrier}/{self.service}" if self.service else (self.carrier or "none")
        why = {
            "mandated": "the mandated carrier",
            "requested": "the requested carrier",
            "scored": f"lowest weighted score (cost {self.weights.get('cost', 0):g}, SLA"
            f" {self.weights.get('sla', 0):g})",
            "no_carriers": "no carriers set up; the mandated or requested carrier as given",
            "none_can_serve": "no carrier can serve this parcel",
            "none": "no carriers set up and none asked for",
        }[self.how]
        head = f"Carrier {what}: {why}"
        if win is not None:
            head += f", cost {win.cost:.2f}, {win.sla_days:g} days"
        parcel = f" ({self.weight_kg:g} kg{', cold chain' if self.cold_chain else ''})"
        parts = [head + parcel + "."]
        parts += [n + "." for n in self.notes]
        if self.options:
            parts.append("Considered: " + "; ".join(o.describe() for o in self.options) + ".")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        win = self.winner
        return {
            "carrier": self.carrier,
            "service": self.service,
            "how": self.how,
            "cost": win.cost if win else None,
            "sla_days": win.sla_days if win else None,
            "weight_kg": self.weight_kg,
            "cold_chain": self.cold_chain,
            "weights": dict(self.weights),
            "notes": list(self.notes),
            "options": [o.to_dict() for o in self.options],
            "explanation": self.explain(),
        }


def _consider(carrier: CarrierInfo, parcel: Parcel, now: datetime) -> list[Option]:
    if not carrier.services:
        return [Option(carrier.code, None, excluded="no services set up")]
    out = []
    for name, svc in sorted(carrier.services.items()):
        opt = Option(carrier.code, name)
        rate = rate_for(svc.get("rates") or {}, parcel)
        if not carrier.active:
            opt.excluded = "inactive"
        elif parcel.cold_chain and not svc.get("cold_chain", carrier.cold_chain):
            opt.excluded = "not cold-chain, and the parcel needs it"
        elif rate is None:
            to = parcel.destination.province or "the destination"
            opt.excluded = f"no rate for {to} ({parcel.destination.region or 'unknown region'})"
        else:
            opt.rate_key, opt.cost = rate[0], price(rate[1], parcel.weight_kg)
            opt.after_cutoff = after_cutoff(svc.get("cutoff", carrier.cutoff), now)
            opt.sla_days = float(svc.get("sla_days", carrier.sla_days)) + (1 if opt.after_cutoff else 0)
        out.append(opt)
    return out


def _normalise(value: float, lo: float, hi: float) -> float:
    return 0.0 if hi <= lo else (value - lo) / (hi - lo)


def _score(options: list[Option], weights: Mapping[str, float]) -> None:
    live = [o for o in options if o.excluded is None]
    if not live:
        return
    costs = [o.cost for o in live]
    slas = [o.sla_days for o in live]
    for o in live:
        o.normalised = {
            "cost": round(_normalise(o.cost, min(costs), max(costs)), 4),
            "sla": round(_normalise(o.sla_days, min(slas), max(slas)), 4),
        }
        o.score = round(sum(weights.get(k, 0) * v for k, v in o.normalised.items()), 4)


def _best(options: Iterable[Option]) -> Option | None:
    live = [o for o in options if o.excluded is None]
    return min(live, key=lambda o: (o.score, o.cost, o.sla_days, o.carrier, o.service or ""), default=None)


def choose(
    carriers: Sequence[CarrierInfo],
    parcel: Parcel,
    *,
    mandated: str | None = None,
    requested: str | None = None,
    weights: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> Choice:
    """The carrier and service for ``parcel``, explained (see the module docstring for the order)."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    now = now or datetime.now(UTC)
    base = {"weights": weights, "weight_kg": round(parcel.weight_kg, 3), "cold_chain": parcel.cold_chain}
    if not carriers:
        asked = mandated or requested
        return Choice(asked, None, "no_carriers" if asked else "none", **base)
    options = [o for c in carriers for o in _consider(c, parcel, now)]
    _score(options, weights)
    notes: list[str] = []
    for how, asked in (("mandated", mandated), ("requested", requested)):
        if not asked or (how == "requested" and mandated and asked.casefold() == mandated.casefold()):
            continue
        mine = [c.code for c in carriers if c.matches(asked)]
        best = _best(o for o in options if o.carrier in mine)
        if best is not None:
            best.chosen = True
            return Choice(best.carrier, best.service, how, options, notes, **base)
        if not mine:
            notes.append(
                f"{how.capitalize()} carrier {asked} is not one of the tenant's carriers; falling back"
            )
        else:
            whys = "; ".join(f"{o.service or '-'}: {o.excluded}" for o in options if o.carrier in mine)
            notes.append(f"{how.capitalize()} carrier {asked} cannot serve ({whys}); falling back")
    best = _best(options)
    if best is None:
        return Choice(None, None, "none_can_serve", options, notes, **base)
    best.chosen = True
    return Choice(best.carrier, best.service, "scored", options, notes, **base)


@dataclass(frozen=True)
class Quote:
    cost: float
    sla_days: float


def quote(
    carriers: Sequence[CarrierInfo],
    parcel: Parcel,
    *,
    requested: str | None = None,
    weights: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> Quote | None:
    """Cost and SLA days of ``parcel`` with the service ``choose`` would pick (the engine's mandated
    carrier is not known yet: its rules run later); None when no carrier can serve it."""
    win = choose(carriers, parcel, requested=requested, weights=weights, now=now).winner
    return None if win is None else Quote(win.cost, win.sla_days)


# ----------------------------------------------------------------------------------------- routing


async def choose_for_shipments(
    session: AsyncSession,
    order,
    decision,
    built,
    *,
    weights: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> list[Choice]:
    """One ``Choice`` per shipment of a routed ``decision`` (``routing.inputs.Built`` gives the lines):
    weight from the materials' ``weight_g`` (DEFAULT_UNIT_WEIGHT_G when unknown), cold chain when any
    line needs it, origin the shipment's location, destination the order's address."""
    rows = [CarrierInfo.from_row(r) for r in (await session.scalars(select(Carrier).order_by(Carrier.code)))]
    material_ids = {built.lines[x.line_id].material_id for s in decision.shipments for x in s.lines}
    location_ids = {int(s.location_id) for s in decision.shipments}
    grams = dict(
        (
            await session.execute(select(Material.id, Material.weight_g).where(Material.id.in_(material_ids)))
        ).all()
    )
    places = {
        i: area_of(city, province)
        for i, city, province in (
            await session.execute(
                select(Location.id, Location.city, Location.province).where(Location.id.in_(location_ids))
            )
        ).all()
    }
    address = order.address or {}
    dest = area_of(_text(address.get("city")), _text(address.get("province")))
    out = []
    for s in decision.shipments:
        lines = [(built.lines[x.line_id], x.quantity) for x in s.lines]
        grams_total = sum((grams.get(line.material_id) or DEFAULT_UNIT_WEIGHT_G) * q for line, q in lines)
        parcel = Parcel(
            places.get(int(s.location_id), Area()),
            dest,
            grams_total / 1000,
            any(line.cold_chain for line, _ in lines),
        )
        out.append(
            choose(
                rows,
                parcel,
                mandated=decision.carrier,
                requested=order.requested_carrier,
                weights=weights,
                now=now,
            )
        )
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def record(row, choices: Sequence[Choice]) -> None:
    """Keep each shipment's choice in the stored decision (``shipments[i].carrier``) and add one line
    per shipment to its explanation."""
    decision = dict(row.decision or {})
    shipments = [dict(s) for s in decision.get("shipments", [])]
    for s, choice in zip(shipments, choices, strict=True):
        s["carrier"] = choice.to_dict()
    decision["shipments"] = shipments
    row.decision = decision
    lines = [f"{s['name']}: {c.explain()}" for s, c in zip(shipments, choices, strict=True)]
    row.explanation = "\n".join([row.explanation, *lines]) if row.explanation else "\n".join(lines)


# ----------------------------------------------------------------------------------------- CRUD


def _clean_code(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 60:
        raise _bad("code must be 1-60 characters", ["code"])
    return value.strip()


def _clean_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200:
        raise _bad("name must be 1-200 characters", ["name"])
    return value.strip()


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated column values from ``values`` (snake_case keys; those left out are not returned)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "code":
            out[key] = _clean_code(value)
        elif key == "name":
            out[key] = _clean_name(value)
        elif key == "services":
            out[key] = clean_services(value)
        elif key == "sla_days":
            out[key] = clean_sla(value, ["slaDays"])
        elif key == "cutoff":
            out[key] = clean_cutoff(value, ["cutoff"])
        elif key in ("cold_chain", "active"):
            if not isinstance(value, bool):
                raise _bad(f"{key} must be true or false", [key if key == "active" else "coldChain"])
            out[key] = value
        else:
            raise _bad(f"unknown field {key!r}", [key])
    return out


async def create_carrier(session: AsyncSession, values: Mapping[str, Any]) -> Carrier:
    data = clean(values)
    for required in ("code", "name"):
        if required not in data:
            raise _bad(f"{required} is required", [required])
    if await session.scalar(select(Carrier.id).where(Carrier.code == data["code"])):
        raise UserError("CARRIER_EXISTS", f"a carrier with code {data['code']!r} exists", "code")
    row = Carrier(**{"services": {}, "sla_days": 2.0, "cold_chain": False, "active": True, **data})
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # created by someone else at the same moment
        raise UserError("CARRIER_EXISTS", f"a carrier with code {data['code']!r} exists", "code") from None
    await session.refresh(row)
    return row


async def update_carrier(session: AsyncSession, carrier_id: int, changes: Mapping[str, Any]) -> Carrier:
    """Fields left out keep their value; ``services`` replaces the whole table; the code is fixed."""
    row = await session.get(Carrier, carrier_id, with_for_update=True)
    if row is None:
        raise NotFound("carrier", "id")
    if "code" in changes:
        raise _bad("a carrier's code cannot change", ["code"])
    for key, value in clean(changes).items():
        setattr(row, key, value)
    await session.flush()
    return row


async def deactivate_carrier(session: AsyncSession, carrier_id: int) -> Carrier:
    return await update_carrier(session, carrier_id, {"active": False})
