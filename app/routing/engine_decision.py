"""What the routing engine answers: a ``Decision`` (shipments, unfilled lines, a report on every
candidate, the groups) with ``to_dict``/``from_dict`` so it is stored with the order, and ``explain()``.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.routing.engine_explain import explain
from app.routing.engine_inputs import Id


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
    # False when the time budget ran out before the search or HiGHS proved the plan optimal: it is the
    # best plan found within ``budget_ms`` (decisions stored before the budget existed were all proven)
    proven_optimal: bool = True
    budget_ms: float | None = None

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
            "proven_optimal": self.proven_optimal,
            "budget_ms": self.budget_ms,
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
        return explain(self)
