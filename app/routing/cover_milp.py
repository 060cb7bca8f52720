"""The minimum-cost cover of ``cover.min_cover`` as a mixed-integer program, solved by HiGHS.

The exact search is fast on almost every order but exponential on some (line splitting on, sparse
stock, hundreds of locations): there a MILP solver, with its LP bounds, cuts and presolve, finishes
what hand-written search cannot. Same inputs, same problem, same objective; pure (no I/O: HiGHS is a
library that runs in this process).

Model, over the locations ``c`` (numbered by ascending key, as in ``cover``):

- ``y_c`` binary: location ``c`` ships (is in the set);
- every required line no ``Packing`` checks: ``sum(y_c for c shipping it whole) >= 1``;
- per material of the ``Packing``: a whole line ``j`` takes ``x_jc`` binary (``sum_c x_jc = 1``,
  ``x_jc <= y_c``); a split line takes ``z_jc`` units, continuous in ``[0, min(q_j, cap_c)]``
  (``sum_c z_jc = q_j``, ``z_jc <= min(q_j, cap_c) * y_c``); per location, the units taken of the
  material stay within its stock: ``sum_j q_j x_jc + sum_j z_jc <= cap_c``. Split quantities may be
  continuous because, once ``y`` and ``x`` are integral, what is left is a flow problem with integral
  capacities, which has an integral solution whenever it has one at all; the units themselves are then
  assigned by ``Packing.assign`` (exact, integral), as for the search.
- at most ``k_max`` locations.

Objective, lexicographic like the packed keys: fewest locations first (``fewest_first``), then the key's
bit fields from the most significant down (score, metres, priority), each solved to optimality with
the earlier ones held at their optimum. Every stage has integer coefficients on binaries, so its
optimum is an integer and HiGHS is asked for an absolute gap below 1: a stage it reports optimal is
exactly optimal. A stage cut by the time limit keeps HiGHS's best solution, marked not proven.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.routing.cover import Cover, Packing, bits

_INF = float("inf")
# HiGHS looks at its clock between steps and can overrun its time limit by a few ms (more on a busy
# machine): it is given this share of the time left, so the decision as a whole stays in its budget.
_HIGHS_SHARE = 0.7


def milp_cover(
    keys: Sequence[int],
    masks: Sequence[int],
    required: int,
    packing: Packing | None,
    *,
    shifts: Sequence[int],
    fewest_first: bool,
    k_max: int,
    time_limit: float,
    start: tuple[int, ...] | None = None,
) -> Cover:
    """The cheapest set as ``cover.min_cover`` defines it, by HiGHS within ``time_limit`` seconds.

    ``shifts``: the start bit of each field of the keys, most significant first (e.g. ``(80, 40, 0)``).
    ``start``: a feasible set to begin from (HiGHS only improves on it). ``proven`` is True when every
    stage finished optimal, or when HiGHS proved that no set of at most ``k_max`` locations exists.
    """
    import highspy  # imported on first use: ~0.1 s, and most decisions never need it

    deadline = time.perf_counter() + time_limit
    n = len(keys)
    # the bare solver: highspy.Highs also routes every solver callback through Python, which is slow
    h = highspy._core._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.5)  # integer objectives: a gap below 1 is a proof
    # It looks for a first solution, but gets one (``start``); and it does not watch the clock: it ran
    # up to 20 ms past a 10 ms limit on the bench's hard shape.
    h.setOptionValue("mip_heuristic_run_feasibility_jump", False)

    cols_lo: list[float] = [0.0] * n
    cols_hi: list[float] = [1.0] * n
    integer: list[int] = list(range(n))
    rows: list[tuple[float, float, list[int], list[float]]] = []  # (lower, upper, columns, values)

    def new_col(hi: float, is_int: bool) -> int:
        cols_lo.append(0.0)
        cols_hi.append(hi)
        if is_int:
            integer.append(len(cols_hi) - 1)
        return len(cols_hi) - 1

    packed_lines = 0
    split_cols: dict[tuple[int, int], int] = {}  # (line, location) -> column, for the start solution
    whole_cols: dict[tuple[int, int], int] = {}
    for m in packing.materials if packing else ():
        per_loc: dict[int, tuple[list[int], list[float]]] = {}
        for line, q, elig in m.whole:
            packed_lines |= 1 << line
            cs = [c for c in bits(elig) if c < n and m.cap[c] >= q]
            xs = []
            for c in cs:
                x = new_col(1.0, True)
                whole_cols[line, c] = x
                xs.append(x)
                rows.append((-_INF, 0.0, [x, c], [1.0, -1.0]))
                per_loc.setdefault(c, ([], []))[0].append(x)
                per_loc[c][1].append(float(q))
            rows.append((1.0, 1.0, xs, [1.0] * len(xs)))
        for line, q, elig in m.split:
            packed_lines |= 1 << line
            zs = []
            for c in bits(elig):
                if c >= n or m.cap[c] <= 0:
                    continue
                u = float(min(q, m.cap[c]))
                z = new_col(u, False)
                split_cols[line, c] = z
                zs.append(z)
                rows.append((-_INF, 0.0, [z, c], [1.0, -u]))
                per_loc.setdefault(c, ([], []))[0].append(z)
                per_loc[c][1].append(1.0)
            rows.append((float(q), float(q), zs, [1.0] * len(zs)))
        demand = 0
        for _, q, _ in (*m.whole, *m.split):
            demand += q
        for c, (cs, vs) in per_loc.items():
            if len(cs) > 1:  # within its stock, and only if it ships (tighter LP than "<= cap" alone)
                rows.append((-_INF, 0.0, [*cs, c], [*vs, -float(m.cap[c])]))
        # the chosen locations hold the whole demand: a cut the LP relaxation would not see
        holders = sorted(per_loc)
        rows.append((float(demand), _INF, holders, [float(min(m.cap[c], demand)) for c in holders]))
    for j in bits(required & ~packed_lines):
        cs = [c for c in range(n) if masks[c] >> j & 1]
        rows.append((1.0, _INF, cs, [1.0] * len(cs)))
    if k_max < n:
        rows.append((-_INF, float(k_max), list(range(n)), [1.0] * n))

    ncols = len(cols_hi)
    h.addCols(ncols, [0.0] * ncols, cols_lo, cols_hi, 0, [], [], [])
    h.changeColsIntegrality(len(integer), integer, [1] * len(integer))  # 1 = integer
    starts, index, value = [], [], []
    for _, _, cs, vs in rows:
        starts.append(len(index))
        index.extend(cs)
        value.extend(vs)
    h.addRows(len(rows), [r[0] for r in rows], [r[1] for r in rows], len(index), starts, index, value)

    fields = []
    top = None
    for shift in shifts:
        width_mask = -1 if top is None else (1 << (top - shift)) - 1
        coeffs = [(k >> shift) & width_mask for k in keys]
        top = shift
        if any(coeffs):
            fields.append(coeffs)

    def as_solution(chosen: Sequence[int]) -> list[float]:
        vals = [0.0] * ncols
        for c in chosen:
            vals[c] = 1.0
        if packing:
            for line, parts in packing.assign(tuple(chosen)).items():
                for c, q in parts:
                    if (line, c) in whole_cols:
                        vals[whole_cols[line, c]] = 1.0
                    else:
                        vals[split_cols[line, c]] = float(q)
        return vals

    best: tuple[int, ...] | None = start
    values: list[float] | None = None  # best, as a solution of the model
    ys = list(range(n))
    # fewest-first: the count comes first, and once known it bounds the sums of the other fields
    pending: list[list[int]] | None = fields if fewest_first else None
    stages = [[1] * n] if fewest_first else _merged(fields, k_max)
    while stages:
        coeffs = stages.pop(0)
        left = deadline - time.perf_counter()
        if left <= 0:
            return Cover(best, False)
        h.setOptionValue("time_limit", left * _HIGHS_SHARE)
        h.changeColsCost(n, ys, [float(v) for v in coeffs])
        if best is not None:
            if values is None:
                values = as_solution(best)
            sol = highspy.HighsSolution()
            sol.col_value = values
            sol.value_valid = True
            h.setSolution(sol)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            return Cover(None, True)
        info = h.getInfo()
        if info.primal_solution_status != 2:  # no feasible solution within the time
            return Cover(best, False)
        y = list(h.getSolution().col_value)
        found = tuple(c for c in range(n) if y[c] > 0.5)
        if _valid(found, masks, required, packing):
            best, values = found, y  # the next stage starts from this solution, as HiGHS found it
        if status != highspy.HighsModelStatus.kOptimal:
            return Cover(best, False)
        if best != found:  # optimal but not exactly feasible (numerics): stop with the best we trust
            return Cover(best, False)
        optimum = sum(coeffs[c] for c in found)
        h.addRow(-_INF, optimum + 0.5, n, ys, [float(v) for v in coeffs])
        if pending is not None:
            stages, pending = _merged(pending, len(found)), None
    return Cover(best, True)


_MERGE_MAX = 1 << 43  # objective values stay far inside a double's exact integers, and HiGHS's tolerances


def _merged(fields: list[list[int]], k: int) -> list[list[int]]:
    """The stages for the key's fields when at most ``k`` locations are chosen: a field is folded into
    the one above it (``above * P + below``, P past the largest possible sum of ``below``) when the
    result stays small, so one HiGHS run does the work of two (a priority stage after a distance stage
    costs as much as the distance stage, for ties that almost never happen)."""
    out = [list(f) for f in fields]
    while len(out) >= 2:
        above, below = out[-2], out[-1]
        p = k * max(below) + 1
        if k * max(above) * p >= _MERGE_MAX:
            break
        out[-2:] = [[a * p + b for a, b in zip(above, below, strict=True)]]
    return out


def _valid(chosen: tuple[int, ...], masks: Sequence[int], required: int, packing: Packing | None) -> bool:
    covered = 0
    for c in chosen:
        covered |= masks[c]
    return covered & required == required and (packing is None or packing.feasible(chosen) == 0)
