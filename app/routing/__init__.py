"""Routing: the pure sourcing engine (``engine``), its policy and rules (``policy``), its search (``cover``).

The worker-side loading of candidates, storing of decisions and carrier choice live next to these
(``service.py``/``jobs.py``); nothing imported here does I/O.
"""

from app.routing.engine import (
    Candidate,
    CandidateReport,
    Decision,
    GroupResult,
    LineInput,
    OrderInput,
    Shipment,
    ShipmentLine,
    UnfilledLine,
    compare,
    decide,
    haversine_km,
    simulate,
    stored_inputs,
)
from app.routing.policy import DEFAULT_RULES, DEFAULT_WEIGHTS, FACTORS, RULE_KINDS, Policy, Rule

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_WEIGHTS",
    "FACTORS",
    "RULE_KINDS",
    "Candidate",
    "CandidateReport",
    "Decision",
    "GroupResult",
    "LineInput",
    "OrderInput",
    "Policy",
    "Rule",
    "Shipment",
    "ShipmentLine",
    "UnfilledLine",
    "compare",
    "decide",
    "haversine_km",
    "simulate",
    "stored_inputs",
]
