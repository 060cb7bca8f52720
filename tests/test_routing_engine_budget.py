"""The routing engine answers in time (issue 11): a budget per decision, HiGHS for what the exact search
cannot finish, and ``Decision.proven_optimal`` when it could not prove the plan optimal.

The hard shapes are the ones that exploded before (line splitting on, sparse stock, many locations or
many lines: seconds to minutes per decision). The MILP is checked against the exact search on small
instances both finish, and every plan, under any budget, against the stock it ships from.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict

import pytest

from app.routing import Candidate, Decision, LineInput, OrderInput, Policy, decide

BUDGET_MS = 50.0
# On a shared 2-core machine another process can take the CPU for a while; the budget is wall-clock,
# so a decision may end a little after it. Without the budget these shapes took seconds to minutes.
SLACK_MS = 150.0


def sparse(seed: int, n: int, n_lines: int, *, share: float = 0.1, depth: int = 3):
    """``n`` locations each holding ~``share`` of the materials, 1..``depth`` units; lines of 1-6 units,
    one material each: most lines must be split, and no location holds much."""
    rng = random.Random(seed)
    mats = [f"M{m}" for m in range(n_lines)]
    cands = [
        Candidate(
            i,
            f"L{i}",
            lat=30 + rng.uniform(-5, 5),
            lon=115 + rng.uniform(-5, 5),
            priority=rng.choice((10, 50, 100)),
            stock={m: rng.randint(1, depth) for m in mats if rng.random() < share},
        )
        for i in range(n)
    ]
    lines = tuple(LineInput(f"l{j}", mats[j], rng.randint(1, 6)) for j in range(n_lines))
    return OrderInput(seed, lines, 30 + rng.uniform(-5, 5), 115 + rng.uniform(-5, 5)), cands


def assert_within_stock(order: OrderInput, cands, d: Decision) -> None:
    """No location ships more of a material than it holds (summed over every shipment and group), and
    every line ships exactly its quantity, or nothing when it is unfilled."""
    stock = {c.location_id: c.stock for c in cands}
    taken: dict[tuple, int] = defaultdict(int)
    shipped: dict = defaultdict(int)
    for s in d.shipments:
        for x in s.lines:
            taken[s.location_id, x.material_id] += x.quantity
            shipped[x.line_id] += x.quantity
    for (loc, mat), q in taken.items():
        held = stock[loc].get(mat, 0)
        assert q <= held, f"location {loc} ships {q} x {mat}, holds {held}"
    unfilled = {u.line_id for u in d.unfilled}
    for line in order.lines:
        if line.service:
            continue
        assert shipped.get(line.id, 0) == (0 if line.id in unfilled else line.quantity), line.id


@pytest.fixture(scope="module", autouse=True)
def highs_loaded():
    """HiGHS is imported on first use (~0.1 s, once per process): not part of any decision's time."""
    import highspy

    highspy.Highs()


@pytest.mark.parametrize(
    ("n", "n_lines"),
    [(200, 20), (50, 60), (1000, 10)],
    ids=["200 locations x 20 lines", "many lines", "many locations"],
)
def test_worst_shapes_answer_within_the_budget(n, n_lines):
    policy = Policy(allow_line_split=True, time_budget_ms=BUDGET_MS)
    for seed in range(3):
        order, cands = sparse(seed, n, n_lines)
        started = time.perf_counter()
        d = decide(order, cands, policy)
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert elapsed_ms < BUDGET_MS + SLACK_MS, f"seed {seed}: {elapsed_ms:.0f} ms"
        assert d.status in ("routed", "partial") and d.shipments and d.budget_ms == BUDGET_MS
        assert_within_stock(order, cands, d)


def test_the_flag_says_when_the_budget_ran_out_before_a_proof():
    order, cands = sparse(0, 200, 20)
    d = decide(order, cands, Policy(allow_line_split=True, time_budget_ms=BUDGET_MS))
    assert d.proven_optimal is False
    assert "Not proven optimal: the 50 ms time budget ran out" in d.explain()
    again = Decision.from_dict(d.to_dict())
    assert again.proven_optimal is False and again.budget_ms == BUDGET_MS
    assert again.explain() == d.explain()

    # the same engine on an order it can finish: proven, and the explanation claims nothing more
    order, cands = sparse(0, 12, 3, share=0.5)
    d = decide(order, cands, Policy(allow_line_split=True, time_budget_ms=BUDGET_MS))
    assert d.proven_optimal is True and "Not proven optimal" not in d.explain()


def test_a_plan_cut_by_the_budget_is_still_good_and_highs_proves_what_search_cannot():
    """The plan found within 50 ms against the optimum HiGHS proves given all the time it needs, and the
    exact search given the same 3 s: it proves nothing."""
    order, cands = sparse(5, 200, 20)
    policy = Policy(allow_line_split=True)
    quick = decide(order, cands, policy, budget_ms=BUDGET_MS)
    best = decide(order, cands, policy, budget_ms=math.inf, solver="milp")
    search = decide(order, cands, policy, budget_ms=3000, solver="search")
    assert best.proven_optimal and not search.proven_optimal and not quick.proven_optimal
    assert best.shipment_count <= quick.shipment_count <= best.shipment_count + 2
    assert best.shipment_count <= search.shipment_count
    for d in (quick, best, search):
        assert_within_stock(order, cands, d)


def objective(d: Decision, policy: Policy) -> tuple[int, int, int, int]:
    """The engine's objective of a single-group decision, as the packed keys order it: fewest shipments
    (if first), then score (weighted), distance in metres and priority, with the per-shipment penalty
    in the first of score or distance when shipments do not come first."""
    by_id = {c.location_id: c for c in d.candidates}
    base = min(c.priority for c in d.candidates)
    chosen = [by_id[s.location_id] for s in d.shipments]
    k = len(chosen)
    weighted = policy.mode == "weighted"
    pen = 0.0 if policy.fewest_shipments_first else policy.shipment_penalty
    score = sum(round(c.score * 1_000_000) for c in chosen) if weighted else 0
    metres = sum(round(c.distance_km * 1000) for c in chosen)
    if weighted:
        score += k * round(pen * 1_000_000)
    else:
        metres += k * round(pen * 1000)
    return (k if policy.fewest_shipments_first else 0, score, metres, sum(c.priority - base for c in chosen))


def small(seed: int):
    """A small random instance both solvers finish: few locations, materials shared by lines, thin stock."""
    rng = random.Random(1000 + seed)
    mats = [f"M{m}" for m in range(rng.randint(2, 4))]
    # a few sites shared by several locations: equal distances, so priority must break the ties
    sites = [(30 + rng.uniform(-3, 3), 115 + rng.uniform(-3, 3)) for _ in range(4)]
    cands = []
    for i in range(rng.randint(5, 12)):
        lat, lon = rng.choice(sites)
        stock = {m: rng.randint(1, 4) for m in mats if rng.random() < 0.5}
        cands.append(Candidate(i, f"L{i}", lat=lat, lon=lon, priority=rng.choice((10, 50, 100)), stock=stock))
    lines = tuple(LineInput(f"l{j}", rng.choice(mats), rng.randint(1, 4)) for j in range(rng.randint(2, 6)))
    order = OrderInput(seed, lines, 30 + rng.uniform(-3, 3), 115 + rng.uniform(-3, 3))
    policy = Policy(
        mode=rng.choice(("lexicographic", "weighted")),
        allow_line_split=rng.random() < 0.6,
        fewest_shipments_first=rng.random() < 0.7,
        shipment_penalty=rng.choice((0.0, 1.0, 50.0)),
        max_shipments=rng.choice((None, None, 2)),
    )
    return order, cands, policy


def test_the_milp_finds_the_same_optimum_as_the_exact_search():
    solved = 0
    for seed in range(48):
        order, cands, policy = small(seed)
        search = decide(order, cands, policy, budget_ms=math.inf, solver="search")
        milp = decide(order, cands, policy, budget_ms=math.inf, solver="milp")
        assert search.proven_optimal and milp.proven_optimal, seed
        assert milp.status == search.status, seed
        assert [u.line_id for u in milp.unfilled] == [u.line_id for u in search.unfilled], seed
        assert objective(milp, policy) == objective(search, policy), seed
        assert_within_stock(order, cands, milp)
        assert_within_stock(order, cands, search)
        solved += milp.shipment_count > 1
    assert solved >= 15  # most instances need a real choice between several locations, not one


def test_no_plan_ships_more_than_a_location_holds_under_any_budget():
    rng = random.Random(7)
    for seed in range(60):
        order, cands, policy = small(seed)
        presale = tuple(
            LineInput(line.id, line.material_id, line.quantity, presale=rng.random() < 0.4)
            for line in order.lines
        )
        order = OrderInput(order.id, presale, order.lat, order.lon)
        for budget in (math.inf, 1.0):
            assert_within_stock(order, cands, decide(order, cands, policy, budget_ms=budget))
    for seed in range(3):
        order, cands = sparse(seed, 120, 16, share=0.15)
        for solver in ("auto", "search", "milp"):
            d = decide(order, cands, Policy(allow_line_split=True), budget_ms=20.0, solver=solver)
            assert_within_stock(order, cands, d)


def test_the_budget_is_part_of_the_policy():
    assert Policy().time_budget_ms == BUDGET_MS
    p = Policy.from_dict({**Policy().to_dict(), "time_budget_ms": 200})
    assert p.time_budget_ms == 200 and Policy.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="time_budget_ms"):
        Policy(time_budget_ms=0)
    order, cands = sparse(1, 12, 3, share=0.5)
    assert decide(order, cands, p).budget_ms == 200
    assert decide(order, cands, p, budget_ms=math.inf).budget_ms is None
    with pytest.raises(ValueError, match="solver"):
        decide(order, cands, p, solver="guess")


def test_the_solver_does_no_io_either():
    """HiGHS is loaded only when the search cannot finish; once loaded, still nothing that does I/O."""
    import subprocess
    import sys

    code = (
        "import sys; from app.routing import Candidate, LineInput, OrderInput, Policy, decide; "
        "c = [Candidate(i, f'L{i}', lat=30 + i / 10, lon=115, stock={'M': 1}) for i in range(6)]; "
        "o = OrderInput(1, (LineInput('l', 'M', 3),), 30, 115); "
        "d = decide(o, c, Policy(allow_line_split=True), solver='milp'); "
        "assert 'highspy' in sys.modules and d.shipment_count == 3 and d.proven_optimal; "
        "bad = [m for m in ('sqlalchemy', 'asyncpg', 'redis', 'app.db', 'socket') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
