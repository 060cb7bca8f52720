"""Planning one group of an order's lines (all lines, or in-stock / presale apart): which locations may
ship which line (coverage), which lines may be split, partial fills, and the search for the cheapest
plan over the locations' packed keys (``app.routing.cover``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from app.routing.cover import MaterialDemand, Packing, assign_material, bits, fill_most
from app.routing.cover_budget import best_cover
from app.routing.engine_decision import GroupResult, Shipment, ShipmentLine, UnfilledLine
from app.routing.engine_inputs import Candidate, Id, LineInput, OrderInput
from app.routing.engine_score import KEY_SHIFTS
from app.routing.policy import Policy, RuleOutcome


def solve_group(
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
    deadline: float,
    solver: str,
) -> tuple[list[Shipment], GroupResult, list[int], bool]:
    """Solve one group of lines. Line bits are order line indices; locations are numbered by key.

    The last value says whether the plan is proven optimal (``cover_budget``: the search or HiGHS
    finished before ``deadline``)."""
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
        return [], GroupResult(name, (), 0, 0, len(loc)), [], True

    # locations able to ship the whole group alone, best first
    if packing is None:
        complete = [c for c, m in enumerate(masks) if m & required == required]
    else:
        complete = [
            c
            for c, m in enumerate(masks)
            if m & required == required and packing.may_ship_alone(c) and not packing.feasible((c,))
        ]
    proven = True
    if complete and policy.fewest_shipments_first:
        chosen: tuple[int, ...] | None = (complete[0],)  # k = 1: the first in key order is optimal
    else:
        keyl = [keys[i] for i in loc]
        chosen = None
        how = {"shifts": KEY_SHIFTS, "deadline": deadline, "solver": solver}
        if not policy.fewest_shipments_first:
            cap = group_cap or len(loc)
            chosen, proven = best_cover(keyl, masks, required, packing, fewest_first=False, k_max=cap, **how)
        if chosen is None:
            every = len(loc)
            chosen, found = best_cover(keyl, masks, required, packing, fewest_first=True, k_max=every, **how)
            proven = proven and found
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
    return ships, result, used, proven


def coverage(
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


def split_lines(
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


def stock_left(cands: Sequence[Candidate], ships: Sequence[Shipment]) -> tuple[Candidate, ...]:
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
