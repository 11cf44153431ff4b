"""Filtered smart branching for :class:`~paper_repro.bounds.split_bounds.SplitBounder`: which
ReLU a branch-and-bound node splits next (De Palma et al., 2021, "Improved branch and bound for
neural network verification via Lagrangian decomposition").

Among a node's ``k`` free unstable ReLUs of highest score, the rule keeps the one whose two
children have the best bounds, each child bounded once with the parent's ``α, β, λ`` (``β = 0``
on the new split, as :func:`~paper_repro.bounds.split_bounds.children` sets it; no optimisation;
the parent's pre-activation bounds, the split one clipped). A candidate is scored by the sum of
its children's *negative parts*: a child already above zero counts 0, since it closes whatever
its margin.

A child differs from its parent in one neuron's relaxation only, so its bound is computed from
the parent's backward pass instead of a pass of its own. For ReLU ``n`` of hidden layer ``k``
with the parent's coefficient ``g`` on ``h_k = relu(ẑ_k)``, relaxation coefficient ``Λ_n`` and
per-neuron term ``t_n``, the child's coefficient is ``Λ'_n = g_n`` (active) or ``0``
(inactive) and its term ``0``, so with ``δ = Λ'_n − Λ_n``::

    child = parent − t_n + δ·b_{k−1,n} + T_{k−1}(G + δ·W_{k−1}[n]) − T_{k−1}(G),

where ``G`` is the parent's coefficient on ``h_{k−1}`` (on the input ``x`` for ``k = 1``) and
``T_j(G)`` the part of the backward pass below ``h_j``: for the first hidden layer only the box
minimum ``Σ_i min(G_i lo_i, G_i hi_i)``, an ``n₀``-long sum instead of a pass through every
layer. The values are those of a child-by-child pass up to rounding (a test checks this), and
they only order the search: any split keeps it complete and sound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from paper_repro.bounds.split_bounds import BoundResult, SplitBounder


def filtered_branch(
    bounder: SplitBounder, res: BoundResult, index: np.ndarray, candidates: int, chunk: int = 64
) -> np.ndarray:
    """The ReLU to split next for the domains ``index`` of ``res`` (``[M]`` indices into
    ``0 … N−1``; ``−1``: none free): among the ``candidates`` top-scored free unstable ReLUs
    (``res.score``), the one whose children have the largest sum of clipped bounds
    ``min(bound, 0)``. ``chunk``: parents per torch pass."""
    score = res.score[index]
    m, n = score.shape
    k = min(candidates, n)
    cand = np.argpartition(-score, k - 1, axis=1)[:, :k]  # [M, k]
    ok = np.isfinite(np.take_along_axis(score, cand, axis=1))
    sums = np.full((m, k), -np.inf)
    for start in range(0, m, chunk):
        rows = np.arange(start, min(m, start + chunk))
        value = children_bounds(bounder, res, index[rows], cand[rows])  # [2, r, k]
        sums[rows] = value.clip(max=0.0).sum(axis=0)
    sums = np.where(ok, sums, -np.inf)
    best = np.take_along_axis(cand, sums.argmax(axis=1)[:, None], axis=1)[:, 0]
    return np.where(ok.any(axis=1), best, -1)


def children_bounds(
    bounder: SplitBounder, res: BoundResult, parents: np.ndarray, cand: np.ndarray
) -> np.ndarray:
    """Bounds ``[2, M, k]`` (active child first) of the children of the domains ``parents``
    (``[M]``, rows of ``res``) split on ReLU ``cand[m, c]`` (``[M, k]``, free and unstable in
    the parent, or anything where the result is ignored), each with its parent's ``α, β, λ``,
    ``β = 0`` on the new split (not optimised, not certified: for ordering only)."""
    dt = bounder.dtype
    layers = bounder.typed(dt)[0]
    d = res.domains.take(parents)
    lo = torch.from_numpy(res.pre[0][parents]).to(dt)
    hi = torch.from_numpy(res.pre[1][parents]).to(dt)
    with torch.no_grad():
        relax = bounder.relaxations(lo, hi, torch.from_numpy(d.splits), len(layers))
        alpha, beta, lam = (torch.from_numpy(a).to(dt) for a in (d.alpha, d.beta, d.lam))
        # the parent's pass, keeping per hidden layer j the coefficients on h_j and ẑ_j, the
        # losses (−t) and the bound's part from the layers above h_j
        trace: dict = {}
        total = bounder.bound(relax, alpha, beta, lam, trace)[0]  # the parent's bound
        out = torch.empty((2, *cand.shape), dtype=dt)
        layer = np.searchsorted(bounder.offsets, cand, side="right")  # hidden layer 1 … L−1
        for k in np.unique(layer):
            where = np.nonzero(layer == k)
            m_idx = torch.from_numpy(where[0])
            local = torch.from_numpy(cand[where] - bounder.offsets[k - 1])
            g_k, lam_k, loss_k, _ = trace[k]
            g_n, lam_n = g_k[m_idx, local], lam_k[m_idx, local]
            base = total[m_idx] + loss_k[m_idx, local]  # the child's term is 0: −t_n = loss
            w, b = layers[k - 1]
            both, local2 = torch.cat([m_idx, m_idx]), torch.cat([local, local])
            delta = torch.cat([g_n, torch.zeros_like(g_n)]) - torch.cat([lam_n, lam_n])
            g_below, _, _, above = trace[k - 1]
            tail = bounder.below(
                g_below[both] + delta[:, None] * w[local2],
                k - 1,
                [r.take(both) for r in relax[: k - 1]],
                alpha[both],
                beta[both],
            )[0]
            tail_parent = (total - above)[both]
            value = (torch.cat([base, base]) + delta * b[local2] + tail - tail_parent).view(2, -1)
            out[0][where], out[1][where] = value[0], value[1]
    return out.numpy().astype(np.float64)
