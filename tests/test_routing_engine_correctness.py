"""Engine correctness (issue 11): stock shared across line groups, most lines filled, splitting that pays."""

from __future__ import annotations

import itertools
import random

from app.routing import Candidate, LineInput, OrderInput, Policy, decide

SHANGHAI = (31.2304, 121.4737)
NO_RULES = Policy(rules=())
SPLIT = Policy(rules=(), allow_line_split=True)


def _order(*lines: LineInput) -> OrderInput:
    return OrderInput("SO-1", lines, *SHANGHAI)


def _loc(lid, stock: dict, lat: float = 31.24, lon: float = 121.48) -> Candidate:
    return Candidate(lid, f"loc{lid}", lat=lat, lon=lon, stock=stock)


def _taken(d) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for s in d.shipments:
        for x in s.lines:
            out[s.location_id, x.material_id] = out.get((s.location_id, x.material_id), 0) + x.quantity
    return out


def _assert_within_stock(d, o: OrderInput, cands) -> None:
    """Across every shipment of the decision, no location ships more of a material than it holds."""
    stock = {c.location_id: c.stock for c in cands}
    for (lid, m), q in _taken(d).items():
        assert q <= stock[lid].get(m, 0), (lid, m, q, d.explain())
    shipped: dict = {}
    for s in d.shipments:
        for x in s.lines:
            shipped[x.line_id] = shipped.get(x.line_id, 0) + x.quantity
    unfilled = {u.line_id for u in d.unfilled}
    for x in o.lines:
        if not x.service:
            assert shipped.get(x.id, 0) == (0 if x.id in unfilled else x.quantity), x.id


# ------------------------------------------------------------------- presale groups share the stock


def test_presale_and_in_stock_lines_cannot_both_take_the_last_unit():
    o = _order(LineInput("L1", "M5", 1), LineInput("L2", "M5", 1, presale=True))
    cands = [_loc(1, {"M5": 1})]
    d = decide(o, cands)  # the default rules keep presale lines apart
    assert d.status == "partial"
    assert [(s.group, [x.line_id for x in s.lines]) for s in d.shipments] == [("in_stock", ["L1"])]
    assert [u.line_id for u in d.unfilled] == ["L2"]
    assert "in-stock lines, planned first, took the M5" in d.unfilled[0].reason
    _assert_within_stock(d, o, cands)


def test_presale_group_uses_what_the_in_stock_group_left():
    o = _order(LineInput("L1", "M5", 2), LineInput("L2", "M5", 1, presale=True))
    cands = [_loc(1, {"M5": 2}), _loc(2, {"M5": 1}, lat=39.9, lon=116.4)]
    d = decide(o, cands)
    assert d.status == "routed"
    assert [(s.group, s.location_id) for s in d.shipments] == [("in_stock", 1), ("presale", 2)]


def test_random_instances_never_ship_more_than_a_location_holds():
    rng = random.Random(11)
    policies = [None, Policy(allow_line_split=True), Policy(mode="weighted", allow_line_split=True)]
    for seed in range(300):
        rng.seed(seed)
        mats = [f"M{k}" for k in range(rng.randint(1, 3))]
        lines = tuple(
            LineInput(f"L{j}", rng.choice(mats), rng.randint(1, 3), presale=rng.random() < 0.4)
            for j in range(rng.randint(1, 5))
        )
        cands = [
            _loc(
                i,
                {m: rng.randint(0, 3) for m in mats},
                lat=31 + rng.uniform(-2, 2),
                lon=120 + rng.uniform(-2, 2),
            )
            for i in range(rng.randint(1, 4))
        ]
        o = _order(*lines)
        for policy in policies:
            _assert_within_stock(decide(o, cands, policy), o, cands)


# --------------------------------------------------------------------- partial fills: most lines


def test_partial_fill_keeps_the_most_lines():
    o = _order(*(LineInput(f"L{j}", "A", q) for j, q in enumerate((3, 2, 2, 2))))
    cands = [_loc(1, {"A": 6})]
    d = decide(o, cands, NO_RULES)
    assert d.status == "partial"
    assert sorted(x.line_id for s in d.shipments for x in s.lines) == ["L1", "L2", "L3"]
    assert [u.line_id for u in d.unfilled] == ["L0"]
    assert "most lines" in d.explain()


def test_partial_fill_ties_go_to_the_most_units():
    o = _order(*(LineInput(f"L{j}", "A", q) for j, q in enumerate((1, 2, 3))))
    d = decide(o, [_loc(1, {"A": 4})], NO_RULES)  # {1,2}, {1,3}: two lines each; {1,3} ships 4 units
    assert sorted(x.line_id for s in d.shipments for x in s.lines) == ["L0", "L2"]


# ------------------------------------------------------------- splitting wherever it pays off


def test_split_lines_a_single_location_could_hold_when_that_saves_a_shipment():
    o = _order(LineInput("L1", "A", 3), LineInput("L2", "B", 3))
    cands = [
        _loc(1, {"A": 1, "B": 1}),
        _loc(2, {"A": 3, "B": 0}),
        _loc(3, {"A": 2, "B": 2}),
    ]
    d = decide(o, cands, SPLIT)
    assert d.status == "routed"
    assert len(d.shipments) == 2
    assert sorted(s.location_id for s in d.shipments) == [1, 3]
    _assert_within_stock(d, o, cands)


def _fits(quantities: list[int], caps: list[int]) -> bool:
    """Whole lines into locations (brute force over every placement)."""
    if not quantities:
        return True
    q, rest = quantities[0], quantities[1:]
    return any(cap >= q and _fits(rest, [*caps[:i], cap - q, *caps[i + 1 :]]) for i, cap in enumerate(caps))


def test_partial_fills_are_the_most_lines_then_units_vs_brute_force():
    rng = random.Random(5)
    for _ in range(200):
        qty = [rng.randint(1, 4) for _ in range(rng.randint(2, 5))]
        caps = [rng.randint(0, 6) for _ in range(rng.randint(1, 3))]
        o = _order(*(LineInput(f"L{j}", "A", q) for j, q in enumerate(qty)))
        d = decide(o, [_loc(i, {"A": c}) for i, c in enumerate(caps)], NO_RULES)
        filled = [int(x.line_id[1:]) for s in d.shipments for x in s.lines]
        best = max(
            (len(sub), sum(qty[j] for j in sub))
            for n in range(len(qty) + 1)
            for sub in itertools.combinations(range(len(qty)), n)
            if _fits([qty[j] for j in sub], caps)
        )
        assert (len(filled), sum(qty[j] for j in filled)) == best, (qty, caps)
