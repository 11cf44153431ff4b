"""Bounds that are functions of the radius: the displacement columns of
:class:`~paper_repro.bounds.relaxed_lp.RelaxedLP` for ``R(x, ρ)``, and the largest radius a dual
vector proves clear of adversarial examples (the Newton steps of the branch-and-bound).

:class:`RadiusDual` is a mixin of :class:`~paper_repro.bounds.relaxed_lp.RelaxedLP`; it reads the
LP's ``x``, ``norm``, ``network``, column layout (``delta_col``, ``p_idx``, ``q_idx``, ``ncol``),
column bounds, ``cost`` and its ``_row_terms`` / ``_aty`` dual products.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from paper_repro.bounds.safe import col_terms, gamma, reduced_costs
from paper_repro.query import Norm

_BACKOFF_REL, _BACKOFF_ABS = np.logspace(-13, -6, 15), np.logspace(-16, -9, 15)
"""Relative and absolute steps below a float root tried when verifying it rigorously."""


class RadiusDual:
    """Radius-dependent column bounds and :meth:`parametric_root` (see the module docstring)."""

    def _radius_bounds(self, radii: np.ndarray, delta_lo: float = 0.0) -> tuple:
        """Bounds of the displacement and ``δ`` columns for each radius, ``[R, δcol + 1]`` each.

        The room to move coordinate ``i`` down is ``min(x_i, ρ)`` and up ``min(1 − x_i, ρ)``:
        the first is exact in floats, and ``1 − x_i`` is rounded up once per query
        (:attr:`_room_up`), so the columns always hold ``R(x, ρ)`` (a superset is sound).
        """
        r = np.asarray(radii, float).reshape(-1, 1)
        down = np.minimum(self.x[None, :], r)
        up = np.minimum(self._room_up[None, :], r)
        m = self.delta_col + 1
        lo, hi = np.zeros((len(r), m)), np.zeros((len(r), m))
        n = self.network.input_dim
        if self.norm == Norm.LINF:
            lo[:, :n], hi[:, :n] = -down, up
        else:
            k = self.p_idx.size
            hi[:, :k], hi[:, k : m - 1] = up[:, self.p_idx], down[:, self.q_idx]
        hi[:, -1] = np.nextafter(r[:, 0], np.inf)
        lo[:, -1] = np.minimum(delta_lo, r[:, 0]) if self.min_delta else hi[:, -1]
        return lo, hi

    @cached_property
    def _room_up(self) -> np.ndarray:
        """``1 − x`` rounded up, ``[n]`` (Fast2Sum: ``1 − x = s + t`` exactly; round up if
        ``t > 0``)."""
        s = 1.0 - self.x
        t = -self.x - (s - 1.0)
        return np.where(t > 0.0, np.nextafter(s, np.inf), s)

    def parametric_root(self, y: np.ndarray, cap: float, farkas: bool = False) -> float:
        """Largest ``δ ≤ cap`` such that the dual ``y`` proves ``min s > 0`` on ``R(x, δ')`` for all
        ``δ′ < δ`` (fixed-radius mode): a rigorous lower bound on the node's minimal distance.

        Only the displacement and ``δ`` columns' bounds depend on the radius, so the
        Neumaier–Shcherbina bound of ``y`` is a cheap function of it. A positive bound at ``ρ``
        proves ``min s > 0`` at every radius ``≤ ρ`` too (the LP's feasible set grows with the
        radius), so the result is a float root of the bound (:meth:`_root_guess`), backed off
        until the rigorous bound is positive there, else the end of a grid refinement. Returns
        ``0.0`` if ``y`` proves nothing and ``inf`` if it holds up to ``cap``.
        With ``farkas=True``, ``y`` is an infeasibility ray and the objective is taken as 0 (a
        positive bound then proves the LP empty).
        """
        y, row_term = self._row_terms(y)
        aty, abs_aty = self._aty(y)
        cost = np.zeros(self.ncol) if farkas else self.cost
        r_lo, r_hi = reduced_costs(cost, aty, abs_aty, self.max_col_nnz)
        m = self.delta_col + 1  # the columns whose bounds depend on the radius
        fixed_terms = np.concatenate(
            [row_term, col_terms(r_lo[m:], r_hi[m:], self.col_lo[m:], self.col_hi[m:])]
        )
        if not np.all(np.isfinite(fixed_terms)):
            return 0.0
        const, const_mag = float(np.sum(fixed_terms)), float(np.sum(np.abs(fixed_terms)))
        err = 2.0 * gamma(row_term.size + self.ncol + 2)

        disp_lo, disp_hi = r_lo[: m - 1], r_hi[: m - 1]

        def bound(radii: np.ndarray) -> np.ndarray:
            lo, hi = self._radius_bounds(radii)
            # every displacement box holds 0 (lo ≤ 0 ≤ hi), so of col_terms' four products
            # r_lo·hi and r_hi·lo are the least (rounding is monotone): the same floats
            with np.errstate(invalid="ignore"):
                disp = np.minimum(disp_lo * hi[:, :-1], disp_hi * lo[:, :-1])
            disp = np.where(np.isnan(disp), 0.0, disp)  # 0 · inf: the coefficient is {0}
            delta = col_terms(r_lo[m - 1 : m], r_hi[m - 1 : m], lo[:, -1:], hi[:, -1:])
            terms = np.concatenate([disp, delta], axis=1)
            total = const + terms.sum(axis=1)
            return total - err * (const_mag + np.abs(terms).sum(axis=1)) - 1e-300

        if bound(np.array([cap]))[0] > 0.0:
            return np.inf
        aim = const
        if self.norm == Norm.LINF:
            # every radius term is ≤ 0 (each box holds 0; δ has no rows), so the rigorous bound
            # is const − err·const_mag + (1 + err)·Σ terms: aim the float root at that
            aim = (const - err * const_mag) / (1 + err)
        guess = self._root_guess(r_lo[:m], r_hi[:m], aim, cap)
        tries = guess * (1.0 - _BACKOFF_REL) - _BACKOFF_ABS
        tries = np.concatenate([[guess], tries])
        tries = tries[tries > 0.0]
        for part in (tries[:2], tries[2:]):  # verify the guess rigorously, backing off if needed
            ok = np.flatnonzero(bound(part) > 0.0) if part.size else part
            if ok.size:
                return float(part[ok[0]])
        lo_r, hi_r = 0.0, cap
        if not bound(np.array([0.0]))[0] > 0.0:
            return 0.0  # the dual proves nothing at all (the grid below would start here)
        for _ in range(4):  # grid refinement (the last positive point of a coarse grid)
            grid = np.linspace(lo_r, hi_r, 17)
            ok = bound(grid) > 0.0
            if not ok[0]:
                return lo_r if lo_r > 0.0 else 0.0
            last = int(np.flatnonzero(ok)[-1])
            lo_r, hi_r = float(grid[last]), float(grid[min(last + 1, 16)])
        return lo_r

    def _root_guess(self, r_lo: np.ndarray, r_hi: np.ndarray, const: float, cap: float) -> float:
        """Float root of ``const − Σ_j s_j min(ρ, c_j)`` (the dual bound's radius dependence)."""
        n = self.network.input_dim
        if self.norm == Norm.LINF:
            parts = [np.maximum(r_hi[:n], 0.0), np.maximum(-r_lo[:n], 0.0)]
        else:
            parts = [np.maximum(-r_lo[: self.delta_col], 0.0)]
        finite_caps, order, starts, ends = self._guess_caps
        slopes = np.concatenate([*parts, [max(-r_lo[-1], 0.0)]])[order]
        spent = np.concatenate([[0.0], np.cumsum(slopes * finite_caps)])
        total = slopes.sum()
        rate = np.concatenate([[total], total - np.cumsum(slopes)])
        # on [starts[k], ends[k]] the function is const − spent_k − rate_k ρ
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = np.where(
                rate > 0.0, (const - spent) / rate, np.where(const > spent, np.inf, 0.0)
            )
        hit = np.flatnonzero(roots <= ends)
        if hit.size == 0:
            return cap
        k = int(hit[0])
        return float(min(max(roots[k], starts[k]), cap))

    @cached_property
    def _guess_caps(self) -> tuple[np.ndarray, ...]:
        """The breakpoints of :meth:`_root_guess` (room per displacement column, then ``inf`` for
        ``δ``), sorted: finite ones (``inf`` → 0), their order, and each linear piece's start
        and end; they depend only on ``x``."""
        x = self.x
        if self.norm == Norm.LINF:
            caps = np.concatenate([x, 1.0 - x])
        else:
            caps = np.concatenate([1.0 - x[self.p_idx], x[self.q_idx]])
        caps = np.concatenate([caps, [np.inf]])
        order = np.argsort(caps)
        caps = caps[order]
        starts, ends = np.concatenate([[0.0], caps]), np.concatenate([caps, [np.inf]])
        return np.where(np.isfinite(caps), caps, 0.0), order, starts, ends
