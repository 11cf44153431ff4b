"""Brute-force reference for ``δ*`` on tiny networks (tests only).

Every ReLU activation pattern ``s ∈ {0,1}^H`` fixes a linear region of the network: inside it the
network is affine, the region is a polyhedron (``h_j ≥ 0`` for active, ``h_j ≤ 0`` for inactive
neurons), and "``x′`` is classified as ``t``" is a set of linear inequalities. So

    δ* = min over patterns s and targets t of  LP_s,t = min ‖x′ − x‖ s.t. x′ ∈ [0,1]^n,
         x′ in region s, logit_t(x′) ≥ logit_j(x′) ∀j,

and each ``LP_s,t`` is solved by HiGHS (``highspy`` directly: the same solver as
``scipy.optimize.linprog(method="highs")`` without its ~2 ms per-call overhead). Patterns
are enumerated exhaustively; the only pruning is dropping phases that interval arithmetic over
the whole input box ``[0,1]^n`` rules out (with a 1e-9 safety margin). Cost ``O(2^H)`` LPs: use it
for at most ~12 hidden ReLUs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import csc_matrix

from paper_repro.bounds.highs import new_highs, run_highs
from paper_repro.errors import PaperReproError
from paper_repro.query import Norm, Query

MAX_RELUS = 16
_TOL = 1e-10  # HiGHS primal and dual feasibility tolerances


@dataclass(frozen=True)
class ReferenceResult:
    """``delta``: the minimal distance (``inf`` if no adversarial example exists);
    ``witness``: an optimal ``x′`` (``[n_0]``) or ``None``; ``target``: its class;
    ``lps``: number of LPs solved."""

    delta: float
    witness: np.ndarray | None
    target: int | None
    lps: int


def reference_minimal_distance(query: Query) -> ReferenceResult:
    """``δ*`` of ``query`` by enumerating activation patterns (one LP per pattern and target).

    Raises:
        PaperReproError: more than ``MAX_RELUS`` hidden ReLUs.
    """
    net = query.network
    n_hidden = sum(net.hidden_sizes)
    if n_hidden > MAX_RELUS:
        raise PaperReproError(f"reference enumeration needs ≤ {MAX_RELUS} ReLUs, got {n_hidden}")
    choices = [[0, 1] if lo <= 1e-9 and hi >= -1e-9 else [int(lo > 0)]
               for lo, hi in zip(*_box_bounds(query), strict=True)]  # fmt: skip
    best = ReferenceResult(float("inf"), None, None, 0)
    lps = 0
    for pattern in itertools.product(*choices):
        a_ub, b_ub, logit_a, logit_c = _region(query, np.array(pattern, dtype=np.float64))
        for t in query.targets():
            others = [j for j in range(net.num_classes) if j != t]
            # logit_j − logit_t ≤ 0 for every other class j
            m_a = logit_a[others] - logit_a[t]
            m_c = logit_c[others] - logit_c[t]
            lps += 1
            res = _solve(query, np.vstack([a_ub, m_a]), np.concatenate([b_ub, -m_c]))
            if res is not None and res[0] < best.delta:
                best = ReferenceResult(res[0], res[1], t, 0)
    return ReferenceResult(best.delta, best.witness, best.target, lps)


def _box_bounds(query: Query) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of every hidden pre-activation over ``[0,1]^n`` (concatenated)."""
    lo, hi = np.zeros(query.network.input_dim), np.ones(query.network.input_dim)
    los, his = [], []
    for w, b in zip(query.network.weights[:-1], query.network.biases[:-1], strict=True):
        pos, neg = np.maximum(w, 0), np.minimum(w, 0)
        lo, hi = pos @ lo + neg @ hi + b, pos @ hi + neg @ lo + b
        los.append(lo)
        his.append(hi)
        lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return np.concatenate(los), np.concatenate(his)


def _region(query: Query, pattern: np.ndarray):
    """For a fixed pattern: ``A_ub x′ ≤ b_ub`` (the region) and logits ``= L x′ + c``."""
    net = query.network
    a = np.eye(net.input_dim)
    c = np.zeros(net.input_dim)
    rows, rhs = [], []
    start = 0
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        a, c = w @ a, w @ c + b  # pre-activation h = a x′ + c
        s = pattern[start : start + w.shape[0]]
        start += w.shape[0]
        sign = np.where(s > 0, -1.0, 1.0)  # active: −h ≤ 0; inactive: h ≤ 0
        rows.append(sign[:, None] * a)
        rhs.append(-sign * c)
        a, c = s[:, None] * a, s * c
    a, c = net.weights[-1] @ a, net.weights[-1] @ c + net.biases[-1]
    return np.vstack(rows), np.concatenate(rhs), a, c


def _solve(query: Query, a_ub: np.ndarray, b_ub: np.ndarray) -> tuple[float, np.ndarray] | None:
    """``min ‖x′ − x‖`` over ``x′ ∈ [0,1]^n`` with ``a_ub x′ ≤ b_ub``; ``None`` if infeasible."""
    x = query.x
    n = x.shape[0]
    if query.norm == Norm.LINF:  # variables (x′, t): min t, |x′ − x| ≤ t
        cost = np.r_[np.zeros(n), 1.0]
        eye = np.eye(n)
        a = np.vstack(
            [np.c_[a_ub, np.zeros(len(a_ub))], np.c_[eye, -np.ones(n)], np.c_[-eye, -np.ones(n)]]
        )
        b = np.r_[b_ub, x, -x]
        bounds = [(0.0, 1.0)] * n + [(0.0, None)]
    else:  # variables (d+, d−) ≥ 0, x′ = x + d+ − d−: min Σ d+ + d−
        cost = np.ones(2 * n)
        a = np.c_[a_ub, -a_ub]
        b = b_ub - a_ub @ x
        bounds = [(0.0, 1.0 - xi) for xi in x] + [(0.0, xi) for xi in x]
    status, fun, sol = _linprog(cost, a, b, bounds)
    infeasible = (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    )
    if status in infeasible:  # the objective is ≥ 0, so "unbounded or infeasible" is infeasible
        return None
    if status != highspy.HighsModelStatus.kOptimal:
        raise PaperReproError(f"reference LP failed: {status}")
    xp = sol[:n] if query.norm == Norm.LINF else x + sol[:n] - sol[n:]
    return float(fun), np.clip(xp, 0.0, 1.0)


def _linprog(cost: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, bounds: list):
    """``min cost·v`` s.t. ``a_ub v ≤ b_ub``, ``lo ≤ v ≤ hi``: (status, objective, solution)."""
    h = new_highs({"primal_feasibility_tolerance": _TOL, "dual_feasibility_tolerance": _TOL})
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = a_ub.shape
    lp.col_cost_ = cost
    lp.col_lower_ = np.array([-inf if lo is None else lo for lo, _ in bounds])
    lp.col_upper_ = np.array([inf if hi is None else hi for _, hi in bounds])
    lp.row_lower_ = np.full(a_ub.shape[0], -inf)
    lp.row_upper_ = b_ub
    mat = csc_matrix(a_ub)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = mat.indptr
    lp.a_matrix_.index_ = mat.indices
    lp.a_matrix_.value_ = mat.data
    h.passModel(lp)
    status = run_highs(h)
    return status, h.getInfo().objective_function_value, np.array(h.getSolution().col_value)
