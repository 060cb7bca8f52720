"""How the engine ranks locations: the weighted factors (``Policy.mode == "weighted"``) and the one
integer key per location that packs the objective's criteria into disjoint bit fields, so that comparing
sums of keys compares plans lexicographically (see ``app.routing.engine``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.routing.cover import bits
from app.routing.engine_inputs import Candidate, OrderInput, id_key
from app.routing.policy import FACTORS, Policy

DIST_SHIFT = 40  # metres field; priority below it, score above
SCORE_SHIFT = 80
SCORE_SCALE = 1_000_000
PRIORITY_CAP = (1 << 32) - 1
KEY_SHIFTS = (SCORE_SHIFT, DIST_SHIFT, 0)  # where each field of a key starts, most significant first


def location_keys(
    contributors: Sequence[int],
    cands: Sequence[Candidate],
    dist: Sequence[float],
    scores: Mapping[int, float],
    policy: Policy,
) -> tuple[dict[int, int], list[int]]:
    """Each contributing location's packed key, and the locations sorted by it (ties by location id).

    Not fewest-first: each shipment adds the penalty to the first criterion (score, or km if
    lexicographic), so the penalty goes into every key.
    """
    weighted = policy.mode == "weighted"
    base = min((c.priority for c in cands), default=0)
    penalty = 0.0 if policy.fewest_shipments_first else policy.shipment_penalty
    metres_penalty = 0 if weighted else round(penalty * 1000)
    score_penalty = round(penalty * SCORE_SCALE) if weighted else 0
    keys: dict[int, int] = {}
    for i in contributors:
        metres = round(dist[i] * 1000) + metres_penalty
        key = metres << DIST_SHIFT | min(cands[i].priority - base, PRIORITY_CAP)
        if weighted:
            key |= (round(scores[i] * SCORE_SCALE) + score_penalty) << SCORE_SHIFT
        keys[i] = key
    order_idx = sorted(contributors, key=keys.__getitem__)
    if len(set(keys.values())) < len(keys):  # ties: make the order independent of the input order
        order_idx.sort(key=lambda i: (keys[i], id_key(cands[i].location_id), i))
    return keys, order_idx


def factors(
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
