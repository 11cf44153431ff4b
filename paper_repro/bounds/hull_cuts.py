"""Cuts from the convex hull of one first-layer ReLU over the input box (Anderson et al., 2020).

For ``y = relu(w·x′ + b)`` with ``x′`` in a box ``[L, U]``, the triangle relaxation of
:class:`~paper_repro.bounds.relaxed_lp.RelaxedLP` only sees the range of ``w·x′ + b``. With a
phase indicator ``z ∈ [0, 1]`` (``z = 1`` active), the inequalities

    ``y ≤ Σ_{i∈I} w_i (x′_i − L̆_i (1 − z)) + (b + Σ_{i∉I} w_i Ŭ_i) z``   for every ``I ⊆ [n]``,

with ``L̆_i, Ŭ_i`` the ends of ``[L_i, U_i]`` at which ``w_i x′_i`` is smallest / largest, describe
the convex hull of the neuron's graph over the box (Anderson et al., "Strong mixed-integer
programming formulations for trained neural networks", Math. Prog. 2020, Thm. 1 / Prop. 9). The most
violated ``I`` for a point ``(x̂′, ŷ, ẑ)`` takes ``i`` iff ``w_i (x̂′_i − L̆_i (1 − ẑ)) < w_i Ŭ_i ẑ``
(linear-time separation).

Measured on the PGD-trained 24x24 MNIST network (``BabOptions(hull_cuts=100, cuts_after=0)``):
proving "no adversarial example within δ" far below δ* needs 3–4× fewer LP solves (test image 2,
target 3: δ = 0.2, 1,637 → 482, and 1,701 → 479 once the LPs ran unscaled; δ = 0.23, 12,722 →
2,858 and 51 s → 16 s). But each cut row holds
~320 of the 784 pixels, so every LP gets slower, and near δ* the trees shrink too little: the
benchmark sample and two near-boundary instances got slower, so the engine leaves them off.

Each cut is valid for every point of the box with its true phase, so it holds for all radii below
the one whose box it was derived on, in every branch-and-bound node (the indicator column is fixed
to the phase where the phase is known). Its right-hand side is rounded up by a bound on the float
error of its computation, so the LP is never wrong about a true point (soundness of the dual bound
then rests on :mod:`paper_repro.bounds.safe`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from paper_repro.bounds.interval import InputRegion
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.bounds.safe import gamma

MIN_VIOLATION = 1e-6
"""A cut is added only when the point violates it by more than this (activation units)."""


def hull_cuts(
    w: np.ndarray,
    b: np.ndarray,
    box: InputRegion,
    x_hat: np.ndarray,
    y_hat: np.ndarray,
    z_hat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The most violated hull cut of each neuron at the point ``(x̂′, ŷ, ẑ)``.

    Args:
        w: first-layer weights ``[m, n]``; b: biases ``[m]``.
        box: the region whose box ``[box.lo, box.hi]`` the cuts must hold on.
        x_hat: the input point ``[n]``; y_hat, z_hat: activations and indicators ``[m]``.

    Returns:
        ``(in_set, ell, rhs, violation)``: per neuron the set ``I`` (``[m, n]`` bool), the
        indicator coefficient ``ℓ(I) = Σ_{i∈I} w_i L̆_i + Σ_{i∉I} w_i Ŭ_i + b``, and the cut
        ``y − Σ_{i∈I} w_i (x′_i − x_i) − ℓ(I) z ≤ rhs`` written in the displacement
        ``x′ − x`` (``rhs`` rounded up), and how much ``(x̂′, ŷ, ẑ)`` violates it.
    """
    lo_b = np.where(w >= 0, box.lo, box.hi)  # L̆
    hi_b = np.where(w >= 0, box.hi, box.lo)  # Ŭ
    z = z_hat[:, None]
    in_set = w * (x_hat - lo_b * (1.0 - z)) < w * hi_b * z
    lo_terms, hi_terms = w * lo_b, w * hi_b
    ell = np.where(in_set, lo_terms, hi_terms).sum(axis=1) + b
    gap = np.where(in_set, w * (box.x - lo_b), 0.0)  # w_i (x_i − L̆_i) for i ∈ I
    rhs = gap.sum(axis=1)
    value = np.where(in_set, w * (x_hat - lo_b), 0.0).sum(axis=1) + ell * z_hat
    # float error of ℓ (its z coefficient, z ∈ [0, 1]) and of rhs, both rounded into rhs
    n = w.shape[1]
    err = (
        2.0
        * gamma(n + 4)
        * (
            np.abs(np.where(in_set, lo_terms, hi_terms)).sum(axis=1)
            + np.abs(b)
            + np.abs(gap).sum(axis=1)
        )
    )
    return in_set, ell, rhs + err + 1e-300, y_hat - value


class HullCutPool:
    """The hull cuts added to one :class:`RelaxedLP` (which needs ``indicators=True``).

    Attributes:
        max_cuts: stop adding cuts after this many (each row has up to ``n + 2`` entries).
        added: cuts added so far.
    """

    def __init__(self, lp: RelaxedLP, max_cuts: int = 400) -> None:
        if lp.ind_cols.size == 0:
            raise ValueError("hull cuts need a RelaxedLP built with indicators=True")
        self.lp, self.max_cuts, self.added = lp, max_cuts, 0

    def clear(self) -> None:
        """Drop every cut (when the region shrinks, cuts derived on the larger box are weak)."""
        self.lp.drop_added_rows()
        self.added = 0

    def refiner(self, box: InputRegion, first: tuple, fixed: np.ndarray) -> Callable:
        """The ``refine`` callback of
        :func:`~paper_repro.exact.engine_parts.node_bound.newton_bound` for a node: separate at an
        LP solution for the first-layer ReLUs unstable under ``first``
        (their ``(lo, hi)``) and not branched (``fixed == 0``); True if cuts were added."""
        lo, hi = first
        free = (lo < 0) & (hi > 0) & (fixed == 0)
        return lambda sol: self.separate(sol.col_value, box, free) > 0

    def separate(self, col_value: np.ndarray, box: InputRegion, free: np.ndarray) -> int:
        """Add the violated cuts of the neurons ``free`` (``[m]`` bool: unstable, not branched) at
        the LP point ``col_value`` (``[ncol]``), valid on ``box``; returns how many were added."""
        lp = self.lp
        room = self.max_cuts - self.added
        if room <= 0 or not free.any():
            return 0
        w, b = lp.network.weights[0], lp.network.biases[0]
        x_hat = np.clip(lp.x + lp.displacement(col_value), box.lo, box.hi)
        y_hat, z_hat = col_value[lp.a_cols[0]], np.clip(col_value[lp.ind_cols], 0.0, 1.0)
        in_set, ell, rhs, violation = hull_cuts(w, b, box, x_hat, y_hat, z_hat)
        scale = 1.0 + np.abs(y_hat)
        pick = np.flatnonzero(free & (violation > MIN_VIOLATION * scale))
        pick = pick[np.argsort(-violation[pick] / scale[pick])][:room]
        if pick.size == 0:
            return 0
        # Σ_{i∈I} −w_i (x′_i − x_i) in the LP's displacement columns
        disp = lp.displacement_coefficients(np.where(in_set[pick], -w[pick], 0.0))
        m = pick.size
        rows = sp.csr_matrix(disp)
        rows.resize((m, lp.ncol))
        at = np.concatenate([lp.a_cols[0][pick], lp.ind_cols[pick]])
        vals = np.concatenate([np.ones(m), -ell[pick]])
        rows = rows + sp.csr_matrix((vals, (np.tile(np.arange(m), 2), at)), shape=(m, lp.ncol))
        lp.add_rows(rows.tocsr(), np.full(pick.size, -np.inf), rhs[pick], pick)
        self.added += pick.size
        return int(pick.size)
