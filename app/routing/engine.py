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

The engine is split by idea: ``engine_inputs`` (what goes in), ``engine_decision`` (what comes out),
``engine_score`` (factors and packed keys), ``engine_plan`` (coverage, splitting, partial fills and the
search per group), ``engine_explain`` (the English account). This module is the door: ``decide``,
``simulate``, ``compare``, and every public name callers import from ``app.routing.engine``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.routing.cover_budget import SOLVERS
from app.routing.engine_decision import (
    CandidateReport,
    Decision,
    GroupResult,
    Shipment,
    ShipmentLine,
    UnfilledLine,
)
from app.routing.engine_inputs import Candidate, Id, LineInput, OrderInput, id_key, stored_inputs
from app.routing.engine_plan import coverage, solve_group, split_lines, stock_left
from app.routing.engine_score import factors as score_factors
from app.routing.engine_score import location_keys
from app.routing.policy import Policy, evaluate_rules

__all__ = [
    "Candidate",
    "CandidateReport",
    "Decision",
    "GroupResult",
    "Id",
    "LineInput",
    "OrderInput",
    "Shipment",
    "ShipmentLine",
    "UnfilledLine",
    "compare",
    "decide",
    "haversine_km",
    "simulate",
    "stored_inputs",
]

EARTH_RADIUS_KM = 6371.0088
SOLVE_SHARE = 0.85  # of the budget, for everything up to the chosen plan; the rest builds the decision


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


# ------------------------------------------------------------------------------------------ decide

DEFAULT_POLICY = Policy()


def decide(
    order: OrderInput,
    candidates: Sequence[Candidate],
    policy: Policy | None = None,
    *,
    budget_ms: float | None = None,
    solver: str = "auto",
) -> Decision:
    """Choose the locations that ship ``order``. Deterministic (same inputs and policy, same decision)
    whenever the plan is proven optimal, which is every decision that finishes within its budget.

    ``budget_ms`` (default ``policy.time_budget_ms``; ``math.inf``: no limit): past it, the best plan
    found, with ``proven_optimal=False``. ``solver``: ``auto``, ``search`` or ``milp``
    (``app.routing.cover_budget``; the other two are for tests and benchmarks).
    """
    policy = policy or DEFAULT_POLICY
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}")
    budget = policy.time_budget_ms if budget_ms is None else budget_ms
    deadline = time.perf_counter() + budget / 1000 * SOLVE_SHARE
    cands = tuple(candidates)
    lines = order.lines
    dist = _distances(order.lat, order.lon, cands)
    rules = evaluate_rules(order, cands, dist, policy)
    parcel = [j for j, line in enumerate(lines) if not line.service]
    eligible = [i for i in range(len(cands)) if i not in rules.excluded]
    blocked = rules.blocked

    cover, cover_ids, held_back = coverage(lines, parcel, cands, eligible, blocked)
    unfilled: dict[int, UnfilledLine] = {}
    split = split_lines(parcel, order, cands, cover, eligible, rules, policy, unfilled)

    def helps(i: int) -> bool:
        if cover[i]:
            return True
        blk = blocked.get(i, 0)
        return any(not blk >> j & 1 and cands[i].stock.get(lines[j].material_id, 0) > 0 for j in split)

    contributors = [i for i in eligible if helps(i)]
    weighted = policy.mode == "weighted"
    factors, normalised, scores = score_factors(order, cands, dist, cover, contributors, policy, weighted)
    penalty = 0.0 if policy.fewest_shipments_first else policy.shipment_penalty
    keys, order_idx = location_keys(contributors, cands, dist, scores, policy)
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
    proven = True
    left = cands  # the stock earlier groups have not taken: groups never share a unit
    for name, js in groups:
        group_cap = None if limit is None else max(1, limit - (len(groups) - 1))
        gcover, gsplit = cover, split
        if left is not cands:
            gcover, _, _ = coverage(lines, js, left, eligible, blocked)
            gsplit = split_lines(js, order, left, gcover, eligible, rules, policy, unfilled, cands)
        ships, result, used, group_proven = solve_group(
            name,
            js,
            order,
            left,
            dist,
            gcover,
            gsplit,
            unfilled,
            order_idx,
            keys,
            blocked,
            policy,
            group_cap,
            deadline,
            solver,
        )
        proven = proven and group_proven
        if ships:
            left = stock_left(left, ships)
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
        proven_optimal=proven,
        budget_ms=None if math.isinf(budget) else budget,
    )


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
            (s.group, id_key(s.location_id), tuple((x.line_id, x.quantity) for x in s.lines))
            for s in d.shipments
        ],
        key=repr,
    )
