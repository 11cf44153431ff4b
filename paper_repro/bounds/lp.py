"""LP-based tightening of hidden pre-activation bounds on HiGHS, layer by layer (sound).

Each bound is the Neumaier–Shcherbina safe bound (:mod:`paper_repro.bounds.safe`) of one LP over the
triangle relaxation :class:`~paper_repro.bounds.relaxed_lp.RelaxedLP` (re-exported here with
:func:`~paper_repro.bounds.safe.safe_dual_bound`), so no solver tolerance can make it unsound.
"""

from __future__ import annotations

import time

import numpy as np

from paper_repro.bounds.interval import Bounds
from paper_repro.bounds.relaxed_lp import SLACK_COST, LPSolution, RelaxedLP
from paper_repro.bounds.safe import safe_dual_bound

__all__ = ["SLACK_COST", "LPSolution", "RelaxedLP", "lp_tighten", "safe_dual_bound"]


def lp_tighten(
    lp: RelaxedLP,
    radius: float,
    bounds: Bounds,
    deadline: float,
    first_layer: int = 1,
    adversarial: bool = False,
    refresh_every: int = 0,
) -> Bounds:
    """Tighten unstable hidden pre-activation bounds of layers ``≥ first_layer`` by LP (min and
    max).

    Each new bound is a :func:`safe_dual_bound`, so the result is sound on ``R(x, radius)``. Layer 0
    is already exact from :func:`~paper_repro.bounds.interval.linear_range`. Stops at ``deadline``
    (``time.monotonic()``) with the bounds so far.

    With ``adversarial=True`` the output rows ``y_t ≥ y_j`` stay in the LP (slack pinned to 0) and
    every layer is tightened: the bounds then hold for every ``x′ ∈ R(x, radius)`` that reaches
    the LP's target, which is all a minimal-distance search needs (optimisation-based bound
    tightening with the adversarial constraint). If that set is empty (a Farkas ray proves it),
    the first bound is returned crossed (``lo > hi``).

    ``refresh_every`` (> 0): rebuild the LP's relaxation from the bounds tightened so far after
    every that many LPs of a layer (not only between layers), so later LPs of the layer are
    tighter and, with ``adversarial``, an empty set shows sooner.
    """
    out = [(lo.copy(), hi.copy()) for lo, hi in bounds]
    lp.set_output_rows(adversarial)
    try:
        for k in range(0 if adversarial else first_layer, len(lp.z_cols)):
            lp.configure(radius, out, None, slack=not adversarial)
            lo, hi = out[k]
            point = None  # layer k's pre-activations at the last LP optimum
            done = 0
            for sign in (1.0, -1.0):  # every lower bound first: consecutive LPs stay close
                todo = list(np.flatnonzero((lo < 0) & (hi > 0)))
                while todo:
                    if time.monotonic() > deadline:
                        return out
                    if refresh_every and done and done % refresh_every == 0:
                        lp.configure(radius, out, None, slack=not adversarial)
                    i = todo.pop(_nearest(todo, sign, point, lo, hi))
                    done += 1
                    c = np.zeros(lp.ncol)
                    c[lp.z_cols[k][i]] = sign
                    lp.set_cost(c)
                    res = lp.solve(deadline - time.monotonic())
                    if adversarial and not res.optimal and _empty(lp, radius):
                        lo[i], hi[i] = 1.0, -1.0
                        return out
                    point = res.col_value[lp.z_cols[k]] if res.optimal else None
                    if sign > 0:
                        lo[i] = max(lo[i], res.safe_bound)
                    else:
                        hi[i] = min(hi[i], -res.safe_bound)
    finally:
        lp.set_output_rows(True)
        lp.set_cost(lp.objective_delta())
    return out


def _nearest(
    todo: list, sign: float, point: np.ndarray | None, lo: np.ndarray, hi: np.ndarray
) -> int:
    """Position in ``todo`` of the neuron whose value at the last LP optimum ``point`` lies
    nearest (relative to its width) the bound about to be tightened (lower for ``sign > 0``).

    Its LP starts closest to its optimum from the warm-started basis: on the benchmark sample
    this ordering, with every minimisation before every maximisation, cut the simplex iterations
    per tightening LP from 71 to 37 (L∞) and 69 to 44 (L1) at identical results.
    """
    if point is None:
        return 0
    idx = np.asarray(todo)
    gap = point[idx] - lo[idx] if sign > 0 else hi[idx] - point[idx]
    return int(np.argmin(gap / (hi[idx] - lo[idx])))


def _empty(lp: RelaxedLP, radius: float) -> bool:
    """True when HiGHS's Farkas ray rigorously proves the current LP infeasible."""
    ray = lp.dual_ray()
    if ray is None:
        return False
    return any(lp.parametric_root(r, radius, farkas=True) == np.inf for r in (ray, -ray))
