"""Exact minimum-cost cover of order lines by locations: the search behind ``engine.decide``.

Pure integers in, integers out. Locations are numbered ``0..n-1`` **in ascending order of their cost**
(``keys``, non-negative integers; the engine packs distance, priority or a weighted score into one
integer so that comparing sums of keys compares the objective lexicographically). Lines are bits of a
mask; ``masks[c]`` holds the lines location ``c`` can ship whole, and the search derives ``cov[l]``, the
locations (a bitmask) that can ship line ``l`` whole. Lines that share a material with another line,
or that may be split across locations, are checked by a ``Packing`` (``feasible(chosen)``).

Problem: choose a set S of locations, minimising ``(|S|, sum of keys)`` (fewest-first) or ``sum of
keys`` (keys then include a per-shipment penalty), such that S can ship every line.

Why the search is exact (not greedy):

1. *Iterative deepening on k = |S|.* For k = 1, 2, ... the depth-limited search below visits every set
   of size k that could be feasible, unless a bound proves it cannot beat the best set found. The first
   k that yields a set is the minimum number of shipments, because every smaller k was searched
   completely and found nothing.
2. *Branching is complete.* At a node, take any line not yet covered by the chosen locations: every
   feasible extension of the node contains a location that ships that line whole, so branching on
   those locations loses nothing. (If all whole lines are covered but a ``Packing`` constraint fails,
   every feasible extension contains a location holding that material, and we branch on those.) We
   take the line with the fewest remaining candidates (most constrained first: smallest tree).
3. *Each set is visited once.* After exploring branch ``c_i``, ``c_i`` is forbidden in the sibling
   branches ``c_{i+1}, ...``: a set containing ``c_i`` was already enumerated under ``c_i``. So the
   branches partition the sets, and forbidding prunes nothing that has not been explored.
4. *Bounds only discard sets that cannot win.* Candidates are tried in key order, so once
   ``cost so far + key(c_i) + (remaining picks - 1) * min key`` reaches the best cost, this and every
   later sibling is at least as costly: stop (ties keep the first set found, which is deterministic).
   A node with more uncovered lines than ``remaining picks * (most lines any location covers)`` cannot
   be completed. At the last pick, the locations covering every uncovered line are the intersection of
   their ``cov`` masks, and the lowest bit is the cheapest: O(lines) instead of a loop.
5. *Dominance.* Without a ``Packing``, a location whose line mask is a subset of the mask of a location
   with a smaller-or-equal key can be dropped: in any cover using it, swap it for the dominating one
   (or drop it when both are present); the cost does not rise and the cover stays a cover.
   Dominance is not applied with a ``Packing`` (two weak locations may be needed for their capacity).

Lines whose material also appears on another line are not independent (one location's stock must
cover both if it ships both), so their feasibility is checked exactly by ``Packing``: a backtracking
assignment of the whole lines of each such material, then a max-flow of split lines over the remaining
capacity. Materials do not interact, so each is checked on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import NamedTuple

INF = float("inf")
_CLOCK_EVERY = 64  # search nodes between two looks at the clock


class Cover(NamedTuple):
    """The cheapest set found (location indices, ascending; None if none was found) and whether the
    search finished, i.e. proved it optimal (or proved that no set exists)."""

    chosen: tuple[int, ...] | None
    proven: bool


class _OutOfTime(Exception):
    pass


def bits(mask: int) -> list[int]:
    """Indices of the set bits, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def min_cover(
    keys: Sequence[int],
    masks: Sequence[int],
    required: int,
    *,
    k_max: int,
    fewest_first: bool = True,
    feasible: Callable[[tuple[int, ...]], int] | None = None,
    deadline: float | None = None,
) -> Cover:
    """The cheapest feasible set of location indices (ascending), or None if none has ≤ ``k_max``.

    ``required``: the lines that must be shipped whole. ``feasible(chosen)`` returns 0 when the extra
    constraints hold, else a bitmask of the locations that could help (non-zero even if none can).
    ``deadline`` (``time.perf_counter()`` value): stop there and return the best set found so far,
    with ``proven=False`` (with ``fewest_first``, a set found at the last depth still has the fewest
    locations: every smaller depth was searched to the end).
    """
    n = len(keys)
    if n == 0:
        return Cover(() if required == 0 and (feasible is None or feasible(()) == 0) else None, True)
    best_cost: float = INF
    best_set: tuple[int, ...] | None = None
    full = _undominated(keys, masks, required) if feasible is None else (1 << n) - 1
    masks = list(masks)
    cov = [0] * required.bit_length()
    maxpop = 1
    for c in bits(full):
        m = masks[c] & required
        maxpop = max(maxpop, m.bit_count())
        bit = 1 << c
        while m:
            low = m & -m
            cov[low.bit_length() - 1] |= bit
            m ^= low

    nodes = 0
    clock = time.perf_counter

    def dfs(r: int, unc: int, allowed: int, cost: int, chosen: tuple[int, ...], exact: bool) -> None:
        nonlocal best_cost, best_set, nodes
        if deadline is not None:
            nodes += 1
            # a node that checks the packing can take a millisecond: look at the clock before each
            if (unc == 0 or nodes % _CLOCK_EVERY == 0) and clock() > deadline:
                raise _OutOfTime
        if unc == 0:
            need = feasible(chosen) if feasible is not None else 0
            if not need:
                if cost < best_cost:
                    best_cost, best_set = cost, chosen
                return
            if r == 0:
                return
            cands = need & allowed
        elif r == 0:
            return
        elif r == 1:
            cands = allowed
            m = unc
            while m:
                low = m & -m
                cands &= cov[low.bit_length() - 1]
                if not cands:
                    return
                m ^= low
        else:
            if unc.bit_count() > r * maxpop:
                return
            cands = -1
            fewest = n + 1
            m = unc
            while m:
                low = m & -m
                here = cov[low.bit_length() - 1] & allowed
                cnt = here.bit_count()
                if cnt < fewest:
                    fewest, cands = cnt, here
                    if cnt <= 1:
                        break
                m ^= low
        rest = allowed
        while cands:
            low = cands & -cands
            c = low.bit_length() - 1
            cands ^= low
            rest &= ~low
            ncost = cost + keys[c]
            if ncost >= best_cost:
                break
            if exact and r > 1:
                if not rest:
                    break
                floor = keys[(rest & -rest).bit_length() - 1]
                if ncost + (r - 1) * floor >= best_cost:
                    break
            dfs(r - 1, unc & ~masks[c], rest, ncost, (*chosen, c), exact)

    k_lo = max(1, -(-required.bit_count() // maxpop))
    try:
        for k in range(k_lo, min(k_max, n) + 1):
            if fewest_first:
                dfs(k, required, full, 0, (), True)
                if best_set is not None:
                    break
            else:
                if best_set is not None and k * keys[0] >= best_cost:
                    break
                dfs(k, required, full, 0, (), False)
    except _OutOfTime:
        return Cover(None if best_set is None else tuple(sorted(best_set)), False)
    return Cover(None if best_set is None else tuple(sorted(best_set)), True)


def _undominated(keys: Sequence[int], masks: Sequence[int], required: int) -> int:
    """Bitmask of the locations not dominated (mask ⊆ another's mask, with key ≥ its key)."""
    kept: list[int] = []
    seen: set[int] = set()
    out = 0
    for c in range(len(keys)):  # ascending key: a later location never dominates an earlier one
        m = masks[c] & required
        if not m or m in seen:
            continue
        for k in kept:
            if not m & ~k:
                break
        else:
            seen.add(m)
            kept.append(m)
            out |= 1 << c
    return out


@dataclass(slots=True)
class MaterialDemand:
    """The lines of one material that must be checked together, and every location's capacity of it.

    ``whole``/``split``: ``(line, quantity, eligible location mask)``; ``cap[c]``: units at location c.
    """

    whole: list[tuple[int, int, int]] = field(default_factory=list)
    split: list[tuple[int, int, int]] = field(default_factory=list)
    cap: list[int] = field(default_factory=list)

    @property
    def helpers(self) -> int:
        """Locations that can take at least one unit of one of these lines."""
        elig = 0
        for _, _, e in (*self.whole, *self.split):
            elig |= e
        return sum(1 << c for c in bits(elig) if self.cap[c] > 0)


Assignment = dict[int, list[tuple[int, int]]]  # line -> [(location, quantity)]


class Packing:
    """Exact feasibility (and an assignment) of shared-material and split lines over a set of locations."""

    def __init__(self, materials: list[MaterialDemand]):
        self.materials = materials
        self.helpers = [m.helpers for m in materials]
        self.totals = [sum(q for _, q, _ in (*m.whole, *m.split)) for m in materials]

    def may_ship_alone(self, c: int) -> bool:
        """A quick necessary condition for ``feasible((c,)) == 0``: location ``c`` holds, of every
        material, at least all its lines ask for (saves the exact check for most locations)."""
        return all(m.cap[c] >= total for m, total in zip(self.materials, self.totals, strict=True))

    def feasible(self, chosen: tuple[int, ...], only: int | None = None) -> int:
        """0 when every material fits; else the fewest locations one of which any fix must add.

        ``only``: check just the materials that location holds (the others are known to fit)."""
        chosen_bits = sum(1 << c for c in chosen)
        need = 0
        for m, helpers in zip(self.materials, self.helpers, strict=True):
            if only is not None and not helpers >> only & 1:
                continue
            if assign_material(m, chosen) is None:
                more = helpers & ~chosen_bits
                if not more:  # nothing left to add: a bit past every location (non-zero = "does not fit")
                    return 1 << len(m.cap)
                if not need or more.bit_count() < need.bit_count():
                    need = more
        return need

    def assign(self, chosen: tuple[int, ...]) -> Assignment:
        out: Assignment = {}
        for m in self.materials:
            got = assign_material(m, chosen)
            if got is None:
                raise ValueError("infeasible packing")
            out.update(got)
        return out


def assign_material(m: MaterialDemand, chosen: Sequence[int]) -> Assignment | None:
    """Whole lines by backtracking (biggest first), then split lines by max-flow on what is left."""
    rem = {c: m.cap[c] for c in chosen}
    whole = sorted(m.whole, key=lambda w: -w[1])
    placed: list[int] = [0] * len(whole)

    def place(i: int) -> Assignment | None:
        if i == len(whole):
            flows = _split_flow(m.split, [c for c in chosen], rem)
            if flows is None:
                return None
            out: Assignment = {line: [(placed[j], q)] for j, (line, q, _) in enumerate(whole)}
            out.update(flows)
            return out
        _, q, elig = whole[i]
        for c in chosen:
            if elig >> c & 1 and rem[c] >= q:
                rem[c] -= q
                placed[i] = c
                got = place(i + 1)
                rem[c] += q
                if got is not None:
                    return got
        return None

    return place(0)


def _split_flow(
    split: list[tuple[int, int, int]], chosen: list[int], rem: dict[int, int]
) -> Assignment | None:
    """Max-flow of split lines (demands) into locations (capacities): greedy, then augmenting paths."""
    if not split:
        return {}
    rem = dict(rem)
    alloc: list[dict[int, int]] = [{} for _ in split]
    left = [q for _, q, _ in split]
    elig = [[c for c in chosen if e >> c & 1] for _, _, e in split]
    for j in range(len(split)):
        for c in elig[j]:
            take = min(left[j], rem[c])
            if take > 0:
                alloc[j][c] = alloc[j].get(c, 0) + take
                rem[c] -= take
                left[j] -= take
    for j in range(len(split)):
        while left[j] > 0:
            path = _augmenting_path(j, elig, alloc, rem)
            if path is None:
                return None
            # path: [(line, location), ...]: line_0 takes from loc_0, ... the last location has spare.
            amount = min(left[j], rem[path[-1][1]])
            for i in range(1, len(path)):
                amount = min(amount, alloc[path[i][0]].get(path[i - 1][1], 0))
            for i, (line, loc) in enumerate(path):
                alloc[line][loc] = alloc[line].get(loc, 0) + amount
                if i:
                    prev = path[i - 1][1]
                    alloc[line][prev] -= amount
                    if not alloc[line][prev]:
                        del alloc[line][prev]
            rem[path[-1][1]] -= amount
            left[j] -= amount
    return {split[j][0]: sorted(alloc[j].items()) for j in range(len(split))}


def _augmenting_path(
    start: int, elig: list[list[int]], alloc: list[dict[int, int]], rem: dict[int, int]
) -> list[tuple[int, int]] | None:
    """BFS: line → eligible location; a full location hands over to a line already using it."""
    parent: dict[int, tuple[int, int | None]] = {}  # location -> (line reaching it, previous location)
    frontier = [(start, None)]
    while frontier:
        nxt: list[tuple[int, int | None]] = []
        for line, came_from in frontier:
            for c in elig[line]:
                if c in parent:
                    continue
                parent[c] = (line, came_from)
                if rem[c] > 0:
                    path = []
                    loc: int | None = c
                    while loc is not None:
                        ln, prev = parent[loc]
                        path.append((ln, loc))
                        loc = prev
                    return path[::-1]
                for other, used in enumerate(alloc):
                    if other != line and used.get(c, 0) > 0:
                        nxt.append((other, c))
        frontier = nxt
    return None


FILL_EXACT_MAX_LINES = 16  # beyond this many lines of one material, partial fills are greedy


def fill_most(lines: Sequence[tuple[int, int]], fits: Callable[[list[int]], bool]) -> list[int]:
    """Lines to fill when not all of a material's ``(line, quantity)`` fit: the most lines, then the
    most units, then the earliest lines. ``fits(lines)``: the locations can ship those together.

    Exact for up to ``FILL_EXACT_MAX_LINES`` lines (subsets by size, largest first); beyond that, the
    smallest lines first while they still fit (which is the most lines when every line may use every
    location, and never drops a line that could still be added).
    """
    if len(lines) > FILL_EXACT_MAX_LINES:
        kept: list[int] = []
        for line, _ in sorted(lines, key=lambda x: x[1]):
            if fits([*kept, line]):
                kept.append(line)
        return sorted(kept)
    for size in range(len(lines) - 1, 0, -1):
        subsets = sorted(combinations(lines, size), key=lambda sub: -sum(q for _, q in sub))
        for sub in subsets:  # stable sort: among equal units, the earliest lines come first
            chosen = [line for line, _ in sub]
            if fits(chosen):
                return chosen
    return []
