"""A branch-and-bound node's own bounds of a hidden layer, under its splits (β-CROWN's
intermediate bounds, Wang et al., 2021).

:class:`~paper_repro.bounds.split_bounds.SplitBounder` bounds a node with the root's
pre-activation bounds clipped to the node's splits (and the second layer's updated by
:mod:`~paper_repro.bounds.split_second_layer`). Those ignore what the splits say about the
*input*: a split ``ẑ₁ⱼ ≤ 0`` cuts the box by a half-space, which can tighten every deeper
pre-activation. Here the bounds of hidden layer ``k`` are recomputed on the node itself: for each
of its unstable ReLUs, the rows ``+ẑ_kᵢ`` and ``−ẑ_kᵢ`` get the node's backward pass through
layers ``k − 1 … 1`` with their own ``α`` (lower ReLU slopes) and ``β`` (the multipliers of the
node's split constraints), improved by a few Adam steps, and the bound is then recomputed by the
outward-rounded :func:`~paper_repro.bounds.outward.linear_lower_bound` with the same ``α, β``.
Any ``α ∈ [0, 1]``, ``β ≥ 0`` gives a valid bound over the node's subdomain, so the result is
sound for the node and every node below it (children inherit it, :attr:`Domains.own`).

Measured on 784-256×2, image 3492, ε 0.03, target 3 (a search left open after 120 s; 48 open
nodes after 15 s, a throwaway script): recomputing the second layer's bounds this way (8 Adam
steps, float32) made 92 → 55–80 of its ReLUs unstable in the depth-12 nodes and moved their
bounds from −0.53 … −1.05 to +0.16 … −0.63; of the 24 deepest nodes 21 rose above 0.
"""

from __future__ import annotations

import numpy as np
import torch

from paper_repro.bounds.outward import linear_lower_bound
from paper_repro.bounds.split_bounds import Domains, SplitBounder

_NODES = 32  # nodes per torch batch: [nodes, rows, n₀] float32 ≈ 20 MB at 2 × 100 rows, n₀ = 784


def refresh(
    bounder: SplitBounder,
    domains: Domains,
    layer: int = 2,
    iterations: int = 8,
    lr: float = 0.1,
) -> Domains:
    """``domains`` with their own bounds (:attr:`Domains.own`) of the second hidden layer
    recomputed under their splits, as in the module docstring.

    Args:
        bounder: the search's bounder (network, box, root bounds).
        domains: ``B`` subdomains; their ``α`` are the rows' lower slopes of the first layer.
        layer: the hidden layer whose bounds are recomputed (2: only the second is supported).
        iterations: Adam steps on the rows' ``β`` (0: ``β = 0``, the splits only clip).
        lr: Adam's step for ``β``.

    Returns:
        The same subdomains with ``lo``/``hi`` (``[B, N]``, float64) set: their old bounds, and
        the second layer's tightened where the certified bound is tighter. A subdomain whose
        bounds now cross holds no input (:meth:`SplitBounder.optimise` reports it ``empty``).
    """
    if layer != 2 or len(bounder.layers) < 3:
        raise ValueError(f"only the second of at least two hidden layers, not layer {layer}")
    lo, hi = bounder.clipped(domains.splits, domains.own)
    first, s = bounder.slices()[:2]
    unstable = (lo[:, s] < 0) & (hi[:, s] > 0)
    new_lo, new_hi = lo.copy(), hi.copy()
    for start in range(0, len(domains), _NODES):
        nodes = np.arange(start, min(start + _NODES, len(domains)))
        owner, neuron = np.nonzero(unstable[nodes])
        if owner.size == 0:
            continue
        b = nodes[owner]
        rows = np.concatenate([b, b])
        onehot = np.zeros((len(rows), s.stop - s.start))
        onehot[np.arange(len(rows)), np.concatenate([neuron, neuron])] = np.repeat(
            [1.0, -1.0], len(b)
        )
        lo_r, hi_r, split_r = lo[rows], hi[rows], domains.splits[rows]
        alpha = np.clip(domains.alpha[rows], 0.0, 1.0)
        node = np.concatenate([owner, owner])
        beta = _split_multipliers(
            bounder, (lo_r, hi_r), split_r, alpha, onehot, node, iterations, lr
        )
        pre = [(lo_r[:, first], hi_r[:, first])]
        rule = SplitBounder._rule([alpha[:, first]], [beta], [split_r[:, first]])
        bound = linear_lower_bound(bounder.net, onehot, 2, pre, bounder.region, rule)
        n, cols = len(b), s.start + neuron
        new_lo[b, cols] = np.maximum(new_lo[b, cols], bound[:n])
        new_hi[b, cols] = np.minimum(new_hi[b, cols], -bound[n:])
    return Domains(domains.splits, domains.alpha, domains.beta, domains.lam, new_lo, new_hi)


def _split_multipliers(bounder, pre, splits, alpha, onehot, node, iterations, lr) -> np.ndarray:
    """The multipliers ``β ≥ 0`` (``[R, n₁]``, float64, 0 off the split ReLUs) of the first
    layer's split constraints in the bounds of ``onehot @ ẑ₂`` (``[R, n₂]``), by Adam with the
    rows' slopes ``alpha`` fixed. Only the split columns of ``Λ`` move with ``β``, so with
    ``a₀``, the input coefficients at ``β = 0``, a row's bound is
    ``c₀ + Σ_s β_s·(σ_s b₁ₛ + t_s) + min_box (a₀ + Σ_s β_s σ_s W₁[s])`` (``σ = −1`` active,
    ``+1`` inactive; ``t_s`` the clipped ``l`` resp. ``−u``): ``R × splits × n₀`` a step
    instead of ``R × n₁ × n₀``. The rows of one node (``node``: ``[R]``, ``0 … nodes − 1``)
    share ``W₁[s]``. The gradient is written out: ``∂/∂β_s = σ_s (b₁ₛ + W₁[s]·x*) + t_s``
    with ``x*`` the box corner minimising ``a·x``."""
    first = bounder.slices()[0]
    n1 = first.stop
    beta_full = np.zeros((len(onehot), n1))
    split1 = splits[:, first]
    if iterations == 0 or not split1.any():
        return beta_full
    dt = bounder.dtype
    (w1, b1), lo_t, hi_t = bounder.typed(dt)[0][0], *bounder.typed(dt)[1:]
    lo, hi = (torch.from_numpy(a[:, first]).to(dt) for a in pre)
    relax = bounder.relaxations(lo, hi, torch.from_numpy(split1), 2)
    coef = torch.from_numpy(onehot).to(dt)
    a_t = torch.from_numpy(alpha[:, first]).to(dt)
    with torch.no_grad():
        value, a0, _ = bounder.backward(coef, 2, relax, a_t, torch.zeros_like(a_t))
        c0 = value - torch.minimum(a0 * lo_t, a0 * hi_t).sum(1)
    # group the rows by their splits: [nodes, rows per node (padded), …]
    order = np.argsort(node, kind="stable")
    first_row = np.searchsorted(node[order], np.arange(int(node.max()) + 1))
    keys = split1[order[first_row]]
    pos = np.empty(len(node), int)
    pos[order] = np.arange(len(node)) - first_row[node[order]]
    width = int(pos.max()) + 1
    # each node's split ReLUs, padded with index n₁ (a zero row of W₁, σ = 0)
    smax = int((keys != 0).sum(axis=1).max())
    ranked = np.argsort(keys == 0, axis=1, kind="stable")[:, :smax]
    valid = np.take_along_axis(keys, ranked, axis=1) != 0
    idx = np.where(valid, ranked, n1)
    sgn_np = np.where(np.take_along_axis(keys, ranked, axis=1) > 0, -1.0, 1.0) * valid
    rep = order[first_row]  # one row of each node, for its clipped bounds
    lo_s = np.take_along_axis(pre[0][rep][:, first], ranked, axis=1)
    hi_s = np.take_along_axis(pre[1][rep][:, first], ranked, axis=1)
    term = np.where(sgn_np < 0, np.maximum(lo_s, 0.0), -np.minimum(hi_s, 0.0))
    lin_np = (sgn_np * np.append(b1.double().numpy(), 0.0)[idx] + term) * valid
    w_nodes = torch.cat([w1, torch.zeros((1, w1.shape[1]), dtype=dt)])[torch.from_numpy(idx)]
    a0p = torch.zeros((len(keys), width, a0.shape[1]), dtype=dt)
    a0p[node, pos] = a0
    c0p = torch.zeros((len(keys), width), dtype=dt)
    c0p[node, pos] = c0
    sgn, lin = torch.from_numpy(sgn_np).to(dt), torch.from_numpy(lin_np).to(dt)
    beta = torch.zeros((len(keys), width, smax), dtype=dt)
    best, keep = torch.full(c0p.shape, -torch.inf, dtype=dt), beta.clone()
    beta.grad = torch.zeros_like(beta)
    opt = torch.optim.Adam([beta], lr=lr, fused=True)
    w_t = w_nodes.transpose(1, 2)
    for it in range(iterations + 1):
        a = torch.baddbmm(a0p, beta * sgn[:, None, :], w_nodes)
        x_star = torch.where(a >= 0, lo_t, hi_t)
        value = c0p + (beta * lin[:, None, :]).sum(2) + (a * x_star).sum(2)
        better = value > best
        best = torch.where(better, value, best)
        keep[better] = beta[better]
        if it == iterations:
            break
        ascent = lin[:, None, :] + sgn[:, None, :] * torch.bmm(x_star, w_t)
        beta.grad.copy_(-ascent)
        opt.step()
        beta.clamp_(min=0.0)
    per_row = keep[node, pos].double().numpy() * valid[node]
    np.put_along_axis(beta_full, ranked[node], per_row, axis=1)
    return beta_full
