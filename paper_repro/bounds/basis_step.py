"""A fixed-radius LP's optimum at a new radius from the basis HiGHS holds, without a solve.

Newton's method on the radius (:func:`paper_repro.exact.engine_parts.node_bound.newton_bound`)
solves the node's fixed-radius LP ``min s`` at ``ρ₀``, takes the root ``ρ₁`` of that solve's dual
bound, and solves again at ``ρ₁`` to see whether the relaxation reaches the target there (``s = 0``:
``ρ₁`` is the relaxation's optimum). Only the displacement and ``δ`` columns' bounds depend on the
radius, and the duals do not, so if the ``ρ₀``-optimal basis stays primal feasible at ``ρ₁`` it is
optimal there and a warm-started solve would return it after zero simplex iterations.
:func:`step_radius` computes that point with one solve with the basis matrix (HiGHS's
``getBasisSolve``) instead of a ``run()`` (measured: most of a node's second solve is HiGHS's fixed
cost per run).

This is a speed path only: the point is a float point and decides nothing about soundness. Lower
bounds still come only from dual vectors through
:meth:`~paper_repro.bounds.radius_dual.RadiusDual.parametric_root`; a wrongly accepted step could
only make the search branch on a node whose relaxation optimum it misjudged.
"""

from __future__ import annotations

import highspy
import numpy as np

from paper_repro.bounds.relaxed_lp import LPSolution, RelaxedLP

FEASIBILITY_TOL = 1e-9
"""Primal feasibility tolerance of the stepped point (the node LPs' HiGHS tolerance)."""


def step_radius(lp: RelaxedLP, sol: LPSolution, old: float, new: float) -> LPSolution | None:
    """The optimum of ``lp`` at radius ``new`` if the basis HiGHS holds (optimal at ``old``,
    where it produced ``sol``) stays primal feasible there, else ``None``.

    ``lp`` is a fixed-radius LP (``min_delta=False``) configured for the node; ``lp.col_lo`` /
    ``lp.col_hi`` may already hold the bounds of either radius. The nonbasic displacement and
    ``δ`` columns move with their bound from ``R(x, old)`` to ``R(x, new)``; the basic variables
    follow through ``B Δv_B = −N Δv_N``. Returns a solution with the new point, ``sol``'s duals
    (unchanged: same basis) and no safe bound (``-inf``).
    """
    if not sol.optimal or sol.col_value.size != lp.ncol:
        return None
    status, basic = lp.highs.getBasicVariables()
    basic = np.asarray(basic)
    if status != highspy.HighsStatus.kOk or basic.size != lp.base.shape[0]:
        return None
    m = lp.delta_col + 1  # the radius-dependent columns
    lo0, hi0 = lp._radius_bounds(np.array([old]))
    lo1, hi1 = lp._radius_bounds(np.array([new]))
    v0 = sol.col_value
    head = v0[:m]
    nonbasic = np.ones(m, bool)
    cols = basic[basic >= 0]
    nonbasic[cols[cols < m]] = False
    at_lo = np.abs(head - lo0[0]) <= np.abs(head - hi0[0])
    dv = np.zeros(lp.ncol)
    dv[:m] = np.where(nonbasic, np.where(at_lo, lo1[0], hi1[0]) - head, 0.0)
    if not dv.any():
        return None
    status, xb = lp.highs.getBasisSolve(-(lp.base @ dv))  # moved columns hold no slopes
    if status != highspy.HighsStatus.kOk:
        return None
    xb = np.asarray(xb)
    dv[cols] = xb[basic >= 0]
    v1 = v0 + dv
    col_lo, col_hi = lp.col_lo.copy(), lp.col_hi.copy()
    col_lo[:m], col_hi[:m] = lo1[0], hi1[0]
    tol = FEASIBILITY_TOL
    if np.any(v1 < col_lo - tol) or np.any(v1 > col_hi + tol) or v1[lp.slack_col] > tol:
        return None
    act = lp.activity(v1)
    if np.any(act < lp.row_lo - tol) or np.any(act > lp.row_hi + tol):
        return None
    return LPSolution(True, float(lp.cost @ v1), -np.inf, v1, sol.row_dual)
