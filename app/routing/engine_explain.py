"""The English account of a routing decision (``Decision.explain()``): the objective actually used, the
winner and why, the rules that excluded or restricted locations, the unfilled lines.

It reads a decision through ``Explained`` (the fields it needs) rather than importing ``Decision``, which
calls it: so the two modules do not import each other. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Explained(Protocol):
    """The parts of a ``Decision`` the explanation reads (see ``app.routing.engine_decision``)."""

    order_id: Any
    policy_name: str
    mode: str
    status: str
    shipments: Sequence[Any]
    unfilled: Sequence[Any]
    service_lines: Sequence[Any]
    candidates: Sequence[Any]
    weights: Mapping[str, float]
    groups: Sequence[Any]
    carrier: str | None
    carrier_rule: str | None
    rule_events: Sequence[tuple[str, str]]
    max_shipments: int | None
    max_shipments_rule: str | None
    fewest_shipments_first: bool
    shipment_penalty: float
    proven_optimal: bool
    budget_ms: float | None

    @property
    def shipment_count(self) -> int: ...

    @property
    def total_distance_km(self) -> float: ...


_GROUP_LABEL = {"in_stock": "In-stock lines", "presale": "Presale lines"}
_LIST_MAX = 12


def _km(x: float) -> str:
    return f"{x:.1f} km"


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _objective(d: Explained) -> str:
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


def _plan_cost(d: Explained) -> str:
    """What a plan is compared on when fewer shipments do not come first."""
    total = "total distance" if d.mode == "lexicographic" else "total weighted score"
    return total + (" with the shipment penalty" if d.shipment_penalty else "")


def explain(d: Explained) -> str:
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
    if not d.proven_optimal:
        budget = f"{d.budget_ms:g} ms " if d.budget_ms is not None else ""
        out.append(
            f"Not proven optimal: the {budget}time budget ran out before the exact search or the MILP"
            " solver (HiGHS) could prove it; this is the best plan found by then."
        )
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
