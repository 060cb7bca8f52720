"""The sourcing engine: ``decide(order, candidates, policy) -> Decision``. Pure: no I/O, deterministic.

Plain dataclasses in (``OrderInput`` with ``LineInput`` lines, ``Candidate`` locations with their stock),
a ``Decision`` out that records every candidate, its distance and factor values, the weights, the rule
that excluded it, the winning shipments, and an English ``explain()``. Inputs, policy and decision all
have ``to_dict``/``from_dict``: the worker stores ``stored_inputs(order, candidates)`` and the decision
with the order, and ``simulate(stored, other_policy)`` re-runs it later (``compare`` shows the deltas).

Steps:

1. Distances: great-circle (haversine) km from the delivery address to each location.
2. Rules (``policy.rules``, data) run first: they exclude locations (status, capability, pickup store,
   capacity, O2O store radius, VIP lane), forbid lines at locations (cold chain), keep presale lines
   apart (two groups, never in one shipment), record a mandated carrier and the shipment limit.
   Service lines (installation) need no stock and no parcel: ``Decision.service_lines``.
3. Groups are planned one after another, in-stock lines first, each on the stock the earlier groups
   left: two groups never ship the same unit (a line short only for that says so).
4. Per group, a location *covers* a line when it is allowed to ship it and has ``available >= quantity``.
   A line no eligible location covers is unfilled, unless ``policy.allow_line_split``: then every line
   with enough stock across the eligible locations may be spread over several of them (also a line
   one location holds whole, since splitting it can save a shipment elsewhere); the search splits
   only where that lowers the objective.
5. Partial fills: when a material's stock cannot serve all its lines together, the engine fills the
   **most lines**, then the most units, then the earliest lines (``cover.fill_most``); the others are
   unfilled and the decision is ``partial``.
6. The exact search (``app.routing.cover.min_cover``) picks the plan.

Objective. Lexicographic (default), **complete > nearest > priority**: (1) fewest shipments, so an
order ships whole from one location whenever one can; (2) then the smallest sum over shipments of the
distance (km, compared in whole metres); (3) then the smallest sum of location priorities (lower number
= higher priority, as in ``inventory.Location.priority``); last, a stable order of location ids.
With ``policy.fewest_shipments_first`` off, (1) goes and each shipment adds ``shipment_penalty`` km
to the distance sum instead.
Weighted (``policy.mode == "weighted"``): still fewest shipments first (unless
``policy.fewest_shipments_first`` is off: then each shipment adds ``shipment_penalty``), then the
smallest sum of location scores (see ``Policy``), then distance, then priority.

Why it is optimal. Each location gets one non-negative integer key that packs its criteria into
disjoint bit fields (score << 80 | metres << 40 | priority), so the sum of keys over a plan orders
plans exactly like the lexicographic tuple of sums (the fields never overflow: 200 locations x 21,000
km, penalty included, fit in 40 bits). A plan's cost is then the sum of its locations' keys, and
assigning lines to the chosen locations never changes it. So the problem is a minimum-cost set cover
(with exact packing checks for lines sharing a material or being split), which ``cover.min_cover``
solves exactly by iterative deepening on the number of shipments with complete branching,
partitioning, admissible bounds and safe dominance; its docstring gives the argument step by step.
tests/test_routing_engine.py checks it against brute force over every assignment of lines to locations.

Shipment limit: when the fewest shipments possible exceed ``max_shipments`` (policy field or
``max_shipments`` rule), the optimal plan is still returned but ``status == "needs_split_approval"``:
nothing is unfilled, an operator approves the split or holds the order. With presale lines apart, the
limit counts the shipments of both groups. Statuses: ``routed``, ``partial`` (some lines unfilled),
``unfillable`` (no parcel line can ship), ``needs_split_approval``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NamedTuple

from app.routing.cover import MaterialDemand, Packing, assign_material, bits, fill_most, min_cover
from app.routing.policy import FACTORS, Policy, RuleOutcome, evaluate_rules

Id = int | str
EARTH_RADIUS_KM = 6371.0088
_DIST_SHIFT = 40  # metres field; priority below it, score above
_SCORE_SHIFT = 80
_SCORE_SCALE = 1_000_000
_PRIORITY_CAP = (1 << 32) - 1


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (the same arithmetic as the engine's, to the last bit)."""
    return _distances(lat1, lon1, (_Point(lat2, lon2),))[0]


class _Point(NamedTuple):
    lat: float
    lon: float


def _distances(lat: float, lon: float, cands: Sequence[Candidate]) -> list[float]:
    """``haversine_km`` from one point to every candidate, with the shared terms computed once."""
    rad, sin, cos = math.radians, math.sin, math.cos
    p1, l1 = rad(lat), rad(lon)
    cp1 = cos(p1)
    out = []
    for c in cands:
        p2 = rad(c.lat)
        a = sin((p2 - p1) / 2) ** 2 + cp1 * cos(p2) * sin((rad(c.lon) - l1) / 2) ** 2
        out.append(2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a))))
    return out


def _id_key(v: Id) -> tuple[int, int, str]:
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class LineInput:
    id: Id
    material_id: Id
    quantity: int
    presale: bool = False
    cold_chain: bool = False
    service: bool = False  # installation etc.: no stock, no parcel

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "material_id": self.material_id,
            "quantity": self.quantity,
            "presale": self.presale,
            "cold_chain": self.cold_chain,
            "service": self.service,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineInput:
        return cls(
            d["id"],
            d["material_id"],
            int(d["quantity"]),
            bool(d.get("presale", False)),
            bool(d.get("cold_chain", False)),
            bool(d.get("service", False)),
        )


@dataclass(frozen=True, slots=True)
class OrderInput:
    id: Id
    lines: tuple[LineInput, ...]
    lat: float
    lon: float
    channel: str = ""
    amount: Decimal = Decimal(0)
    customer_tags: frozenset[str] = frozenset()
    fulfilment_type: str = "delivery"  # delivery | pickup | same_day
    pickup_location_id: Id | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "amount", Decimal(str(self.amount)))
        object.__setattr__(self, "customer_tags", frozenset(self.customer_tags))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lines": [line.to_dict() for line in self.lines],
            "lat": self.lat,
            "lon": self.lon,
            "channel": self.channel,
            "amount": str(self.amount),
            "customer_tags": sorted(self.customer_tags),
            "fulfilment_type": self.fulfilment_type,
            "pickup_location_id": self.pickup_location_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrderInput:
        return cls(
            d["id"],
            tuple(LineInput.from_dict(x) for x in d["lines"]),
            float(d["lat"]),
            float(d["lon"]),
            d.get("channel", ""),
            Decimal(str(d.get("amount", "0"))),
            frozenset(d.get("customer_tags", ())),
            d.get("fulfilment_type", "delivery"),
            d.get("pickup_location_id"),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    location_id: Id
    name: str
    kind: str = "warehouse"  # warehouse | store | third_party | drop_ship
    lat: float = 0.0
    lon: float = 0.0
    priority: int = 100  # lower = preferred on ties
    status: str = "active"  # active | paused | closed
    status_reason: str = ""
    capabilities: frozenset[str] = frozenset({"ship"})  # ship | pickup | same_day
    cold_chain: bool = False
    daily_capacity: int = 0  # 0 = unknown / unlimited
    load_today: int = 0
    stock: Mapping[Id, int] = field(default_factory=dict)  # material -> available
    cost_per_shipment: float = 0.0
    cost_per_km: float = 0.0
    sla_days: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    def to_dict(self, materials: Iterable[Id] | None = None) -> dict[str, Any]:
        """``materials``: keep only these in ``stock`` (what a stored decision needs)."""
        keep = None if materials is None else set(materials)
        return {
            "location_id": self.location_id,
            "name": self.name,
            "kind": self.kind,
            "lat": self.lat,
            "lon": self.lon,
            "priority": self.priority,
            "status": self.status,
            "status_reason": self.status_reason,
            "capabilities": sorted(self.capabilities),
            "cold_chain": self.cold_chain,
            "daily_capacity": self.daily_capacity,
            "load_today": self.load_today,
            # pairs, not an object: material ids may be ints, and JSON keys are strings
            "stock": [[m, q] for m, q in self.stock.items() if keep is None or m in keep],
            "cost_per_shipment": self.cost_per_shipment,
            "cost_per_km": self.cost_per_km,
            "sla_days": self.sla_days,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        stock = d.get("stock", ())
        return cls(
            d["location_id"],
            d["name"],
            d.get("kind", "warehouse"),
            float(d.get("lat", 0.0)),
            float(d.get("lon", 0.0)),
            int(d.get("priority", 100)),
            d.get("status", "active"),
            d.get("status_reason", ""),
            frozenset(d.get("capabilities", ("ship",))),
            bool(d.get("cold_chain", False)),
            int(d.get("daily_capacity", 0)),
            int(d.get("load_today", 0)),
            dict(stock.items()) if isinstance(stock, Mapping) else {m: int(q) for m, q in stock},
            float(d.get("cost_per_shipment", 0.0)),
            float(d.get("cost_per_km", 0.0)),
            float(d.get("sla_days", 2.0)),
        )


def stored_inputs(order: OrderInput, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The JSON to keep with an order so ``simulate`` can re-run the decision (stock trimmed to the order)."""
    materials = {line.material_id for line in order.lines}
    return {"order": order.to_dict(), "candidates": [c.to_dict(materials) for c in candidates]}


# ----------------------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    line_id: Id
    material_id: Id
    quantity: int


@dataclass(frozen=True, slots=True)
class Shipment:
    location_id: Id
    name: str
    kind: str
    group: str  # all | in_stock | presale
    distance_km: float
    cost: float
    lines: tuple[ShipmentLine, ...]


@dataclass(frozen=True, slots=True)
class UnfilledLine:
    line_id: Id
    material_id: Id
    quantity: int
    reason: str
    codes: tuple[str, ...] = ()  # rules that kept stock away from this line, if any


@dataclass(slots=True)  # not frozen: built for every candidate of every decision, and frozen inits are slow
class CandidateReport:
    location_id: Id
    name: str
    kind: str
    distance_km: float
    priority: int
    excluded_by: str | None = None  # rule code
    reason: str | None = None
    # (line id, rule code, reason): lines it holds in full but a rule forbids it to ship
    restricted: tuple[tuple[Id, str, str], ...] = ()
    covers: tuple[Id, ...] = ()  # lines it could ship whole
    # raw factor values: distance_km and priority (lexicographic); also cost, sla_days, load,
    # stock_depth, preference (weighted)
    factors: Mapping[str, float] = field(default_factory=dict)
    normalised: Mapping[str, float] = field(default_factory=dict)  # weighted mode: [0, 1], 0 = best
    score: float | None = None  # weighted mode: sum of weight x normalised factor (lower = better)
    chosen: bool = False


@dataclass(frozen=True, slots=True)
class GroupResult:
    name: str
    line_ids: tuple[Id, ...]
    shipments: int
    complete_options: int  # locations able to ship the whole group alone
    partial_options: int  # other locations holding part of it
    runner_up: Id | None = None  # next best single location, when shipped whole


_NESTED = {"shipments", "unfilled", "candidates", "groups"}


@dataclass(frozen=True, slots=True)
class Decision:
    order_id: Id
    policy_name: str
    mode: str
    status: str  # routed | partial | unfillable | needs_split_approval
    shipments: tuple[Shipment, ...]
    unfilled: tuple[UnfilledLine, ...]
    service_lines: tuple[Id, ...]
    candidates: tuple[CandidateReport, ...]
    weights: Mapping[str, float]
    groups: tuple[GroupResult, ...] = ()
    carrier: str | None = None
    carrier_rule: str | None = None
    rule_events: tuple[tuple[str, str], ...] = ()  # (rule code, message)
    max_shipments: int | None = None
    max_shipments_rule: str | None = None
    # the objective's shape, for explain(): the penalty is per shipment, in score (weighted) or km units
    fewest_shipments_first: bool = True
    shipment_penalty: float = 0.0

    @property
    def shipment_count(self) -> int:
        return len(self.shipments)

    @property
    def total_distance_km(self) -> float:
        return round(sum(s.distance_km for s in self.shipments), 3)

    @property
    def total_cost(self) -> float:
        return round(sum(s.cost for s in self.shipments), 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "policy_name": self.policy_name,
            "mode": self.mode,
            "status": self.status,
            "shipments": [
                {
                    "location_id": s.location_id,
                    "name": s.name,
                    "kind": s.kind,
                    "group": s.group,
                    "distance_km": s.distance_km,
                    "cost": s.cost,
                    "lines": [[x.line_id, x.material_id, x.quantity] for x in s.lines],
                }
                for s in self.shipments
            ],
            "unfilled": [
                {
                    "line_id": u.line_id,
                    "material_id": u.material_id,
                    "quantity": u.quantity,
                    "reason": u.reason,
                    "codes": list(u.codes),
                }
                for u in self.unfilled
            ],
            "service_lines": list(self.service_lines),
            "candidates": [
                {
                    "location_id": c.location_id,
                    "name": c.name,
                    "kind": c.kind,
                    "distance_km": c.distance_km,
                    "priority": c.priority,
                    "excluded_by": c.excluded_by,
                    "reason": c.reason,
                    "restricted": [list(r) for r in c.restricted],
                    "covers": list(c.covers),
                    "factors": dict(c.factors),
                    "normalised": dict(c.normalised),
                    "score": c.score,
                    "chosen": c.chosen,
                }
                for c in self.candidates
            ],
            "weights": dict(self.weights),
            "groups": [
                {
                    "name": g.name,
                    "line_ids": list(g.line_ids),
                    "shipments": g.shipments,
                    "complete_options": g.complete_options,
                    "partial_options": g.partial_options,
                    "runner_up": g.runner_up,
                }
                for g in self.groups
            ],
            "carrier": self.carrier,
            "carrier_rule": self.carrier_rule,
            "rule_events": [list(e) for e in self.rule_events],
            "max_shipments": self.max_shipments,
            "max_shipments_rule": self.max_shipments_rule,
            "fewest_shipments_first": self.fewest_shipments_first,
            "shipment_penalty": self.shipment_penalty,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        shipments = tuple(
            Shipment(
                s["location_id"],
                s["name"],
                s["kind"],
                s["group"],
                s["distance_km"],
                s["cost"],
                tuple(ShipmentLine(*x) for x in s["lines"]),
            )
            for s in d["shipments"]
        )
        unfilled = tuple(
            UnfilledLine(u["line_id"], u["material_id"], u["quantity"], u["reason"], tuple(u["codes"]))
            for u in d["unfilled"]
        )
        candidates = tuple(
            CandidateReport(
                **{
                    **c,
                    "restricted": tuple(tuple(r) for r in c["restricted"]),
                    "covers": tuple(c["covers"]),
                }
            )
            for c in d["candidates"]
        )
        groups = tuple(GroupResult(**{**g, "line_ids": tuple(g["line_ids"])}) for g in d["groups"])
        rest = {k: v for k, v in d.items() if k not in _NESTED}
        return cls(
            **{
                **rest,
                "shipments": shipments,
                "unfilled": unfilled,
                "candidates": candidates,
                "groups": groups,
                "service_lines": tuple(d["service_lines"]),
                "weights": dict(d["weights"]),
                "rule_events": tuple(tuple(e) for e in d["rule_events"]),
            }
        )

    def explain(self) -> str:
        """A readable account in English: the winner and why, exclusions, restrictions, unfilled lines."""
        return _explain(self)


# ------------------------------------------------------------------------------------------ decide

DEFAULT_POLICY = Policy()


def decide(order: OrderInput, candidates: Sequence[Candidate], policy: Policy | None = None) -> Decision:
    """Choose the locations that ship ``order``. Deterministic: same inputs and policy, same decision."""
    policy = policy or DEFAULT_POLICY
    cands = tuple(candidates)
    lines = order.lines
    dist = _distances(order.lat, order.lon, cands)
    rules = evaluate_rules(order, cands, dist, policy)
    parcel = [j for j, line in enumerate(lines) if not line.service]
    eligible = [i for i in range(len(cands)) if i not in rules.excluded]
    blocked = rules.blocked

    cover, cover_ids, held_back = _coverage(lines, parcel, cands, eligible, blocked)
    unfilled: dict[int, UnfilledLine] = {}
    split = _split_lines(parcel, order, cands, cover, eligible, rules, policy, unfilled)

    def helps(i: int) -> bool:
        if cover[i]:
            return True
        blk = blocked.get(i, 0)
        return any(not blk >> j & 1 and cands[i].stock.get(lines[j].material_id, 0) > 0 for j in split)

    contributors = [i for i in eligible if helps(i)]
    weighted = policy.mode == "weighted"
    factors, normalised, scores = _factors(order, cands, dist, cover, contributors, policy, weighted)
    base = min((c.priority for c in cands), default=0)
    # Not fewest-first: each shipment adds the penalty to the first criterion (score, or km if lexicographic).
    penalty = 0.0 if policy.fewest_shipments_first else policy.shipment_penalty
    metres_penalty = 0 if weighted else round(penalty * 1000)
    score_penalty = round(penalty * _SCORE_SCALE) if weighted else 0
    keys: dict[int, int] = {}
    for i in contributors:
        metres = round(dist[i] * 1000) + metres_penalty
        key = metres << _DIST_SHIFT | min(cands[i].priority - base, _PRIORITY_CAP)
        if weighted:
            key |= (round(scores[i] * _SCORE_SCALE) + score_penalty) << _SCORE_SHIFT
        keys[i] = key
    order_idx = sorted(contributors, key=keys.__getitem__)
    if len(set(keys.values())) < len(keys):  # ties: make the order independent of the input order
        order_idx.sort(key=lambda i: (keys[i], _id_key(cands[i].location_id), i))

    if rules.presale_apart:
        groups = [
            ("in_stock", [j for j in parcel if not lines[j].presale]),
            ("presale", [j for j in parcel if lines[j].presale]),
        ]
    else:
        groups = [("all", parcel)]
    groups = [(name, js) for name, js in groups if any(j not in unfilled for j in js)]
    limit = rules.max_shipments[1] if rules.max_shipments else None
    shipments: list[Shipment] = []
    results: list[GroupResult] = []
    chosen_all: set[int] = set()
    left = cands  # the stock earlier groups have not taken: groups never share a unit
    for name, js in groups:
        group_cap = None if limit is None else max(1, limit - (len(groups) - 1))
        gcover, gsplit = cover, split
        if left is not cands:
            gcover, _, _ = _coverage(lines, js, left, eligible, blocked)
            gsplit = _split_lines(js, order, left, gcover, eligible, rules, policy, unfilled, cands)
        ships, result, used = _solve_group(
            name, js, order, left, dist, gcover, gsplit, unfilled, order_idx, keys, blocked, policy, group_cap
        )
        if ships:
            left = _after(left, ships)
        shipments.extend(ships)
        results.append(result)
        chosen_all.update(used)

    parcel_count = len(parcel)
    if parcel_count and len(unfilled) == parcel_count:
        status = "unfillable"
    elif limit is not None and len(shipments) > limit:
        status = "needs_split_approval"
    elif unfilled:
        status = "partial"
    else:
        status = "routed"

    reports = []
    excluded, restrictions = rules.excluded, rules.restrictions
    for i, c in enumerate(cands):
        exc = excluded.get(i)
        held = held_back.get(i, 0)
        got = (
            tuple((lines[j].id, code, why) for j, code, why in restrictions[i] if held >> j & 1)
            if held
            else ()
        )
        d3 = round(dist[i], 3)
        if weighted and i in factors:
            f, nf, sc = factors[i], normalised[i], scores[i]
        else:
            f, nf, sc = {"distance_km": d3, "priority": c.priority}, {}, None
        reports.append(
            CandidateReport(
                c.location_id,
                c.name,
                c.kind,
                d3,
                c.priority,
                exc[0] if exc else None,
                exc[1] if exc else None,
                got,
                tuple(cover_ids[i]) if i in cover_ids else (),
                f,
                nf,
                sc,
                i in chosen_all,
            )
        )
    return Decision(
        order_id=order.id,
        policy_name=policy.name,
        mode=policy.mode,
        status=status,
        shipments=tuple(shipments),
        unfilled=tuple(unfilled[j] for j in sorted(unfilled)),
        service_lines=tuple(line.id for line in lines if line.service),
        candidates=tuple(reports),
        weights=dict(policy.weights) if weighted else {},
        groups=tuple(results),
        carrier=rules.carrier[1] if rules.carrier else None,
        carrier_rule=rules.carrier[0] if rules.carrier else None,
        rule_events=tuple(rules.events),
        max_shipments=limit,
        max_shipments_rule=rules.max_shipments[0] if rules.max_shipments else None,
        fewest_shipments_first=policy.fewest_shipments_first,
        shipment_penalty=penalty,
    )


def _solve_group(
    name: str,
    js: list[int],
    order: OrderInput,
    cands: Sequence[Candidate],
    dist: Sequence[float],
    cover: Mapping[int, int],
    split: set[int],
    unfilled: dict[int, UnfilledLine],
    order_idx: Sequence[int],
    keys: Mapping[int, int],
    blocked: Mapping[int, int],
    policy: Policy,
    group_cap: int | None,
) -> tuple[list[Shipment], GroupResult, list[int]]:
    """Solve one group of lines. Line bits are order line indices; locations are numbered by key."""
    lines = order.lines
    js = [j for j in js if j not in unfilled]
    gmask = 0
    by_material: dict[Id, list[int]] = {}
    for j in js:
        gmask |= 1 << j
        by_material.setdefault(lines[j].material_id, []).append(j)
    complex_lines = [
        j for mj in by_material.values() if len(mj) > 1 or any(j in split for j in mj) for j in mj
    ]
    if complex_lines:

        def helps(i: int) -> bool:
            if cover[i] & gmask:
                return True
            blk = blocked.get(i, 0)
            stock = cands[i].stock
            return any(not blk >> j & 1 and stock.get(lines[j].material_id, 0) > 0 for j in complex_lines)

        loc = [i for i in order_idx if helps(i)]
    else:
        loc = [i for i in order_idx if cover[i] & gmask]
    masks = [cover[i] & gmask for i in loc]
    required = gmask
    for j in split:
        required &= ~(1 << j)

    def line_cov() -> list[int]:
        cov = [0] * len(lines)
        for c, m in enumerate(masks):
            bit = 1 << c
            for j in bits(m):
                cov[j] |= bit
        return cov

    packing = None
    if complex_lines:
        cov = line_cov()
        demands = []
        every = list(range(len(loc)))
        for mat, mjs in by_material.items():
            if not any(j in complex_lines for j in mjs):
                continue
            d = _demand(mat, mjs, split, loc, cands, blocked, cov, lines)
            if assign_material(d, every) is None:
                # Not enough of it for all its lines: fill the most lines, then the most units.
                def fits(sub: list[int], mat=mat) -> bool:
                    sd = _demand(mat, sub, split, loc, cands, blocked, cov, lines)
                    return assign_material(sd, every) is not None

                kept = fill_most([(j, lines[j].quantity) for j in mjs], fits)
                for j in mjs:
                    if j not in kept:
                        unfilled[j] = _short(j, order)
                        required &= ~(1 << j)
                        cov[j] = 0
                d = _demand(mat, kept, split, loc, cands, blocked, cov, lines)
            demands.append(d)
        packing = Packing(demands)
        js = [j for j in js if j not in unfilled]
    if not js:
        return [], GroupResult(name, (), 0, 0, len(loc)), []

    # locations able to ship the whole group alone, best first
    if packing is None:
        complete = [c for c, m in enumerate(masks) if m & required == required]
    else:
        complete = [c for c, m in enumerate(masks) if m & required == required and not packing.feasible((c,))]
    if complete and policy.fewest_shipments_first:
        chosen: tuple[int, ...] | None = (complete[0],)  # k = 1: the first in key order is optimal
    else:
        keyl = [keys[i] for i in loc]
        feasible = packing.feasible if packing else None
        chosen = None
        if not policy.fewest_shipments_first:
            cap = group_cap or len(loc)
            chosen = min_cover(keyl, masks, required, k_max=cap, fewest_first=False, feasible=feasible)
        if chosen is None:
            chosen = min_cover(keyl, masks, required, k_max=len(loc), feasible=feasible)
    assert chosen is not None  # every remaining line can ship from the eligible locations together

    # who ships what: packed lines as packed, other lines from the best chosen location covering them
    parts: dict[int, list[ShipmentLine]] = {c: [] for c in chosen}
    packed = packing.assign(chosen) if packing else {}
    for j in js:
        line = lines[j]
        if j in packed:
            for c, q in packed[j]:
                parts[c].append(ShipmentLine(line.id, line.material_id, q))
        else:
            c = next(c for c in chosen if masks[c] >> j & 1)
            parts[c].append(ShipmentLine(line.id, line.material_id, line.quantity))
    ships = []
    used = []
    for c in chosen:
        if not parts[c]:
            continue
        i = loc[c]
        used.append(i)
        cand = cands[i]
        ships.append(
            Shipment(
                cand.location_id,
                cand.name,
                cand.kind,
                name,
                round(dist[i], 3),
                round(cand.cost_per_shipment + cand.cost_per_km * dist[i], 2),
                tuple(parts[c]),
            )
        )
    runner_up = None
    if len(ships) == 1:
        others = [c for c in complete if c not in chosen]
        runner_up = cands[loc[others[0]]].location_id if others else None
    result = GroupResult(
        name,
        tuple(lines[j].id for j in js),
        len(ships),
        len(complete),
        len(loc) - len(complete),
        runner_up,
    )
    return ships, result, used


def _coverage(
    lines: Sequence[LineInput], js: Iterable[int], cands: Sequence[Candidate], eligible, blocked
) -> tuple[dict[int, int], dict[int, list[Id]], dict[int, int]]:
    """Per eligible location: the lines ``js`` it may ship whole (bit j = order line j), their ids for
    the report, and the lines it holds whole but a rule keeps it from shipping."""
    cover: dict[int, int] = {}
    cover_ids: dict[int, list[Id]] = {}
    held_back: dict[int, int] = {}
    wanted = [(1 << j, lines[j].material_id, lines[j].quantity, lines[j].id) for j in js]
    for i in eligible:
        get = cands[i].stock.get
        m = 0
        ids = []
        for bit, material, quantity, line_id in wanted:
            if get(material, 0) >= quantity:
                m |= bit
                ids.append(line_id)
        blk = blocked.get(i)
        if blk and m & blk:
            held_back[i] = m & blk
            m &= ~blk
            ids = [lines[j].id for j in bits(m)]
        cover[i] = m
        cover_ids[i] = ids
    return cover, cover_ids, held_back


def _split_lines(
    js: Iterable[int],
    order: OrderInput,
    cands: Sequence[Candidate],
    cover: Mapping[int, int],
    eligible: Sequence[int],
    rules: RuleOutcome,
    policy: Policy,
    unfilled: dict[int, UnfilledLine],
    full: Sequence[Candidate] | None = None,
) -> set[int]:
    """The lines that may be spread over locations; records in ``unfilled`` the lines that cannot ship.

    With ``policy.allow_line_split`` every line with enough stock across the eligible locations may be
    split (even one a single location holds whole: splitting it can save a shipment elsewhere).
    ``full``: the stock before earlier groups took theirs, to say so when that is why a line is short.
    """
    lines, blocked = order.lines, rules.blocked
    covered = 0
    for m in cover.values():
        covered |= m
    split: set[int] = set()
    for j in js:
        if policy.allow_line_split:
            line = lines[j]
            total = sum(
                cands[i].stock.get(line.material_id, 0) for i in eligible if not blocked.get(i, 0) >> j & 1
            )
            if total >= line.quantity:
                split.add(j)
                continue
        elif covered >> j & 1:
            continue
        unfilled[j] = _unfilled(j, order, cands, rules, eligible, split_allowed=policy.allow_line_split)
        if full is not None and _ships_alone(j, order, full, eligible, blocked, policy.allow_line_split):
            line = lines[j]
            unfilled[j] = UnfilledLine(
                line.id,
                line.material_id,
                line.quantity,
                f"the in-stock lines, planned first, took the {line.material_id} this line needed",
            )
    return split


def _ships_alone(
    j: int, order: OrderInput, cands: Sequence[Candidate], eligible, blocked, split: bool
) -> bool:
    """Whether the eligible locations hold enough for line ``j`` on its own (whole, or split if allowed)."""
    line = order.lines[j]
    held = [cands[i].stock.get(line.material_id, 0) for i in eligible if not blocked.get(i, 0) >> j & 1]
    return (sum(held) if split else max(held, default=0)) >= line.quantity


def _after(cands: Sequence[Candidate], ships: Sequence[Shipment]) -> tuple[Candidate, ...]:
    """The candidates with what ``ships`` take removed from their stock."""
    taken: dict[Id, dict[Id, int]] = {}
    for s in ships:
        per = taken.setdefault(s.location_id, {})
        for x in s.lines:
            per[x.material_id] = per.get(x.material_id, 0) + x.quantity
    out = []
    for c in cands:
        per = taken.get(c.location_id)
        if per:
            stock = {m: q - per.get(m, 0) for m, q in c.stock.items()}
            c = replace(c, stock=stock)
        out.append(c)
    return tuple(out)


def _demand(mat, mjs, split, loc, cands, blocked, cov, lines) -> MaterialDemand:
    d = MaterialDemand(cap=[cands[i].stock.get(mat, 0) for i in loc])
    for j in mjs:
        if j in split:
            elig = sum(1 << c for c, i in enumerate(loc) if not blocked.get(i, 0) >> j & 1 and d.cap[c] > 0)
            d.split.append((j, lines[j].quantity, elig))
        else:
            d.whole.append((j, lines[j].quantity, cov[j]))
    return d


def _short(j: int, order: OrderInput) -> UnfilledLine:
    line = order.lines[j]
    return UnfilledLine(
        line.id,
        line.material_id,
        line.quantity,
        f"not enough {line.material_id} at the eligible locations for every line of it"
        " (the most lines are filled, then the most units)",
    )


def _unfilled(
    j: int, order: OrderInput, cands: Sequence[Candidate], rules: RuleOutcome, eligible, split_allowed: bool
) -> UnfilledLine:
    line = order.lines[j]
    holders = [i for i, c in enumerate(cands) if c.stock.get(line.material_id, 0) >= line.quantity]
    codes: list[str] = []
    kept = []
    for i in holders:
        code = rules.excluded[i][0] if i in rules.excluded else None
        if code is None and rules.blocked.get(i, 0) >> j & 1:
            code = next(code for jj, code, _ in rules.restrictions[i] if jj == j)
        if code:
            kept.append(f"{cands[i].name} ({code})")
            if code not in codes:
                codes.append(code)
    what = f"{line.quantity} x {line.material_id}"
    if kept:
        reason = f"{what} is only at locations the rules keep out: {', '.join(kept)}"
    elif split_allowed:
        reason = f"not enough {line.material_id} across the eligible locations for {what}, even split"
    else:
        reason = f"no eligible location holds {what}"
    return UnfilledLine(line.id, line.material_id, line.quantity, reason, tuple(codes))


def _factors(
    order: OrderInput,
    cands: Sequence[Candidate],
    dist: Sequence[float],
    cover: Mapping[int, int],
    contributors: Sequence[int],
    policy: Policy,
    weighted: bool,
) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]], dict[int, float]]:
    """Raw factor values, their [0, 1] normalisation across contributors (0 = best) and the scores."""
    if not weighted:
        return {}, {}, {}
    lines = order.lines
    raw: dict[int, dict[str, float]] = {}
    for i in contributors:
        c = cands[i]
        covered = bits(cover[i])
        depth = (
            sum(c.stock.get(lines[j].material_id, 0) - lines[j].quantity for j in covered) / len(covered)
            if covered
            else 0.0
        )
        raw[i] = {
            "distance": dist[i],
            "cost": c.cost_per_shipment + c.cost_per_km * dist[i],
            "sla": float(c.sla_days),
            "load": c.load_today / c.daily_capacity if c.daily_capacity else 0.0,
            "stock_depth": float(depth),
            "preference": 1.0 - min(1.0, max(0.0, float(policy.kind_bonus.get(c.kind, 0.0)))),
        }
    normalised: dict[int, dict[str, float]] = {i: {} for i in contributors}
    for f in FACTORS:
        values = [raw[i][f] for i in contributors]
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        for i in contributors:
            v = raw[i][f]
            if f == "preference":
                n = v
            elif hi <= lo:
                n = 0.0
            elif f == "stock_depth":  # deeper stock is better
                n = (hi - v) / (hi - lo)
            else:
                n = (v - lo) / (hi - lo)
            normalised[i][f] = round(n, 6)
    w = policy.weights
    scores = {i: round(sum(w.get(f, 0.0) * normalised[i][f] for f in FACTORS), 6) for i in contributors}
    pretty = {
        i: {
            "distance_km": round(r["distance"], 3),
            "priority": cands[i].priority,
            "cost": round(r["cost"], 2),
            "sla_days": r["sla"],
            "load": round(r["load"], 4),
            "stock_depth": round(r["stock_depth"], 3),
            "preference": r["preference"],
        }
        for i, r in raw.items()
    }
    return pretty, normalised, scores


# ------------------------------------------------------------------------------ replay and compare


def simulate(stored: Mapping[str, Any], policy: Policy | Mapping[str, Any] | None = None) -> Decision:
    """Re-run a stored decision's inputs (``stored_inputs``) under ``policy`` (a Policy or its dict)."""
    if policy is not None and not isinstance(policy, Policy):
        policy = Policy.from_dict(policy)
    order = OrderInput.from_dict(stored["order"])
    return decide(order, [Candidate.from_dict(c) for c in stored["candidates"]], policy)


def compare(before: Decision, after: Decision) -> dict[str, Any]:
    """What changes between two decisions for the same order (after - before)."""
    return {
        "order_id": after.order_id,
        "status_before": before.status,
        "status_after": after.status,
        "shipments_before": before.shipment_count,
        "shipments_after": after.shipment_count,
        "shipments_delta": after.shipment_count - before.shipment_count,
        "distance_km_before": before.total_distance_km,
        "distance_km_after": after.total_distance_km,
        "distance_km_delta": round(after.total_distance_km - before.total_distance_km, 3),
        "cost_before": before.total_cost,
        "cost_after": after.total_cost,
        "cost_delta": round(after.total_cost - before.total_cost, 2),
        "unfilled_delta": len(after.unfilled) - len(before.unfilled),
        "locations_before": [s.location_id for s in before.shipments],
        "locations_after": [s.location_id for s in after.shipments],
        "changed": _plan(before) != _plan(after),
    }


def _plan(d: Decision) -> list[tuple[Any, ...]]:
    return sorted(
        [
            (s.group, _id_key(s.location_id), tuple((x.line_id, x.quantity) for x in s.lines))
            for s in d.shipments
        ],
        key=repr,
    )


# ------------------------------------------------------------------------------------------ explain

_GROUP_LABEL = {"in_stock": "In-stock lines", "presale": "Presale lines"}
_LIST_MAX = 12


def _km(x: float) -> str:
    return f"{x:.1f} km"


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _objective(d: Decision) -> str:
    """The objective the engine really used: mode, and fewest shipments first or a per-shipment penalty."""
    per_shipment = (
        f"each shipment adding {d.shipment_penalty:g}{' km' if d.mode == 'lexicographic' else ''}"
        if d.shipment_penalty
        else "whatever the number of shipments"
    )
    if d.mode == "lexicographic":
        if d.fewest_shipments_first:
            return (
                "complete > nearest > priority: fewest shipments, then shortest total distance,"
                " then location priority"
            )
        return f"nearest > priority: shortest total distance ({per_shipment}), then location priority"
    w = ", ".join(f"{k} {v:g}" for k, v in d.weights.items() if v) or "no weights"
    score = f"lowest total weighted score ({w}; lower is better)"
    if d.fewest_shipments_first:
        return f"fewest shipments, then {score}, then distance, then priority"
    return f"{score}, {per_shipment}; then distance, then priority"


def _plan_cost(d: Decision) -> str:
    """What a plan is compared on when fewer shipments do not come first."""
    total = "total distance" if d.mode == "lexicographic" else "total weighted score"
    return total + (" with the shipment penalty" if d.shipment_penalty else "")


def _explain(d: Decision) -> str:
    by_id = {c.location_id: c for c in d.candidates}
    lex = d.mode == "lexicographic"
    objective = _objective(d)
    status = {
        "routed": f"routed in {_n(d.shipment_count, 'shipment')}, {_km(d.total_distance_km)} in total",
        "partial": (
            f"partly routed in {_n(d.shipment_count, 'shipment')}; {_n(len(d.unfilled), 'line')} unfilled"
        ),
        "unfillable": "no parcel line can be shipped",
        "needs_split_approval": (
            f"needs split approval: {d.shipment_count} shipments exceed the limit of {d.max_shipments}"
            f" (rule {d.max_shipments_rule})"
        ),
    }.get(d.status, d.status)
    out = [f"Order {d.order_id}, policy {d.policy_name!r} ({objective}): {status}."]
    multi = len(d.groups) > 1
    for g in d.groups:
        ships = [s for s in d.shipments if s.group == g.name]
        prefix = f"{_GROUP_LABEL.get(g.name, g.name)}: " if multi else ""
        if len(ships) == 1:
            s = ships[0]
            me = by_id.get(s.location_id)
            whys = []
            if g.partial_options:
                beats = (
                    "a complete shipment beats splitting"
                    if d.fewest_shipments_first
                    else f"lower {_plan_cost(d)} than splitting"
                )
                whys.append(
                    f"{beats} across the "
                    + ("location" if g.partial_options == 1 else f"{g.partial_options} locations")
                    + " holding only part of it"
                )
            runner = by_id.get(g.runner_up) if g.runner_up is not None else None
            if runner is not None and me is not None:
                if not lex and me.score is not None and runner.score is not None:
                    whys.append(
                        f"best weighted score ({me.score:.3f}) of {g.complete_options} locations able to"
                        f" ship it whole (next: {runner.name}, {runner.score:.3f})"
                    )
                elif runner.distance_km > s.distance_km:
                    whys.append(
                        f"nearest of {g.complete_options} locations able to ship it whole"
                        f" (next: {runner.name}, {_km(runner.distance_km)})"
                    )
                else:
                    whys.append(
                        f"as near as {runner.name}, wins on priority ({me.priority} vs {runner.priority})"
                    )
            elif g.complete_options == 1:
                whys.append("the only location able to ship it whole")
            line = f"{prefix}Shipped whole from {s.name} ({_km(s.distance_km)})"
            out.append(line + (": " + "; ".join(whys) if whys else "") + ".")
        elif ships:
            total = sum(x.distance_km for x in ships)
            if d.fewest_shipments_first:
                best = "shortest total distance" if lex else "best total weighted score"
                how = (
                    "the fewest possible, as no single eligible location holds every line;"
                    f" {best} among such plans"
                )
            else:
                how = f"the lowest {_plan_cost(d)} of any plan"
                if g.complete_options:
                    whole = (
                        "the location"
                        if g.complete_options == 1
                        else f"any of the {g.complete_options} locations"
                    )
                    how += f", lower than shipping whole from {whole} able to ship it alone"
            parts = "; ".join(
                f"{x.name} ({_km(x.distance_km)}) ships "
                + ", ".join(f"{y.line_id} x{y.quantity}" for y in x.lines)
                for x in ships
            )
            out.append(f"{prefix}Split into {len(ships)} shipments, {how} ({_km(total)}): {parts}.")
    if d.carrier:
        why = next((m for code, m in d.rule_events if code == d.carrier_rule), "")
        out.append(f"Carrier {d.carrier} mandated by rule {d.carrier_rule}" + (f" ({why})." if why else "."))
    for code, message in d.rule_events:
        if code != d.carrier_rule:
            out.append(f"Rule {code}: {message}.")
    excluded = [c for c in d.candidates if c.excluded_by]
    for c in excluded[:_LIST_MAX]:
        out.append(f"{c.name} excluded by rule {c.excluded_by}: {c.reason}.")
    if len(excluded) > _LIST_MAX:
        out.append(f"... and {len(excluded) - _LIST_MAX} more locations excluded.")
    restricted = [c for c in d.candidates if c.restricted and not c.excluded_by]
    for c in restricted[:_LIST_MAX]:
        why: dict[tuple[str, str], list[str]] = {}
        for line_id, code, reason in c.restricted:
            why.setdefault((code, reason), []).append(str(line_id))
        for (code, reason), ids in why.items():
            out.append(f"{c.name} may not ship {', '.join(ids)}: {reason} (rule {code}).")
    if len(restricted) > _LIST_MAX:
        out.append(f"... and {len(restricted) - _LIST_MAX} more locations with restricted lines.")
    for u in d.unfilled:
        out.append(f"Line {u.line_id} unfilled: {u.reason}.")
    if d.service_lines:
        out.append(f"Service lines {', '.join(map(str, d.service_lines))} need no parcel (service only).")
    return "\n".join(out)
