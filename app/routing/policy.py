"""Routing policy as data: the objective, the weights, and the rules that run before any scoring.

A policy is stored per tenant and edited at run time (e.g. SLA weight 0.75 during a promotion), so it is
plain data with ``to_dict``/``from_dict``. Rules are evaluated in order, before the search; each has a
``code`` (what the decision and its explanation cite), a ``kind`` (one of ``RULE_KINDS``) and JSON
``params``. Two optional params restrict any rule to some orders: ``channels`` (order channel codes)
and ``fulfilment_types`` (``delivery``/``pickup``/``same_day``). A location is excluded by the first
rule that excludes it; line-level rules (cold chain) only forbid some lines at some locations.

Pure: no I/O. ``evaluate_rules`` reads the engine's input types from ``app.routing.engine_inputs``, which
sits below both this module and the engine (the engine imports the policy, never the reverse).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.routing.engine_inputs import Candidate, OrderInput

MODES = ("lexicographic", "weighted")
FACTORS = ("distance", "stock_depth", "cost", "sla", "load", "preference")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "distance": 0.4,
    "cost": 0.2,
    "sla": 0.2,
    "load": 0.1,
    "stock_depth": 0.05,
    "preference": 0.05,
}
O2O_TYPES = ("pickup", "same_day")
REQUIRED_CAPABILITY = {"delivery": "ship", "pickup": "pickup", "same_day": "same_day"}

RULE_KINDS: Mapping[str, str] = {
    "status": "exclude locations whose status is not allowed (default: only 'active')",
    "capability": "location must have the capability the fulfilment type needs (ship/pickup/same_day)",
    "pickup_location": "pickup orders that name a store are served by that store only",
    "capacity": "exclude locations whose load today has reached their daily capacity",
    "store_radius": "O2O: exclude stores farther than radius_km from the address",
    "vip_lane": "VIP / high-value orders only from the dedicated lane (locations, amount_threshold, tags)",
    "cold_chain": "cold-chain lines only from cold-chain capable locations",
    "presale_apart": "presale lines are shipped apart from in-stock lines",
    "channel_carrier": "orders of the given channels ship with the given carrier (params: channels, carrier)",
    "max_shipments": "at most params.max shipments; more needs split approval",
}


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"unknown rule kind {self.kind!r} (rule {self.code!r})")
        if self.kind == "vip_lane" and "locations" not in self.params:
            raise ValueError(f"rule {self.code!r}: vip_lane needs params.locations")
        if self.kind == "channel_carrier" and not ("channels" in self.params and "carrier" in self.params):
            raise ValueError(f"rule {self.code!r}: channel_carrier needs params.channels and params.carrier")
        if self.kind == "max_shipments" and int(self.params.get("max", 0)) < 1:
            raise ValueError(f"rule {self.code!r}: max_shipments needs params.max >= 1")

    def applies_to(self, order: OrderInput) -> bool:
        if not self.enabled:
            return False
        channels = self.params.get("channels")
        if channels is not None and order.channel.lower() not in {c.lower() for c in _as_list(channels)}:
            return False
        types = self.params.get("fulfilment_types")
        if types is None and self.kind == "store_radius":
            types = O2O_TYPES
        return types is None or order.fulfilment_type in _as_list(types)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "kind": self.kind, "params": dict(self.params), "enabled": self.enabled}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        return cls(d["code"], d["kind"], dict(d.get("params") or {}), bool(d.get("enabled", True)))


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("status", "status"),
    Rule("capability", "capability"),
    Rule("pickup_location", "pickup_location"),
    Rule("cold_chain", "cold_chain"),
    Rule("presale_apart", "presale_apart"),
    Rule("store_radius", "store_radius"),
)


@dataclass(frozen=True, slots=True)
class Policy:
    """How to choose. ``mode``: 'lexicographic' (complete > nearest > priority) or 'weighted'.

    Weighted: each factor is normalised to [0, 1] across the eligible candidates (0 = best) and
    multiplied by its weight; a location's score is the sum, lower is better; a plan's score is the sum
    over its shipments. ``kind_bonus`` (brand preference, e.g. ``{"store": 1.0}``) turns into the
    ``preference`` factor ``1 - bonus``. With ``fewest_shipments_first`` (default) the number of
    shipments comes first, in both modes; otherwise each shipment adds ``shipment_penalty`` to the
    plan's first criterion: its score (weighted) or its total distance in km (lexicographic).
    ``max_shipments``: plans needing more get status ``needs_split_approval`` (see engine).
    ``time_budget_ms``: how long one decision may search; past it the engine returns the best plan
    found, flagged not proven optimal (``Decision.proven_optimal``).
    """

    name: str = "default"
    mode: str = "lexicographic"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    kind_bonus: Mapping[str, float] = field(default_factory=dict)
    rules: tuple[Rule, ...] = DEFAULT_RULES
    max_shipments: int | None = None
    allow_line_split: bool = False
    store_radius_km: float = 3.0
    fewest_shipments_first: bool = True
    shipment_penalty: float = 1.0
    time_budget_ms: float = 50.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        unknown = set(self.weights) - set(FACTORS)
        if unknown:
            raise ValueError(f"unknown weight factor(s): {', '.join(sorted(unknown))}")
        if any(w < 0 for w in self.weights.values()) or self.shipment_penalty < 0:
            raise ValueError("weights and shipment_penalty must be >= 0")
        if not self.time_budget_ms > 0:
            raise ValueError("time_budget_ms must be > 0")
        if self.max_shipments is not None and self.max_shipments < 1:
            raise ValueError("max_shipments must be >= 1")
        object.__setattr__(self, "rules", tuple(self.rules))

    def with_weights(self, **weights: float) -> Policy:
        """A copy with some weights changed, e.g. ``policy.with_weights(sla=0.75)``."""
        return dataclasses.replace(self, weights={**self.weights, **weights})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "weights": dict(self.weights),
            "kind_bonus": dict(self.kind_bonus),
            "rules": [r.to_dict() for r in self.rules],
            "max_shipments": self.max_shipments,
            "allow_line_split": self.allow_line_split,
            "store_radius_km": self.store_radius_km,
            "fewest_shipments_first": self.fewest_shipments_first,
            "shipment_penalty": self.shipment_penalty,
            "time_budget_ms": self.time_budget_ms,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Policy:
        kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        if "rules" in kw:
            kw["rules"] = tuple(Rule.from_dict(r) for r in kw["rules"])
        return cls(**kw)


@dataclass(slots=True)
class RuleOutcome:
    """What the rules decided before the search. Indices refer to the candidate / order line lists."""

    excluded: dict[int, tuple[str, str]] = field(default_factory=dict)  # candidate -> (code, reason)
    blocked: dict[int, int] = field(default_factory=dict)  # candidate -> mask of order lines it may not ship
    restrictions: dict[int, tuple[tuple[int, str, str], ...]] = field(
        default_factory=dict
    )  # (line, code, why)
    presale_apart: str | None = None  # code of the rule that keeps presale lines apart
    carrier: tuple[str, str] | None = None  # (code, carrier)
    max_shipments: tuple[str, int] | None = None  # (code, limit)
    events: list[tuple[str, str]] = field(default_factory=list)  # (code, message) for the explanation


def evaluate_rules(
    order: OrderInput, candidates: Sequence[Candidate], distances_km: Sequence[float], policy: Policy
) -> RuleOutcome:
    out = RuleOutcome()
    if policy.max_shipments is not None:
        out.max_shipments = ("policy.max_shipments", policy.max_shipments)
    excluded = out.excluded
    live = range(len(candidates))
    for rule in policy.rules:
        if not rule.applies_to(order):
            continue
        handler = _HANDLERS[rule.kind]
        handler(rule, order, candidates, distances_km, policy, out, [i for i in live if i not in excluded])
    return out


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple | set | frozenset) else [v]


def _status(rule, order, cands, dist, policy, out, live) -> None:
    allowed = set(_as_list(rule.params.get("allowed", ["active"])))
    for i in live:
        c = cands[i]
        if c.status not in allowed:
            out.excluded[i] = (rule.code, f"{c.status} ({c.status_reason})" if c.status_reason else c.status)


def _capability(rule, order, cands, dist, policy, out, live) -> None:
    need = {**REQUIRED_CAPABILITY, **rule.params.get("required", {})}.get(order.fulfilment_type)
    if need is None:
        return
    for i in live:
        if need not in cands[i].capabilities:
            out.excluded[i] = (rule.code, f"no '{need}' capability ({order.fulfilment_type} order)")


def _pickup_location(rule, order, cands, dist, policy, out, live) -> None:
    if order.fulfilment_type != "pickup" or order.pickup_location_id is None:
        return
    for i in live:
        if cands[i].location_id != order.pickup_location_id:
            out.excluded[i] = (
                rule.code,
                f"not the pickup store the customer chose ({order.pickup_location_id})",
            )


def _capacity(rule, order, cands, dist, policy, out, live) -> None:
    for i in live:
        c = cands[i]
        if c.daily_capacity and c.load_today >= c.daily_capacity:
            out.excluded[i] = (rule.code, f"at daily capacity ({c.load_today}/{c.daily_capacity} today)")


def _store_radius(rule, order, cands, dist, policy, out, live) -> None:
    radius = float(rule.params.get("radius_km", policy.store_radius_km))
    kinds = set(_as_list(rule.params.get("kinds", ["store"])))
    for i in live:
        if cands[i].kind in kinds and dist[i] > radius:
            out.excluded[i] = (
                rule.code,
                f"{dist[i]:.1f} km away, beyond the {radius:g} km store radius"
                f" ({order.fulfilment_type} order)",
            )


def _vip_lane(rule, order, cands, dist, policy, out, live) -> None:
    threshold = rule.params.get("amount_threshold")
    tags = set(_as_list(rule.params.get("tags", ["vip"])))
    why = []
    if threshold is not None and Decimal(str(order.amount)) >= Decimal(str(threshold)):
        why.append(f"amount {order.amount} ≥ {threshold}")
    hit = sorted(tags & set(order.customer_tags))
    if hit:
        why.append(f"customer tag {', '.join(hit)}")
    if not why:
        return
    lane = set(_as_list(rule.params["locations"]))
    out.events.append((rule.code, f"VIP order ({'; '.join(why)}): only VIP-lane locations may ship it"))
    for i in live:
        if cands[i].location_id not in lane:
            out.excluded[i] = (rule.code, "not in the VIP lane")


def _cold_chain(rule, order, cands, dist, policy, out, live) -> None:
    cold = [j for j, line in enumerate(order.lines) if line.cold_chain and not line.service]
    if not cold:
        return
    mask = sum(1 << j for j in cold)
    entries = tuple((j, rule.code, "not cold-chain capable") for j in cold)
    for i in live:
        if not cands[i].cold_chain:
            out.blocked[i] = out.blocked.get(i, 0) | mask
            # one shared tuple for every location it applies to (the report converts it once)
            out.restrictions[i] = out.restrictions[i] + entries if i in out.restrictions else entries


def _presale_apart(rule, order, cands, dist, policy, out, live) -> None:
    parcel = [line for line in order.lines if not line.service]
    if any(line.presale for line in parcel) and not all(line.presale for line in parcel):
        out.presale_apart = rule.code
        out.events.append((rule.code, "presale lines ship apart from in-stock lines"))


def _channel_carrier(rule, order, cands, dist, policy, out, live) -> None:
    if out.carrier is None:  # the first matching rule wins
        carrier = str(rule.params["carrier"])
        out.carrier = (rule.code, carrier)
        out.events.append((rule.code, f"{order.channel} orders ship with {carrier}"))


def _max_shipments(rule, order, cands, dist, policy, out, live) -> None:
    limit = int(rule.params["max"])
    if out.max_shipments is None or limit < out.max_shipments[1]:
        out.max_shipments = (rule.code, limit)


_HANDLERS = {
    "status": _status,
    "capability": _capability,
    "pickup_location": _pickup_location,
    "capacity": _capacity,
    "store_radius": _store_radius,
    "vip_lane": _vip_lane,
    "cold_chain": _cold_chain,
    "presale_apart": _presale_apart,
    "channel_carrier": _channel_carrier,
    "max_shipments": _max_shipments,
}
