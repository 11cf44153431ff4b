"""Symbolic (backward, CROWN/DeepPoly-style) pre-activation bounds with optional fixed ReLU phases.

Each ReLU ``a = max(z, 0)`` with ``z ∈ [l, u]``, ``l < 0 < u`` is enclosed by the triangle
relaxation (Ehlers, 2017; Wong & Kolter, 2018, Eq. 3): ``α z ≤ a ≤ s (z − l)`` with ``s = u / (u −
l)`` and ``α ∈ {0, 1}`` (the adaptive lower line). A layer's pre-activations are bounded by
substituting these lines backwards to a linear function of the input, whose exact range over the
query region is given by :func:`paper_repro.bounds.interval.linear_range`. Branch-and-bound nodes
pass ``fixed`` phases (``+1`` active, ``−1`` inactive, ``0`` free) that make the corresponding
ReLUs linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paper_repro.bounds.interval import REL_MARGIN, Bounds, InputRegion, linear_range
from paper_repro.network import ReluNetwork

Phases = list[np.ndarray]
"""Per hidden layer, int8 ``[n_k]``: ``+1`` fixed active, ``−1`` fixed inactive, ``0`` free."""


@dataclass(frozen=True)
class ReluRelaxation:
    """Linear enclosure ``alpha·z ≤ a ≤ slope·z + intercept`` of one hidden layer, each
    ``[n_k]``.
    """

    alpha: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray


def relax_layer(lo: np.ndarray, hi: np.ndarray, fixed: np.ndarray | None = None) -> ReluRelaxation:
    """Triangle relaxation for pre-activation bounds ``[lo, hi]`` (``[n]``) and fixed phases.

    Stable or fixed ReLUs get the exact line (``a = z`` or ``a = 0``). The intercept is rounded up
    so the upper line stays above ``relu`` at both ends of ``[lo, hi]`` despite float rounding.
    """
    if fixed is None:
        inactive = hi <= 0.0
        active = ~inactive & (lo >= 0.0)
    else:
        inactive = (hi <= 0.0) | (fixed < 0)
        active = ~inactive & ((lo >= 0.0) | (fixed > 0))
    unstable = ~(inactive | active)
    slope = np.where(unstable, hi / np.where(unstable, hi - lo, 1.0), active.astype(float))
    top = np.maximum(-slope * lo, hi - slope * hi)  # the line's excess over relu at lo and hi
    intercept = np.where(unstable, top + 4e-16 * (np.abs(lo) + np.abs(hi)) + 1e-300, 0.0)
    alpha = np.where(unstable, hi > -lo, active).astype(float)
    return ReluRelaxation(alpha=alpha, slope=slope, intercept=intercept)


def apply_phases(lo: np.ndarray, hi: np.ndarray, fixed: np.ndarray | None) -> tuple:
    """Restrict ``[lo, hi]`` to the fixed phases (active ⇒ ``z ≥ 0``, inactive ⇒ ``z ≤ 0``)."""
    if fixed is None:
        return lo, hi
    return np.where(fixed > 0, np.maximum(lo, 0.0), lo), np.where(
        fixed < 0, np.minimum(hi, 0.0), hi
    )


def symbolic_bounds(
    network: ReluNetwork,
    region: InputRegion,
    prior: Bounds | None = None,
    fixed: Phases | None = None,
    first: tuple[np.ndarray, np.ndarray] | None = None,
    cache: dict | None = None,
    symbolic_outputs: bool = True,
    relaxations: list[ReluRelaxation] | None = None,
) -> Bounds:
    """Backward symbolic bounds on every affine layer's outputs, intersected with ``prior``.

    Args:
        network: the ReLU MLP.
        region: the input region ``R(x, δ)``.
        prior: sound bounds to intersect with (e.g. IBP or LP-tightened bounds for a radius ≥ δ).
        fixed: branch-and-bound phase splits; hidden-layer bounds are clipped to them.
        first: ``linear_range`` of the first layer over ``region``, if already computed (it does
            not depend on ``fixed``; branch-and-bound nodes share it).
        cache: memo of the backward bounds of layer ``k`` keyed by ``fixed[:k]``; valid only
            for one ``(region, prior)`` pair (branch-and-bound nodes that differ only in deeper
            splits share their shallower layers' bounds).
        symbolic_outputs: ``False``: bound the logits by interval arithmetic over the last hidden
            layer's bounds instead (looser, about 10× cheaper). Enough where an LP re-derives the
            logits from the same relaxation, as in branch-and-bound nodes: there they only box
            the logit and slack columns, which the relaxation's rows already imply (on the
            median-band L∞ benchmark instances: the same trees, about 4 % less time).
        relaxations: if given (empty), filled with each hidden layer's :func:`relax_layer` of
            the returned bounds and ``fixed`` (what
            :meth:`~paper_repro.bounds.relaxed_lp.RelaxedLP.configure` would compute again).

    Returns:
        ``[(lo_k, hi_k)]`` for every affine layer (hidden pre-activations, then logits). A node
        whose splits are infeasible shows up as some ``lo > hi``.
    """
    n_layers = len(network.weights)
    memo = cache if cache is not None and fixed is not None else None
    mags = None if memo is None else memo.get("mag")
    if mags is None:  # per layer, Σ|terms| of its outputs over the region (the margins' scale)
        mags = _magnitudes(network, region)
        if memo is not None:
            memo["mag"] = mags
    out: Bounds = []
    relax: list[ReluRelaxation] = [] if relaxations is None else relaxations
    for k in range(n_layers):
        w, b = network.weights[k], network.biases[k]
        if k == 0:
            lo, hi = first if first is not None else linear_range(w, b, region)
        elif k == n_layers - 1 and not symbolic_outputs:
            lo, hi = _interval_layer(w, b, out[-1], mags[k])
        else:
            key = None if memo is None else (k, b"".join(f.tobytes() for f in fixed[:k]))
            if memo is not None and key in memo:
                lo, hi = memo[key]
            else:
                lo, hi = _backward(network, k, relax, region)
                pad = REL_MARGIN * mags[k]
                lo, hi = lo - pad, hi + pad
                if memo is not None:
                    memo[key] = (lo, hi)
        if prior is not None:
            lo, hi = np.maximum(lo, prior[k][0]), np.minimum(hi, prior[k][1])
        if k < n_layers - 1:
            fk = None if fixed is None else fixed[k]
            lo, hi = apply_phases(lo, hi, fk)
            relax.append(relax_layer(lo, hi, fk))
        out.append((lo, hi))
    return out


def _magnitudes(network: ReluNetwork, region: InputRegion) -> list[np.ndarray]:
    """Per affine layer ``k``, ``|W_k| m_{k−1} + |b_k|`` from ``m_0 = max(|lo|, |hi|)`` of the
    input box, ``[n_{k+1}]``: a bound on the magnitude of every term of the layer's outputs."""
    mag = np.maximum(np.abs(region.lo), np.abs(region.hi))
    out = []
    for w, b in zip(network.weights, network.biases, strict=True):
        mag = np.abs(w) @ mag + np.abs(b)
        out.append(mag)
    return out


def _interval_layer(
    w: np.ndarray, b: np.ndarray, prev: tuple[np.ndarray, np.ndarray], mag: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``W relu(z) + b`` for ``z ∈ prev`` (``[n]`` each) by interval arithmetic,
    widened by ``REL_MARGIN · mag`` (``mag`` ≥ the sum of the terms' magnitudes, ``[m]``)."""
    a_lo, a_hi = np.maximum(prev[0], 0.0), np.maximum(prev[1], 0.0)
    pos, neg = np.maximum(w, 0.0), np.minimum(w, 0.0)
    pad = REL_MARGIN * mag
    return pos @ a_lo + neg @ a_hi + b - pad, pos @ a_hi + neg @ a_lo + b + pad


def _backward(
    network: ReluNetwork, k: int, relax: list[ReluRelaxation], region: InputRegion
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of layer ``k``'s outputs from the relaxations of hidden layers ``0..k−1``.

    One backward pass of upper bounds for the stacked functions ``[f; −f]`` (``f = W_k a + b_k``):
    the upper bound of ``−f`` is minus the lower bound of ``f`` (negation is exact in floats, so
    this is the lower pass itself, at half the calls)."""
    w, b = network.weights[k], network.biases[k]
    m = w.shape[0]
    a, c = _upper_substitute(network, relax[:k], np.concatenate([w, -w]), np.concatenate([b, -b]))
    _, hi = linear_range(a, c, region)
    return -hi[m:], hi[:m]


def _upper_substitute(
    network: ReluNetwork, relax: list[ReluRelaxation], a: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``a @ act_h + c`` (``act_h`` the last relaxed hidden layer's activations, ``h =
    len(relax) − 1``) bounded from above by a linear function of the input, ``(a′, c′)``:
    each ReLU replaced by its upper line where the coefficient is positive and its lower line
    where negative, then the affine layer below substituted, down to the input."""
    for j in range(len(relax) - 1, -1, -1):
        r = relax[j]
        pos, neg = np.maximum(a, 0.0), np.minimum(a, 0.0)
        c = c + pos @ r.intercept
        a = pos * r.slope + neg * r.alpha
        c, a = c + a @ network.biases[j], a @ network.weights[j]
    return a, c


def margin_lower_bounds(
    network: ReluNetwork,
    region: InputRegion,
    relax: list[ReluRelaxation],
    target: int,
    mags: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Sound lower bounds of ``logit_j − logit_target`` over ``region`` (``[m]``; the target's
    own entry is 0), by one backward pass through the hidden layers' relaxations ``relax``
    (e.g. those :func:`symbolic_bounds` filled for a branch-and-bound node, splits included).

    Some entry ``> 0`` proves that no point of the relaxation, hence of the region, classifies
    as ``target`` (ties count as the target's): the node can be discarded without an LP.
    """
    w, b = network.weights[-1], network.biases[-1]
    if mags is None:
        mags = _magnitudes(network, region)
    # upper bounds of g = logit_target − logit_j
    a, c = _upper_substitute(network, relax, w[target] - w, b[target] - b)
    _, hi = linear_range(a, c, region)
    lo = -hi - 2.0 * REL_MARGIN * (mags[-1] + mags[-1][target])
    lo[target] = 0.0
    return lo
