"""The direct big-M MILP baseline on HiGHS (Tjeng et al., 2019; Cheng et al., 2017).

Same region, bounds and first incumbent as the branch-and-bound (IBP ∩ symbolic ∩ LP-tightened
bounds on ``R(x, U)``, ``U`` from the attack), plus one binary ``b`` per unstable ReLU:
``a ≥ z``, ``a ≥ 0``, ``a ≤ z − l (1 − b)``, ``a ≤ u b``. The objective is ``min δ`` (or a pure
feasibility problem at fixed δ for :func:`milp_decider`). HiGHS's MIP solver then does presolve,
cuts, heuristics and branching itself; the attack's witness is passed as a start solution.

Soundness note: the returned lower bound is HiGHS's MIP dual bound minus a safety margin; unlike the
BaB's dual bounds it is not certified by outward rounding (HiGHS's feasibility and integrality
tolerances apply). Witnesses are checked exactly as everywhere else.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from paper_repro.bounds.highs import new_highs, run_highs
from paper_repro.bounds.interval import Bounds, InputRegion, interval_bounds
from paper_repro.bounds.lp import RelaxedLP, lp_tighten
from paper_repro.bounds.symbolic import symbolic_bounds
from paper_repro.exact.decide import Decision, SearchOutcome, Verdict
from paper_repro.exact.engine_parts.incumbent import attack_incumbent
from paper_repro.exact.engine_parts.region import activation_pattern, region_lp, region_witness
from paper_repro.exact.witnesses.witness import ExactNetwork, Witness, fit_within, repair
from paper_repro.query import Query

SAFETY = 1e-9
"""Margin (relative to ``1 + |bound|``) subtracted from HiGHS's MIP dual bound."""


def _bounds(query: Query, radius: float, lp: RelaxedLP, deadline: float) -> Bounds:
    region = InputRegion(query.x, radius, query.norm)
    bounds = symbolic_bounds(query.network, region, interval_bounds(query.network, region))
    if len(query.network.hidden_sizes) > 1:
        budget = time.monotonic() + max(0.0, deadline - time.monotonic()) / 4
        bounds = lp_tighten(lp, radius, bounds, min(deadline, budget))
        bounds = symbolic_bounds(query.network, region, bounds)
    return bounds


def _witness(query, exact, lp: RelaxedLP, bounds, col: np.ndarray, t: int, radius: float):
    """The MILP point, exactly checked (repaired, or re-solved in its activation region)."""
    xp = np.clip(query.x + lp.displacement(col[: lp.ncol]), 0.0, 1.0)
    w = repair(exact, query.x, xp, t, query.norm)
    if w is None and query.network.hidden_sizes:  # big-M leakage: solve its region exactly
        pattern = activation_pattern(query.network, xp)
        w = region_witness(region_lp(lp), exact, pattern, bounds, radius)
    return w


def _solve_target(
    query: Query,
    target: int,
    radius: float,
    start: Witness | None,
    deadline: float,
    tolerance: float,
    feasibility: bool,
    margin: float = 0.0,
) -> tuple[highspy.Highs, RelaxedLP, int]:
    """Build and run the MILP for one target on ``R(x, radius)``; returns the solved model."""
    tight = RelaxedLP(query.network, query.x, query.norm, target, min_delta=False)
    bounds = _bounds(query, radius, tight, deadline)
    lp = RelaxedLP(query.network, query.x, query.norm, target, min_delta=True)
    lp.configure(radius, bounds, None, slack=False)
    lp.set_output_rows(True, margin=margin)
    a = lp.matrix().tolil()
    col_lo, col_hi, cost = lp.col_lo.copy(), lp.col_hi.copy(), np.zeros(lp.ncol)
    if not feasibility:
        cost[lp.delta_col] = 1.0
    row_lo, row_hi = list(lp.row_lo), list(lp.row_hi)
    unstable = [
        (k, i)
        for k, (lo, hi) in enumerate(bounds[:-1])
        for i in np.flatnonzero((lo < 0) & (hi > 0))
    ]
    nb = len(unstable)
    a.resize((a.shape[0] + 2 * nb, lp.ncol + nb))
    for j, (k, i) in enumerate(unstable):
        lo, hi = bounds[k][0][i], bounds[k][1][i]
        zc, ac, bc, r = lp.z_cols[k][i], lp.a_cols[k][i], lp.ncol + j, lp.base.shape[0] + 2 * j
        a[r, ac], a[r, zc], a[r, bc] = 1.0, -1.0, -lo  # a − z − l·b ≤ −l
        a[r + 1, ac], a[r + 1, bc] = 1.0, -hi  # a − u·b ≤ 0
        row_lo += [-np.inf, -np.inf]
        row_hi += [-lo, 0.0]
    a = a.tocsc()
    col_lo = np.concatenate([col_lo, np.zeros(nb)])
    col_hi = np.concatenate([col_hi, np.ones(nb)])
    cost = np.concatenate([cost, np.zeros(nb)])
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = a.shape[1], a.shape[0]
    model.col_cost_, model.col_lower_, model.col_upper_ = cost, col_lo, col_hi
    model.row_lower_, model.row_upper_ = np.array(row_lo), np.array(row_hi)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_, model.a_matrix_.index_ = a.indptr, a.indices
    model.a_matrix_.value_ = a.data
    model.integrality_ = [highspy.HighsVarType.kContinuous] * lp.ncol + [
        highspy.HighsVarType.kInteger
    ] * nb
    h = new_highs(
        {
            "mip_rel_gap": 0.0,
            "mip_abs_gap": max(tolerance / 2, 1e-9),
            "mip_feasibility_tolerance": 1e-9,
            "time_limit": max(1e-3, deadline - time.monotonic()),
        }
    )
    h.passModel(model)
    if start is not None and not feasibility:
        h.setSolution(_start_vector(query, lp, start, unstable, a.shape[1]))
    run_highs(h)
    lp.milp_bounds = bounds  # kept for region re-solves of the MILP point
    return h, lp, len(unstable)


def _start_vector(
    query: Query, lp: RelaxedLP, w: Witness, unstable: list, ncol: int
) -> highspy.HighsSolution:
    v = np.zeros(ncol)
    d = w.x - query.x
    v[: lp.delta_col] = lp.displacement_columns(d)
    v[lp.delta_col] = w.distance
    pre = query.network.pre_activations(w.x)
    for k, z in enumerate(pre):
        v[lp.z_cols[k]], v[lp.a_cols[k]] = z, np.maximum(z, 0.0)
    v[lp.y_cols] = query.network.forward(w.x)
    for j, (k, i) in enumerate(unstable):
        v[lp.ncol + j] = 1.0 if pre[k][i] > 0 else 0.0
    sol = highspy.HighsSolution()
    sol.col_value = list(v)
    sol.value_valid = True
    return sol


def milp_minimize(
    query: Query,
    deadline: float,
    tolerance: float = 1e-4,
    initial: Witness | None = None,
    seed: int = 0,
) -> SearchOutcome:
    """``min ‖x′ − x‖`` by one big-M MILP per target class (incumbent shared across targets)."""
    exact = ExactNetwork(query.network)
    best = initial
    attack = None
    for t in query.targets():
        w = attack_incumbent(query, t, seed=seed, seconds=1.0, exact=exact)
        if w is not None and (attack is None or w.distance < attack.distance):
            attack = w
    if attack is not None and (best is None or attack.distance < best.distance):
        best = attack
    domain = query.domain_radius()
    lower, nodes, finished, unstable = np.inf, 0, True, 0
    for t in query.targets():
        radius = domain if best is None else best.distance
        start = best if best is not None and best.target == t else None
        h, lp, nu = _solve_target(query, t, radius, start, deadline, tolerance, False)
        unstable = max(unstable, nu)
        info = h.getInfo()
        nodes += int(max(info.mip_node_count, 0))
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            continue  # no adversarial example for t within the radius
        sol = h.getSolution()
        if sol.value_valid:
            col = np.asarray(sol.col_value)
            w = _witness(query, exact, lp, lp.milp_bounds, col, t, radius)
            if w is not None and (best is None or w.distance < best.distance):
                best = w
        if status != highspy.HighsModelStatus.kOptimal:
            finished = False
        bound = info.mip_dual_bound
        if nu == 0:  # no binaries: HiGHS solved an LP and reports no MIP dual bound
            ok = status == highspy.HighsModelStatus.kOptimal
            bound = info.objective_function_value if ok else -np.inf
        lower = min(
            lower, max(0.0, bound - SAFETY * (1 + abs(bound))) if np.isfinite(bound) else 0.0
        )
    upper = np.inf if best is None else best.distance
    lower = min(lower, upper)
    return SearchOutcome(lower, best, nodes, finished, unstable, attack)


def milp_decider():
    """A :data:`~paper_repro.exact.decide.Decider` solving the fixed-δ big-M feasibility MILP."""

    def decide(query: Query, delta: float, timeout: float) -> Decision:
        start = time.monotonic()
        deadline = start + timeout
        exact = ExactNetwork(query.network)
        unknown = False
        for t in query.targets():
            robust = False
            for margin in (0.0, 1e-7):  # a point on the boundary may need a strictly inner one
                h, lp, _ = _solve_target(query, t, float(delta), None, deadline, 0.0, True, margin)
                status = h.getModelStatus()
                if status == highspy.HighsModelStatus.kInfeasible:
                    robust = margin == 0.0  # with the margin, infeasibility proves nothing
                    break
                sol = h.getSolution()
                if status == highspy.HighsModelStatus.kOptimal and sol.value_valid:
                    col = np.asarray(sol.col_value)
                    w = _witness(query, exact, lp, lp.milp_bounds, col, t, float(delta))
                    w = None if w is None else fit_within(exact, query.x, w, delta, query.norm)
                    if w is not None:
                        return Decision(Verdict.ADVERSARIAL, w.x, time.monotonic() - start)
            unknown = unknown or not robust
        took = time.monotonic() - start
        if unknown:
            return Decision(
                Verdict.UNKNOWN, None, took, "MILP timed out or its point failed the check"
            )
        return Decision(Verdict.ROBUST, None, took)

    return decide
