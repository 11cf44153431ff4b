"""Tighter hidden-layer bounds over the whole box by a small branch and bound per bound.

The engine's node bounds use the root's pre-activation bounds of every hidden layer from the
second on (:func:`paper_repro.exact.engines.split_bab.root_bounds`: CROWN, then α-CROWN per
layer). On a deep network those are loose where it hurts: each layer's relaxation is built on
the looser bounds of the layer below, so the gap grows with depth. On 784-256×4, image 485,
ε = 0.03 (the development benchmark), α-CROWN's second-layer bounds are 1.8× as wide as the
range a gradient attack on each neuron reaches, the fourth layer's 3.4×; shrinking the
second layer's halfway towards the attack's range alone moves the root bounds of the nine
cases from −4.4 … +0.2 to −2.2 … +3.0.

Here each bound of an unstable ReLU of hidden layer ``k`` (its lower bound ``ẑ_k,i ≥ l`` and
its upper bound, as the lower bound of ``−ẑ_k,i``) is the objective of its own branch and
bound on the sub-network of layers ``1 … k``: the root's subdomain is split on the ReLU whose
relaxation costs that bound most, children are bounded by
:class:`~paper_repro.bounds.split_bounds.SplitBounder` (α/β-CROWN with optimised split
multipliers, all bounds of the layer in one batch), and at each level the ``per_row`` worst
leaves of every bound below zero are split again, up to ``depth`` levels. The leaves of a
bound's tree cover the box (a split's two children cover their parent; a leaf whose clipped
bounds cross holds no input), so the least of their bounds is a bound over the box; each leaf
is certified by the outward-rounded routine
(:func:`~paper_repro.bounds.outward.linear_lower_bound`) with that bound's own row, and a
refined bound only ever replaces a looser one. The layers are refined in order, and after each
the layers above are tightened again by α-CROWN on the new bounds.

This is the "refine intermediate bounds" step of complete verifiers (α,β-CROWN refines them
with a MILP solver before its branch and bound), done with the engine's own certified bounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from paper_repro.bounds.split_bounds import Domains, SplitBounder, children
from paper_repro.network import ReluNetwork

Bounds = list[tuple[np.ndarray, np.ndarray]]
_OFF = -1e4  # λ-logit of the other rows: exp(−10⁴) is exactly 0 in float32 and float64


@dataclass(frozen=True)
class RefineOptions:
    """``layers``: hidden layers refined, from the second on (``16``: every hidden layer of the
    networks met so far; the deadline stops it earlier); ``depth``: split levels per bound;
    ``per_row``: leaves of each bound split per level (its worst ones below zero);
    ``iterations`` / ``lr`` / ``lr_beta``: Adam steps on each level's subdomains;
    ``tighten_iterations`` / ``tighten_lr``: α-CROWN steps on the layers above after each
    refined layer; ``chunk``: subdomains per torch batch."""

    layers: int = 16
    depth: int = 10
    per_row: int = 16
    iterations: int = 4
    lr: float = 0.1
    lr_beta: float = 0.3
    tighten_iterations: int = 20
    tighten_lr: float = 0.1
    chunk: int = 4096

    def __post_init__(self) -> None:
        if min(self.layers, self.depth, self.per_row, self.chunk) < 0 or self.chunk == 0:
            raise ValueError("refinement counts must be ≥ 0 (chunk ≥ 1)")


@dataclass(frozen=True)
class RefineReport:
    """What a refinement did: ``layers`` refined (1-based hidden layer numbers), ``nodes``
    bounded, ``stabilised`` ReLUs that became stable (over all hidden layers, including the
    ones tightened after), ``complete``: every planned layer was refined to its full depth
    (``False``: the deadline cut it short; the bounds are sound either way)."""

    layers: tuple[int, ...]
    nodes: int
    stabilised: int
    complete: bool


def refine_bounds(
    net: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    pre: Bounds,
    options: RefineOptions = RefineOptions(),
    deadline: float = np.inf,
) -> tuple[Bounds, RefineReport]:
    """Sound bounds ``(l_k, u_k)`` of every hidden pre-activation over the box ``[lo, hi]``
    (``[n₀]`` each), at least as tight as the sound ``pre`` (``[n_k]`` each, one pair per hidden
    layer): hidden layers ``2 … 1 + options.layers`` refined by :func:`refine_layer` in order,
    each followed by α-CROWN on the layers above. Stops refining at ``deadline``
    (``time.monotonic()`` seconds); what is done by then is kept."""
    out = [(np.array(a, np.float64), np.array(b, np.float64)) for a, b in pre]
    unstable = sum(int(((a < 0) & (b > 0)).sum()) for a, b in out)
    done: list[int] = []
    nodes, complete = 0, True
    for k in range(2, min(len(out), 1 + options.layers) + 1):
        if time.monotonic() >= deadline:
            complete = False
            break
        out[k - 1], n, full = refine_layer(net, lo, hi, out, k, options, deadline)
        nodes += n
        complete &= full
        done.append(k)
        if k < len(out) and options.tighten_iterations:
            bounder = SplitBounder(net, lo, hi, out, np.zeros((1, net.num_classes)))
            bounder.tighten(options.tighten_iterations, options.tighten_lr, first=k + 1)
            out = [(bounder.root_lo[s].copy(), bounder.root_hi[s].copy()) for s in bounder.slices()]
    left = sum(int(((a < 0) & (b > 0)).sum()) for a, b in out)
    return out, RefineReport(tuple(done), nodes, unstable - left, complete)


def refine_layer(
    net: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    pre: Bounds,
    k: int,
    options: RefineOptions = RefineOptions(),
    deadline: float = np.inf,
) -> tuple[tuple[np.ndarray, np.ndarray], int, bool]:
    """Hidden layer ``k``'s bounds (``k ≥ 2``; ``[n_k]`` each) refined by a branch and bound
    per bound of each of its unstable ReLUs (see the module docstring), on the sound bounds
    ``pre`` of layers ``1 … k``. Returns the bounds (never looser than ``pre[k − 1]``), the
    number of subdomains bounded and whether every level was done before ``deadline``."""
    lk, uk = (np.asarray(a, np.float64) for a in pre[k - 1])
    unstable = np.flatnonzero((lk < 0) & (uk > 0))
    if unstable.size == 0 or options.depth == 0:
        return (lk.copy(), uk.copy()), 0, True
    w, b = net.weights[k - 1][unstable], net.biases[k - 1][unstable]
    sub = ReluNetwork.from_arrays(
        [*net.weights[: k - 1], np.vstack([w, -w])],
        [*net.biases[: k - 1], np.concatenate([b, -b])],
    )
    t = 2 * unstable.size  # rows: +ẑ (lower bounds) then −ẑ (upper bounds)
    rows = np.eye(t)
    bounder = SplitBounder(sub, lo, hi, pre[: k - 1], rows, True, torch.float32)
    root = bounder.root()
    lam = np.full((t, t), _OFF)
    lam[np.arange(t), np.arange(t)] = 0.0  # each subdomain bounds its own row (one-hot λ)
    dom = Domains(*(np.repeat(a, t, axis=0) for a in (root.splits, root.alpha, root.beta)), lam)
    owner = np.arange(t)
    best = np.full(t, np.inf)
    nodes, full = 0, True
    for level in range(options.depth + 1):
        lower, dom, branch, empty = _optimise(bounder, dom, options)
        nodes += len(owner)
        split = np.zeros(len(owner), bool)
        if level < options.depth and time.monotonic() < deadline:
            open_ = ~empty & (branch >= 0) & (lower < 0)
            split[_worst(lower, owner, open_, options.per_row)] = True
        elif level < options.depth:
            full = False
        leaf = ~split & ~empty  # empty subdomains hold no input: no bound needed
        _certify_into(best, bounder, dom, owner, leaf, rows, options.chunk)
        if not split.any():
            break
        idx = np.flatnonzero(split)
        dom, owner = children(dom.take(idx), branch[idx]), np.concatenate([owner[idx], owner[idx]])
    n = unstable.size
    new_l, new_u = lk.copy(), uk.copy()
    # a bound with no non-empty leaf (impossible on a non-empty box) stays as it was
    low, up = lk[unstable], uk[unstable]
    new_l[unstable] = np.where(np.isfinite(best[:n]), np.maximum(low, best[:n]), low)
    new_u[unstable] = np.where(np.isfinite(best[n:]), np.minimum(up, -best[n:]), up)
    return (new_l, new_u), nodes, full


def _optimise(bounder: SplitBounder, dom: Domains, options: RefineOptions):
    """Torch bounds, optimised domains, branching ReLUs and emptiness of ``dom``, by chunks."""
    parts = [
        bounder.optimise(
            dom.take(slice(c, c + options.chunk)), options.iterations, options.lr, options.lr_beta
        )
        for c in range(0, len(dom), options.chunk)
    ]
    lower, branch, empty = (np.concatenate([getattr(p, f) for p in parts]) for f in _RESULT)
    return lower, Domains.concat([p.domains for p in parts]), branch, empty


_RESULT = ("lower", "branch", "empty")


def _worst(lower: np.ndarray, owner: np.ndarray, ok: np.ndarray, per_row: int) -> np.ndarray:
    """Indices of at most ``per_row`` subdomains per owner among ``ok``, the lowest first."""
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return idx
    idx = idx[np.lexsort((lower[idx], owner[idx]))]
    rank = np.arange(idx.size) - np.searchsorted(owner[idx], owner[idx], side="left")
    return idx[rank < per_row]


def _certify_into(best, bounder, dom, owner, leaf, rows, chunk) -> None:
    """``best[r] = min(best[r], certified bound)`` over the leaves of each row ``r``, each
    certified with its own row of ``rows`` (not with λ: soundness does not rest on λ)."""
    idx = np.flatnonzero(leaf)
    for c in range(0, idx.size, chunk):
        i = idx[c : c + chunk]
        np.minimum.at(best, owner[i], bounder.certify(dom.take(i), rows=rows[owner[i]]))
