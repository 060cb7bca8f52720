"""The tenant's routing policy as a row: read (created with the engine's defaults on first use),
changed at run time with validation, and tried on past decisions before it is saved (``simulate``).

Changes are partial: fields left out keep their value; ``weights`` and ``kind_bonus`` are merged into
the current ones (give 0 to switch a factor off); ``rules`` replaces the whole list. Anything the
engine's ``Policy`` would refuse comes back as a ``UserError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import UserError
from app.inventory.models import LocationKind
from app.orders.models import Order
from app.routing import carriers
from app.routing.engine import Decision, compare, simulate
from app.routing.models import RoutingDecision, RoutingPolicy
from app.routing.policy import FACTORS, MODES, Policy, Rule

OPTION_KEYS = (
    "kind_bonus",
    "allow_line_split",
    "fewest_shipments_first",
    "shipment_penalty",
    "time_budget_ms",
)
FIELDS = {
    "name": "name",
    "mode": "mode",
    "weights": "weights",
    "rules": "rules",
    "max_shipments": "maxShipments",
    "store_radius_km": "storeRadiusKm",
    "kind_bonus": "kindBonus",
    "allow_line_split": "allowLineSplit",
    "fewest_shipments_first": "fewestShipmentsFirst",
    "shipment_penalty": "shipmentPenalty",
    "time_budget_ms": "timeBudgetMs",
    "carrier_weights": "carrierWeights",
    "merge_window_minutes": "mergeWindowMinutes",
    "release_delay_minutes": "releaseDelayMinutes",
    "ship_in_stock_part_of_presale": "shipInStockPartOfPresale",
}
# Kept in ``options`` too, read by route_order (merging orders, delaying hand-over), not the engine:
# minutes, 0 = off.
ROUTING_OPTIONS = {"merge_window_minutes": 30, "release_delay_minutes": 0}
MAX_OPTION_MINUTES = 24 * 60
# Kept in ``options`` beside OPTION_KEYS, but read by carrier choice (``carriers``), not the engine.
CARRIER_WEIGHTS = "carrier_weights"
# Kept in ``options`` too, read by route_order (``presale.py``): an order mixing lines in stock with
# lines waiting for presale/backorder stock ships the in-stock part now. On by default: the default
# rules ship presale lines apart anyway (``presale_apart``), so it costs no extra parcel, only the wait.
IN_STOCK_PART = "ship_in_stock_part_of_presale"
IN_STOCK_PART_DEFAULT = True
MAX_RULES = 50
MAX_SHIPMENTS = 20
ENGINE_STATUSES = ("routed", "partial", "unfillable", "needs_split_approval")
MAX_SIMULATED = 500
# One decision's time budget (ms): the engine stops searching there (Policy.time_budget_ms). The worker
# must not be held long by one order, and below a few ms nothing but the greedy plan gets a chance.
TIME_BUDGET_MS = (5, 5000)


def policy_from_row(row: RoutingPolicy) -> Policy:
    return Policy.from_dict(
        {
            "name": row.name,
            "mode": row.mode,
            "weights": row.weights,
            "rules": row.rules,
            "max_shipments": row.max_shipments,
            "store_radius_km": row.store_radius_km,
            **{k: v for k, v in (row.options or {}).items() if k in OPTION_KEYS},
        }
    )


def _values(policy: Policy) -> dict[str, Any]:
    d = policy.to_dict()
    return {
        "name": d["name"],
        "mode": d["mode"],
        "weights": d["weights"],
        "rules": d["rules"],
        "max_shipments": d["max_shipments"],
        "store_radius_km": d["store_radius_km"],
        "options": {k: d[k] for k in OPTION_KEYS},
    }


async def active_row(session: AsyncSession, *, lock: bool = False) -> RoutingPolicy:
    """The active policy row, created with the engine's defaults if the tenant has none (two first
    readers at once: the partial unique index lets one insert win)."""
    query = select(RoutingPolicy).where(RoutingPolicy.active)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is not None:
        return row
    await session.execute(
        insert(RoutingPolicy)
        .values(**_values(Policy()), active=True, updated_by="system")
        .on_conflict_do_nothing(index_elements=["active"], index_where=text("active"))
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def get_policy(session: AsyncSession) -> Policy:
    return policy_from_row(await active_row(session))


def carrier_weights(row: RoutingPolicy) -> dict[str, float]:
    """Weights of cost and SLA days when choosing a carrier (``carriers.DEFAULT_WEIGHTS`` merged)."""
    return {**carriers.DEFAULT_WEIGHTS, **((row.options or {}).get(CARRIER_WEIGHTS) or {})}


def routing_options(row: RoutingPolicy) -> dict[str, int]:
    """``ROUTING_OPTIONS`` of the row, the defaults for those never set."""
    stored = row.options or {}
    return {k: int(stored.get(k, default)) for k, default in ROUTING_OPTIONS.items()}


async def current_options(session: AsyncSession) -> dict[str, int]:
    return routing_options(await active_row(session))


def ships_in_stock_part(row: RoutingPolicy) -> bool:
    """``IN_STOCK_PART`` of the row, its default when never set."""
    return bool((row.options or {}).get(IN_STOCK_PART, IN_STOCK_PART_DEFAULT))


def _number(value: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError("INVALID_POLICY", f"{field} must be a number", field)
    if not lo <= value <= hi:
        raise UserError("INVALID_POLICY", f"{field} must be between {lo:g} and {hi:g}", field)
    return float(value)


def _mapping(value: Any, field: str, keys, lo: float, hi: float) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise UserError("INVALID_POLICY", f"{field} must be an object", field)
    out = {}
    for key, v in value.items():
        if key not in keys:
            raise UserError(
                "INVALID_POLICY", f"unknown key {key!r}; use {', '.join(keys)}", [field, str(key)]
            )
        out[key] = _number(v, f"{field}.{key}", lo, hi)
    return out


def _rules(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise UserError("INVALID_POLICY", f"rules must be a list of at most {MAX_RULES}", "rules")
    out, codes = [], set()
    for i, raw in enumerate(value):
        where = ["rules", str(i)]
        if not isinstance(raw, Mapping) or not isinstance(raw.get("code"), str):
            raise UserError("INVALID_POLICY", "a rule is an object with code, kind and params", where)
        code = raw["code"].strip()
        if not code or len(code) > 40 or code in codes:
            raise UserError("INVALID_POLICY", "rule codes are 1-40 characters and unique", where)
        if raw.get("params") is not None and not isinstance(raw["params"], Mapping):
            raise UserError("INVALID_POLICY", "params must be an object", where)
        try:
            rule = Rule.from_dict({**raw, "code": code})
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError("INVALID_POLICY", str(exc).strip("'\""), where) from None
        codes.add(code)
        out.append(rule.to_dict())
    return out


def apply_changes(current: Policy, changes: Mapping[str, Any]) -> Policy:
    """``current`` with ``changes`` (snake_case keys) applied, validated."""
    d = current.to_dict()
    for key, value in changes.items():
        field = FIELDS.get(key)
        if field is None:
            raise UserError("INVALID_POLICY", f"unknown policy field {key!r}", key)
        if key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                raise UserError("INVALID_POLICY", "name must be 1-100 characters", field)
            d["name"] = value.strip()
        elif key == "mode":
            if value not in MODES:
                raise UserError("INVALID_POLICY", f"mode must be one of {', '.join(MODES)}", field)
            d["mode"] = value
        elif key == "weights":
            d["weights"] = {**d["weights"], **_mapping(value, field, FACTORS, 0, 1000)}
        elif key == "kind_bonus":
            kinds = tuple(k.value for k in LocationKind)
            d["kind_bonus"] = {**d["kind_bonus"], **_mapping(value, field, kinds, 0, 1)}
        elif key == "rules":
            d["rules"] = _rules(value)
        elif key == "max_shipments":
            if value is not None:
                value = int(_number(value, field, 1, MAX_SHIPMENTS))
            d["max_shipments"] = value
        elif key == "store_radius_km":
            d["store_radius_km"] = _number(value, field, 0.1, 500)
        elif key == "shipment_penalty":
            d["shipment_penalty"] = _number(value, field, 0, 1000)
        elif key == "time_budget_ms":
            d["time_budget_ms"] = _number(value, field, *TIME_BUDGET_MS)
        elif key in ROUTING_OPTIONS:  # checked here; saved by update_policy (not an engine field)
            if isinstance(value, float) and not value.is_integer():
                raise UserError("INVALID_POLICY", f"{field} must be whole minutes", field)
            _number(value, field, 0, MAX_OPTION_MINUTES)
        elif key == CARRIER_WEIGHTS:  # checked here; saved by update_policy (not an engine field)
            carriers.clean_weights(value, field)
        elif key == IN_STOCK_PART:  # checked here; saved by update_policy (not an engine field)
            if not isinstance(value, bool):
                raise UserError("INVALID_POLICY", f"{field} must be true or false", field)
        else:  # allow_line_split, fewest_shipments_first
            if not isinstance(value, bool):
                raise UserError("INVALID_POLICY", f"{field} must be true or false", field)
            d[key] = value
    try:
        return Policy.from_dict(d)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError("INVALID_POLICY", str(exc), None) from None


async def update_policy(session: AsyncSession, changes: Mapping[str, Any], *, actor: str) -> RoutingPolicy:
    """Validate and save; decisions taken from now on use it (each decision keeps its own copy)."""
    row = await active_row(session, lock=True)
    policy = apply_changes(policy_from_row(row), changes)
    weights = carrier_weights(row)
    if CARRIER_WEIGHTS in changes:
        weights.update(carriers.clean_weights(changes[CARRIER_WEIGHTS], FIELDS[CARRIER_WEIGHTS]))
    options = routing_options(row) | {k: int(v) for k, v in changes.items() if k in ROUTING_OPTIONS}
    for key, value in _values(policy).items():
        setattr(row, key, value)
    row.options = {**row.options, CARRIER_WEIGHTS: weights}
    row.options = {**row.options, **options}
    if IN_STOCK_PART in changes:
        row.options = {**row.options, IN_STOCK_PART: bool(changes[IN_STOCK_PART])}
    row.updated_by = actor[:200]
    row.updated_at = func.now()
    await session.flush()
    await session.refresh(row)
    return row


@dataclass
class Simulation:
    policy: Policy
    orders: list[dict[str, Any]]  # engine.compare per order, plus order_row_id
    totals: dict[str, Any]


async def simulate_orders(
    session: AsyncSession, policy: Policy, *, order_ids: list[int] | None = None, last: int = 50
) -> Simulation:
    """Re-run the latest stored decision of each order (``order_ids``, or the ``last`` orders routed)
    under ``policy``, and compare with what was decided. Nothing is saved."""
    if not 1 <= last <= MAX_SIMULATED:
        raise UserError("INVALID_LIMIT", f"last must be between 1 and {MAX_SIMULATED}", "last")
    latest = (
        select(func.max(RoutingDecision.id))
        .where(RoutingDecision.status.in_(ENGINE_STATUSES))
        .group_by(RoutingDecision.order_id)
    )
    if order_ids is not None:
        if len(order_ids) > MAX_SIMULATED:
            raise UserError("INVALID_LIMIT", f"at most {MAX_SIMULATED} orders", "orderIds")
        latest = latest.where(RoutingDecision.order_id.in_(order_ids))
    else:
        latest = latest.order_by(func.max(RoutingDecision.id).desc()).limit(last)
    rows = (
        await session.execute(
            select(RoutingDecision, Order.number)
            .join(Order, Order.id == RoutingDecision.order_id)
            .where(RoutingDecision.id.in_(latest))
            .order_by(RoutingDecision.id.desc())
        )
    ).all()
    results = []
    totals: dict[str, Any] = dict.fromkeys(
        ("orders", "changed", "shipments_before", "shipments_after", "unfilled_before", "unfilled_after"), 0
    )
    totals.update(distance_km_before=0.0, distance_km_after=0.0, cost_before=0.0, cost_after=0.0)
    for row, number in rows:
        before = Decision.from_dict(row.decision)
        after = simulate(row.inputs, policy)
        c = compare(before, after)
        c.update(order_row_id=row.order_id, order_number=number, decision_id=row.id)
        results.append(c)
        totals["orders"] += 1
        totals["changed"] += int(c["changed"])
        for key in ("shipments", "distance_km", "cost"):
            totals[f"{key}_before"] += c[f"{key}_before"]
            totals[f"{key}_after"] += c[f"{key}_after"]
        totals["unfilled_before"] += len(before.unfilled)
        totals["unfilled_after"] += len(after.unfilled)
    for key in ("distance_km_before", "distance_km_after"):
        totals[key] = round(totals[key], 3)
    for key in ("cost_before", "cost_after"):
        totals[key] = round(totals[key], 2)
    return Simulation(policy, results, totals)
