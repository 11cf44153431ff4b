"""The triangle-relaxation LP of a minimal-distortion query on HiGHS, with safe dual bounds.

:class:`RelaxedLP` encodes, for one target class ``t`` (Carlini et al., Sec. 3; Wong & Kolter, 2018,
Eq. 3 for the relaxation; Ehlers, 2017):

* displacement ``e = x′ − x`` with ``|e_i| ≤ δ`` (L∞), or ``e = p − q``, ``p, q ≥ 0``,
  ``Σ (p + q) ≤ δ`` (L1, no absolute-value ReLUs), and ``x′ ∈ [0,1]`` via column bounds;
* ``z_k = W_k a_{k−1} + b_k`` and ``a_k`` enclosing ``relu(z_k)`` by ``a ≥ z``, ``a ≥ 0``,
  ``a ≤ s z + t`` (or exact for stable / branched ReLUs);
* logits ``y = W_L a_{L−1} + b_L`` and ``y_t − y_j + s ≥ 0`` with an elastic slack ``s ≥ 0`` (cost
  ``M``) so the LP is always feasible and a dual bound always exists.

The LP minimises ``δ + M s``. Its optimum is only trusted through :func:`safe_dual_bound`, a
Neumaier–Shcherbina bound computed from the returned dual vector with outward rounding, so a HiGHS
tolerance cannot make a lower bound unsound. :func:`lp_tighten` uses the same model to tighten
hidden pre-activation bounds neuron by neuron. The radius-dependent column bounds and the radius a
dual vector proves (:meth:`~paper_repro.bounds.radius_dual.RadiusDual.parametric_root`) come from
the mixin :class:`~paper_repro.bounds.radius_dual.RadiusDual`.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from paper_repro.bounds.highs import new_highs, run_highs
from paper_repro.bounds.interval import Bounds
from paper_repro.bounds.radius_dual import RadiusDual
from paper_repro.bounds.safe import csr_matvec, gamma, reduced_costs, row_terms, total
from paper_repro.bounds.symbolic import Phases, ReluRelaxation, relax_layer
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm

SLACK_COST = 1e3
"""``M``: cost per unit of output-constraint violation in the ``min δ`` LP."""


@dataclass(frozen=True)
class LPSolution:
    """One solve: HiGHS status, float optimum, rigorous lower bound, primal point, row duals."""

    optimal: bool
    value: float
    safe_bound: float
    col_value: np.ndarray
    row_dual: np.ndarray


class RelaxedLP(RadiusDual):
    """One HiGHS model of the relaxed query for target ``target`` (see the module docstring).

    Column layout: displacement (``[n]`` for L∞; for L1, ``p`` over the pixels that can move up
    (``x_i < 1``, :attr:`p_idx`) then ``q`` over those that can move down (``x_i > 0``,
    :attr:`q_idx`): the others' columns would be fixed at 0), ``δ``, ``s``, then per hidden layer
    ``z_k`` and ``a_k``, then the logits ``y``. Call :meth:`configure` before solving.
    ``free_slack`` (fixed-radius LPs only) lets the output slack ``s`` go negative.
    """

    def __init__(
        self,
        network: ReluNetwork,
        x: np.ndarray,
        norm: Norm,
        target: int,
        min_delta: bool = True,
        indicators: bool = False,
        free_slack: bool = False,
    ) -> None:
        self.network, self.x, self.norm, self.target = network, np.asarray(x, float), norm, target
        self.min_delta = min_delta
        self.free_slack = free_slack and not min_delta
        n = network.input_dim
        hidden = network.hidden_sizes
        if norm == Norm.LINF:
            self.p_idx, self.q_idx = np.arange(n), np.zeros(0, int)
            ndisp = n
        else:  # MNIST: most pixels sit at 0, so about 40 % fewer columns than (p, q) over all n
            self.p_idx, self.q_idx = np.flatnonzero(self.x < 1.0), np.flatnonzero(self.x > 0.0)
            ndisp = self.p_idx.size + self.q_idx.size
        self.delta_col, self.slack_col = ndisp, ndisp + 1
        col = ndisp + 2
        self.z_cols, self.a_cols = [], []
        for h in hidden:
            self.z_cols.append(np.arange(col, col + h))
            self.a_cols.append(np.arange(col + h, col + 2 * h))
            col += 2 * h
        self.y_cols = np.arange(col, col + network.num_classes)
        col += network.num_classes
        # one [0, 1] column per first-layer ReLU (its phase indicator) for hull cuts; no rows
        self.ind_cols = np.arange(col, col + (hidden[0] if indicators and hidden else 0))
        self.ncol = col + self.ind_cols.size
        self.cut_owners = np.zeros(0, int)  # per added row (:meth:`add_rows`), its ReLU
        self._build(ndisp)
        # no scaling: the rows are already O(1) (weights, ±1, slopes), and HiGHS would rescale
        # the model on every warm-started run
        self.highs = new_highs(
            {"presolve": "off", "primal_feasibility_tolerance": 1e-9, "simplex_scale_strategy": 0}
        )
        self._pass_model()
        self._sent_lo, self._sent_hi = self.col_lo.copy(), self.col_hi.copy()

    def _build(self, ndisp: int) -> None:
        net, x, n = self.network, self.x, self.network.input_dim
        blocks, lo, hi = [], [], []

        def add(rows: sp.spmatrix, rlo: np.ndarray, rhi: np.ndarray) -> None:
            blocks.append(sp.csr_matrix(rows))
            lo.append(np.asarray(rlo, float))
            hi.append(np.asarray(rhi, float))

        def cols(idx: np.ndarray, vals: np.ndarray) -> sp.csr_matrix:
            m = len(idx)
            return sp.csr_matrix((vals, (np.arange(m), idx)), shape=(m, self.ncol))

        eye = np.ones(n)
        if self.norm == Norm.LINF:  # e_i − δ ≤ 0 (only where x_i < 1); e_i + δ ≥ 0 (x_i > 0)
            for sign, keep in ((-1.0, x < 1.0), (1.0, x > 0.0)) if self.min_delta else ():
                idx = np.flatnonzero(keep)
                rows = cols(idx, eye[idx]) + sign * cols(
                    np.full(len(idx), self.delta_col), eye[idx]
                )
                rlo, rhi = (-np.inf, 0.0) if sign < 0 else (0.0, np.inf)
                add(rows, np.full(len(idx), rlo), np.full(len(idx), rhi))
            disp = sp.csr_matrix(sp.eye(n, self.ncol))
        else:  # Σ p + Σ q − δ ≤ 0
            row = np.zeros((1, self.ncol))
            row[0, :ndisp], row[0, self.delta_col] = 1.0, -1.0
            add(row, [-np.inf], [0.0])
            eye_n = sp.eye(n, format="csc")
            rest = sp.csr_matrix((n, self.ncol - ndisp))
            disp = sp.hstack([eye_n[:, self.p_idx], -eye_n[:, self.q_idx], rest])
        prev = disp  # maps columns to the previous layer's activations (x′ − x for layer 1)
        self.up_rows: list[np.ndarray] = []
        n_rows = sum(b.shape[0] for b in blocks)
        for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            m = w.shape[0]
            out_cols = self.z_cols[k] if k < len(self.z_cols) else self.y_cols
            rows = cols(out_cols, np.ones(m)) - sp.csr_matrix(w) @ prev
            rhs = b.copy()
            if k == 0:  # z_1 − W_1 e = b_1 + W_1 x, rounded: an interval row
                rhs = b + w @ x
                err = 4.0 * gamma(n + 2) * (np.abs(w) @ np.abs(x) + np.abs(b)) + 1e-300
                add(rows, rhs - err, rhs + err)
            else:
                add(rows, rhs, rhs)
            n_rows += m
            if k < len(self.z_cols):
                zc, ac = self.z_cols[k], self.a_cols[k]
                add(cols(ac, np.ones(m)) - cols(zc, np.ones(m)), np.zeros(m), np.full(m, np.inf))
                add(cols(ac, np.ones(m)), np.full(m, -np.inf), np.zeros(m))  # a − s z ≤ t
                self.up_rows.append(np.arange(n_rows + m, n_rows + 2 * m))
                n_rows += 2 * m
                prev = cols(ac, np.ones(m))
        t = self.target
        others = np.array([j for j in range(net.num_classes) if j != t])
        rows = cols(np.full(len(others), self.y_cols[t]), np.ones(len(others)))
        rows = rows - cols(self.y_cols[others], np.ones(len(others)))
        rows = rows + cols(np.full(len(others), self.slack_col), np.ones(len(others)))
        self.out_rows = np.arange(n_rows, n_rows + len(others))
        add(rows, np.zeros(len(others)), np.full(len(others), np.inf))
        self._set_matrix(sp.vstack(blocks).tocsc())
        self.model_rows = self.base.shape[0]  # rows of the relaxation; added rows come after
        self.row_lo, self.row_hi = np.concatenate(lo), np.concatenate(hi)
        self.col_lo, self.col_hi = np.zeros(self.ncol), np.zeros(self.ncol)
        self.slopes = [np.zeros(len(z)) for z in self.z_cols]
        self.cost = self.objective_delta()

    def _set_matrix(self, base: sp.csc_matrix) -> None:
        """Set the constraint matrix and what the safe dual bounds derive from it."""
        self.base = base
        self.base_t = base.T.tocsr()
        self.abs_base_t = abs(self.base_t)
        self.max_col_nnz = int(np.max(np.diff(base.indptr))) + 3

    def _pass_model(self) -> None:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.ncol, self.base.shape[0]
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = self.cost, self.col_lo, self.col_hi
        lp.row_lower_, lp.row_upper_ = self.row_lo, self.row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = self.base.indptr
        lp.a_matrix_.index_ = self.base.indices
        lp.a_matrix_.value_ = self.base.data
        self.highs.passModel(lp)

    def matrix(self) -> sp.csc_matrix:
        """The current constraint matrix (base plus the ``−s`` slopes of the ``a ≤ s z + t``
        rows).
        """
        rows = np.concatenate(self.up_rows) if self.up_rows else np.zeros(0, int)
        zc = np.concatenate(self.z_cols) if self.z_cols else np.zeros(0, int)
        slopes = np.concatenate(self.slopes) if self.slopes else np.zeros(0)
        extra = sp.csc_matrix((-slopes, (rows, zc)), shape=self.base.shape)
        return (self.base + extra).tocsc()

    def configure(
        self,
        radius: float,
        bounds: Bounds,
        fixed: Phases | None,
        slack: bool = True,
        delta_lo: float = 0.0,
        relaxations: list[ReluRelaxation] | None = None,
    ) -> None:
        """Set the region ``R(x, radius)``, sound ``bounds`` (valid on it) and branched phases.

        ``slack=False`` pins ``s = 0`` (the exact, non-elastic LP, used by heuristics; else
        ``s ≥ 0``, or with :attr:`free_slack` ``s`` down to the least margin the output bounds
        allow, so ``min s < 0`` measures how far inside the radius the target is reached);
        ``delta_lo`` restricts the node to distances ``δ ≥ delta_lo`` (a δ-interval split).
        ``relaxations``: the hidden layers' :func:`relax_layer` of ``bounds`` and ``fixed``, if
        already computed (:func:`~paper_repro.bounds.symbolic.symbolic_bounds` fills them).
        """
        self.set_probe(radius, delta_lo)
        y_lo, y_hi = bounds[-1]
        others = np.arange(y_hi.size) != self.target
        gap = np.max(y_hi[others]) - y_lo[self.target]
        self.col_hi[self.slack_col] = max(1.0, float(gap) + 1.0) if slack else 0.0
        # a free slack (fixed-radius probes beyond the root) may go down to the least possible
        # max_j y_j − y_t; a floor one unit lower cuts off no point of the relaxation
        floor = np.max(y_lo[others]) - y_hi[self.target]
        free = slack and self.free_slack
        self.col_lo[self.slack_col] = min(0.0, float(floor)) - 1.0 if free else 0.0
        self.col_lo[self.y_cols], self.col_hi[self.y_cols] = y_lo, y_hi
        for k, (zc, ac) in enumerate(zip(self.z_cols, self.a_cols, strict=True)):
            lo, hi = bounds[k]
            fk = None if fixed is None else fixed[k]
            r = relax_layer(lo, hi, fk) if relaxations is None else relaxations[k]
            self.col_lo[zc], self.col_hi[zc] = lo, hi
            inactive = r.slope == 0.0
            self.col_lo[ac] = np.where(inactive, 0.0, np.maximum(lo, 0.0))
            self.col_hi[ac] = np.where(inactive, 0.0, np.maximum(hi, 0.0))
            self.row_hi[self.up_rows[k]] = r.intercept
            changed = np.flatnonzero(r.slope != self.slopes[k])
            for i in changed:
                self.highs.changeCoeff(int(self.up_rows[k][i]), int(zc[i]), -float(r.slope[i]))
            self.slopes[k] = r.slope
            if k == 0 and self.ind_cols.size:  # the phase indicator: 1 active, 0 inactive
                on = (lo >= 0) | (fk is not None and (fk > 0))
                off = (hi <= 0) | (fk is not None and (fk < 0))
                self.col_lo[self.ind_cols] = np.where(on & ~off, 1.0, 0.0)
                self.col_hi[self.ind_cols] = np.where(off & ~on, 0.0, 1.0)
        rows = np.concatenate(self.up_rows) if self.up_rows else np.zeros(0, int)
        self.highs.changeRowsBounds(
            len(rows), rows.astype(np.int32), self.row_lo[rows], self.row_hi[rows]
        )

    def set_probe(self, radius: float, delta_lo: float = 0.0) -> None:
        """Change only the input region's radius (other bounds stay those of :meth:`configure`):
        the displacement and ``δ`` column bounds of ``R(x, radius)``. Column bounds reach HiGHS
        at the next :meth:`solve` (only those that changed)."""
        lo, hi = self._radius_bounds(np.array([radius]), delta_lo)
        self.col_lo[: lo.shape[1]], self.col_hi[: hi.shape[1]] = lo[0], hi[0]

    def _send_cols(self) -> None:
        """Pass to HiGHS the column bounds that differ from those it holds."""
        changed = np.flatnonzero((self.col_lo != self._sent_lo) | (self.col_hi != self._sent_hi))
        if changed.size:
            idx = changed.astype(np.int32)
            self.highs.changeColsBounds(idx.size, idx, self.col_lo[idx], self.col_hi[idx])
            self._sent_lo[idx], self._sent_hi[idx] = self.col_lo[idx], self.col_hi[idx]

    def add_rows(
        self, rows: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, owners: np.ndarray
    ) -> None:
        """Append constraint rows ``lo ≤ rows · v ≤ hi`` (``rows``: ``[k, ncol]``; e.g. cuts), to
        the model and to the matrix the safe dual bounds are computed from; ``owners`` (``[k]``)
        names the first-layer ReLU each row relaxes (its dual counts in :meth:`relu_weights`)."""
        rows = sp.csr_matrix(rows)
        self.cut_owners = np.concatenate([self.cut_owners, np.asarray(owners, int)])
        self._set_matrix(sp.vstack([self.base, rows]).tocsc())
        self.row_lo = np.concatenate([self.row_lo, np.asarray(lo, float)])
        self.row_hi = np.concatenate([self.row_hi, np.asarray(hi, float)])
        self.highs.addRows(
            rows.shape[0],
            np.asarray(lo, float),
            np.asarray(hi, float),
            rows.nnz,
            rows.indptr[:-1].astype(np.int32),
            rows.indices.astype(np.int32),
            rows.data.astype(float),
        )

    def drop_added_rows(self) -> None:
        """Remove every row added by :meth:`add_rows` (e.g. cuts derived for a larger region)."""
        start = self.model_rows
        if self.base.shape[0] == start:
            return
        idx = np.arange(start, self.base.shape[0], dtype=np.int32)
        self.highs.deleteRows(idx.size, idx)
        self._set_matrix(self.base.tocsr()[:start].tocsc())
        self.row_lo, self.row_hi = self.row_lo[:start], self.row_hi[:start]
        self.cut_owners = np.zeros(0, int)

    def relu_weights(self, y: np.ndarray) -> list[np.ndarray]:
        """Per hidden layer, ``|dual|`` of each ReLU's upper relaxation rows (triangle row, plus
        any rows added for it) for the dual ``y``: the branching scores' weights."""
        weights = [np.abs(y[r]) for r in self.up_rows]
        if self.cut_owners.size and weights:
            np.add.at(weights[0], self.cut_owners, np.abs(y[self.model_rows :]))
        return weights

    def dual_ray(self) -> np.ndarray | None:
        """HiGHS's Farkas ray after an infeasible solve (either sign may be the proof), or None."""
        _status, has_ray, ray = self.highs.getDualRay()
        ray = np.asarray(ray, float)
        return ray if has_ray and ray.size == self.base.shape[0] else None

    def _row_terms(self, y: np.ndarray) -> tuple:
        return row_terms(self.row_lo, self.row_hi, y)

    def _aty(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Aᵀy`` and ``|A|ᵀ|y|`` for the current matrix (base plus the relaxation slopes)."""
        aty, abs_aty = csr_matvec(self.base_t, y), csr_matvec(self.abs_base_t, np.abs(y))
        for k, zc in enumerate(self.z_cols):
            yk = y[self.up_rows[k]]
            aty[zc] -= self.slopes[k] * yk
            abs_aty[zc] += np.abs(self.slopes[k] * yk)
        return aty, abs_aty

    def activity(self, v: np.ndarray) -> np.ndarray:
        """Row activities ``A v`` of the current matrix (base plus the relaxation slopes) at the
        point ``v`` (``[ncol]``), ``[rows]``; the forward counterpart of :meth:`_aty`."""
        act = self.base @ v
        for rows, zc, slope in zip(self.up_rows, self.z_cols, self.slopes, strict=True):
            act[rows] -= slope * v[zc]
        return act

    def set_output_rows(self, enabled: bool, margin: float = 0.0) -> None:
        """Enforce ``y_t − y_j + s ≥ margin`` (``enabled``) or drop the output rows (bound
        tightening).
        """
        rows = self.out_rows
        self.row_lo[rows] = margin if enabled else -np.inf
        self.highs.changeRowsBounds(
            len(rows), rows.astype(np.int32), self.row_lo[rows], self.row_hi[rows]
        )

    def set_cost(self, cost: np.ndarray) -> None:
        """Replace the objective (minimised), ``[ncol]``."""
        self.cost = np.asarray(cost, float).copy()
        self.highs.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), self.cost)

    def objective_delta(self) -> np.ndarray:
        """The node objective: ``δ + M s`` (``min_delta``) or ``s`` (fixed-radius probes)."""
        c = np.zeros(self.ncol)
        if self.min_delta:
            c[self.delta_col], c[self.slack_col] = 1.0, SLACK_COST
        else:
            c[self.slack_col] = 1.0
        return c

    def solve(
        self, time_limit: float, basis: highspy.HighsBasis | None = None, bound: bool = True
    ) -> LPSolution:
        """Run HiGHS (warm start from ``basis`` or the previous one) → point and safe bound
        (``bound=False``: no safe bound, ``-inf``, for callers that bound through
        :meth:`parametric_root` instead)."""
        h = self.highs
        self._send_cols()
        if basis is not None and len(basis.row_status) == self.base.shape[0]:
            h.setBasis(basis)  # (a basis from before rows were added is not reused)
        # HiGHS's clock runs across calls: the limit is absolute in its run time.
        h.setOptionValue("time_limit", h.getRunTime() + max(1e-3, float(time_limit)))
        status = run_highs(h)
        sol = h.getSolution()
        y = np.asarray(sol.row_dual, float)
        xv = np.asarray(sol.col_value, float)
        optimal = status == highspy.HighsModelStatus.kOptimal
        value = h.getInfo().objective_function_value if optimal else -np.inf
        if y.size != self.base.shape[0] or not sol.dual_valid:
            return LPSolution(optimal, value, -np.inf, xv, np.zeros(self.base.shape[0]))
        if not bound:
            return LPSolution(optimal, value, -np.inf, xv, y)
        yz, row_term = self._row_terms(y)
        aty, abs_aty = self._aty(yz)
        r_lo, r_hi = reduced_costs(self.cost, aty, abs_aty, self.max_col_nnz)
        bound = total(row_term, r_lo, r_hi, self.col_lo, self.col_hi)
        return LPSolution(optimal, value, bound, xv, y)

    def displacement(self, col_value: np.ndarray) -> np.ndarray:
        """``x′ − x`` from a primal point, ``[n]``."""
        n = self.network.input_dim
        if self.norm == Norm.LINF:
            return col_value[:n].copy()
        e, k = np.zeros(n), self.p_idx.size
        e[self.p_idx] += col_value[:k]
        e[self.q_idx] -= col_value[k : self.delta_col]
        return e

    def displacement_coefficients(self, coef: np.ndarray) -> np.ndarray:
        """Row coefficients on the displacement columns of linear functions ``coef · (x′ − x)``
        (``[k, n]`` → ``[k, δ column]``; the transpose of :meth:`displacement`)."""
        coef = np.atleast_2d(coef)
        if self.norm == Norm.LINF:
            return coef.copy()
        return np.concatenate([coef[:, self.p_idx], -coef[:, self.q_idx]], axis=1)

    def displacement_columns(self, e: np.ndarray) -> np.ndarray:
        """Values of the displacement columns for ``x′ − x = e`` (``[n]``; the inverse of
        :meth:`displacement`), ``[δ column]``."""
        if self.norm == Norm.LINF:
            return np.asarray(e, float).copy()
        return np.concatenate([np.maximum(e, 0.0)[self.p_idx], np.maximum(-e, 0.0)[self.q_idx]])
