"""The cheapest cover within a time budget: the exact search first, HiGHS for what it cannot finish.

``cover.min_cover`` answers almost every order in well under a millisecond, and proves its answer; but
it is exponential, and some orders (line splitting on, sparse stock, hundreds of locations) would take
seconds to minutes. One order must never hold a worker that long, so:

1. the search gets a share (``SEARCH_SHARE``) of the time left before ``deadline``; if it finishes, its
   answer is optimal and proven;
2. otherwise its best set so far, or else a quick greedy cover (``greedy_cover``), is handed to the
   MILP (``cover_milp.milp_cover``) as a starting solution, and HiGHS gets the rest of the budget
   (unless less than ``MILP_MIN_S`` is left). HiGHS only ever improves on that start; the answer is
   proven when HiGHS proves it, else it is the best plan found and the caller says so
   (``Decision.proven_optimal``).

``solver`` picks a path for tests and benchmarks: ``auto`` (the above), ``search`` (the search alone,
cut at the deadline), ``milp`` (HiGHS alone). Pure: no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from app.routing.cover import Cover, Packing, bits, min_cover
from app.routing.cover_milp import milp_cover

SOLVERS = ("auto", "search", "milp")
SEARCH_SHARE = 0.3
MILP_MIN_S = 0.005  # less than this left: HiGHS cannot improve on the start, skip it


def best_cover(
    keys: Sequence[int],
    masks: Sequence[int],
    required: int,
    packing: Packing | None,
    *,
    shifts: Sequence[int],
    fewest_first: bool,
    k_max: int,
    deadline: float = math.inf,
    solver: str = "auto",
) -> Cover:
    """``min_cover``'s problem (same arguments), answered by ``deadline`` (a ``perf_counter`` value)."""
    feasible = packing.feasible if packing else None
    found: tuple[int, ...] | None = None
    if solver != "milp":
        now = time.perf_counter()
        until = deadline if solver == "search" else now + SEARCH_SHARE * max(0.0, deadline - now)
        got = min_cover(
            keys,
            masks,
            required,
            k_max=k_max,
            fewest_first=fewest_first,
            feasible=feasible,
            deadline=None if math.isinf(until) else until,
        )
        if got.proven:
            return got
        found = got.chosen
        if solver == "search":
            return Cover(found or greedy_cover(keys, masks, required, packing, k_max), False)
    start = found or greedy_cover(keys, masks, required, packing, k_max)
    left = deadline - time.perf_counter()
    if left < MILP_MIN_S and start is not None:  # no time for HiGHS to do anything useful
        return Cover(start, False)
    left = max(left, MILP_MIN_S)
    got = milp_cover(
        keys,
        masks,
        required,
        packing,
        shifts=shifts,
        fewest_first=fewest_first,
        k_max=k_max,
        time_limit=left,
        start=start,
    )
    if got.chosen is None or start is None:
        return got
    better = _cost(got.chosen, keys, fewest_first) <= _cost(start, keys, fewest_first)
    return got if better else Cover(start, False)


def greedy_cover(
    keys: Sequence[int], masks: Sequence[int], required: int, packing: Packing | None, k_max: int
) -> tuple[int, ...] | None:
    """A feasible set, quickly and without any claim to be cheapest (the classic greedy for set cover,
    extended to units): repeatedly add the location that serves the most of what is still missing
    (each uncovered whole line counts 1, each material's units count as their share of its demand;
    ties to the cheaper location), then drop the costliest locations the others can do without.
    None if it needs more than ``k_max``."""
    n = len(keys)
    materials = packing.materials if packing else []
    left = [sum(q for _, q, _ in (*m.whole, *m.split)) for m in materials]
    total = [max(1, x) for x in left]
    holds: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # location -> [(material, units)]
    for k, m in enumerate(materials):
        for c in bits(m.helpers):
            if c < n:
                holds[c].append((k, m.cap[c]))
    chosen: list[int] = []
    used = 0
    unc = required
    while True:
        if unc or any(left):
            best, pick = 0.0, -1
            for c in range(n):
                if used >> c & 1:
                    continue
                gain = float((masks[c] & unc).bit_count())
                for k, units in holds[c]:
                    if left[k]:
                        gain += min(left[k], units) / total[k]
                if gain > best:
                    best, pick = gain, c
            if pick < 0:
                return None
            c = pick
            for k, units in holds[c]:
                left[k] -= min(left[k], units)
        else:
            need = packing.feasible(tuple(sorted(chosen))) if packing else 0
            if not need:
                break
            need &= ~used
            c = (need & -need).bit_length() - 1
            if not need or c >= n:
                return None
        chosen.append(c)
        used |= 1 << c
        unc &= ~masks[c]
    for c in sorted(chosen, reverse=True):  # costliest first: the keys ascend with the index
        rest = [x for x in chosen if x != c]
        covered = 0
        for x in rest:
            covered |= masks[x]
        if covered & required == required and (packing is None or not packing.feasible(tuple(rest), c)):
            chosen = rest
    return tuple(sorted(chosen)) if len(chosen) <= k_max else None


def _cost(chosen: Sequence[int], keys: Sequence[int], fewest_first: bool) -> tuple[int, int]:
    return (len(chosen) if fewest_first else 0, sum(keys[c] for c in chosen))
