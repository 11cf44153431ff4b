"""Wong & Kolter's dual network bound (ICML 2018, Sec. 3.2–3.3), numpy float64.

Notation of the paper with 0-based layers here: ``ẑ_{k+1} = W_k z_k + b_k``, ``z_0 = x``,
``z_k = relu(ẑ_k)`` for hidden ``k = 1 … L−1``, logits ``ẑ_L``. For objective rows ``c``
(``[m, n_L]``) the dual network (their Eq. 7) is

    ν_L = −c,   ν̂_k = ν_{k+1} W_k,   ν_k = D_k ν̂_k  with, for unstable j (l < 0 < u),
    ν_{k,j} = u/(u−l) [ν̂_{k,j}]_+ − α_{k,j} [ν̂_{k,j}]_−,   (0 if u ≤ 0, ν̂ if l ≥ 0)

and the dual objective (their Eq. 6), a lower bound on ``min c ẑ_L`` over the relaxation (Eq. 4),

    J = −Σ_k ν_{k+1} b_k − x ν̂_0 − ε ‖ν̂_0‖₁ + Σ_k Σ_{j unstable} l_{k,j} [ν_{k,j}]_+ .

With ``clip`` the input term is minimised over the L∞ ball ∩ [0,1]^n instead of the plain ball
(``Σ_j min(−ν̂_{0,j} lo_j, −ν̂_{0,j} hi_j)``; the paper's formula is ``clip=False``). The layer
bounds ``l, u`` come from the same dual network with ``c = ±I`` (their Alg. 1, written layer by
layer) and ``α = u/(u−l)`` (their Eq. 8) unless given. :func:`dual_bound` returns both the plain
float ``J`` and a certified value from the outward-rounded evaluator of
:mod:`paper_repro.bounds.outward` (equal up to rounding, but sound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paper_repro.bounds.outward import (
    BoxRegion,
    L1Region,
    Region,
    SlopeRule,
    layer_bounds,
    linear_lower_bound,
)
from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm

Alpha = list[np.ndarray]
"""Per hidden layer ``k = 1 … L−1``: ``α_k`` in [0, 1], shape ``[n_k]`` or ``[m, n_k]``."""


@dataclass(frozen=True)
class DualBound:
    """Result of :func:`dual_bound`.

    Attributes:
        value: ``J_ε(x, g(c, α))`` (Eq. 6) in plain float64, ``[m]``.
        certified: a sound lower bound on ``min c ẑ_L`` (outward rounded), ``[m]``.
        layer_bounds: ``(l_k, u_k)`` for hidden ``k = 1 … L−1`` (``[n_k]`` each).
        nu_hat_input: ``ν̂`` at the input layer, ``[m, n_0]`` (for tests / inspection).
    """

    value: np.ndarray
    certified: np.ndarray
    layer_bounds: list[tuple[np.ndarray, np.ndarray]]
    nu_hat_input: np.ndarray


def wong_kolter_rule(alpha: Alpha | None = None) -> SlopeRule:
    """The dual network's choice as a slope rule: coefficient ``Λ_k = −ν_k`` on ``ẑ_k`` given
    ``g = −ν̂_k``; ``α`` defaults to ``u/(u−l)`` (Eq. 8)."""

    def rule(k: int, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return -_nu_from_nu_hat(-g, lo, hi, None if alpha is None else alpha[k - 1])

    return rule


def _nu_from_nu_hat(
    nu_hat: np.ndarray, lo: np.ndarray, hi: np.ndarray, alpha: np.ndarray | None
) -> np.ndarray:
    """Eq. 7: ``ν = D ν̂`` with the unstable rows ``u/(u−l)[ν̂]_+ − α[ν̂]_−``."""
    unstable = (lo < 0) & (hi > 0)
    d = np.where(unstable, hi / np.where(unstable, hi - lo, 1.0), 0.0)
    a = d if alpha is None else np.asarray(alpha, dtype=np.float64)
    if np.any(a < 0) or np.any(a > 1):
        raise PaperReproError("dual variables α must lie in [0, 1]")
    relaxed = d * np.maximum(nu_hat, 0.0) - a * np.maximum(-nu_hat, 0.0)
    return np.where(unstable, relaxed, np.where(lo >= 0, nu_hat, 0.0))


def dual_layer_bounds(
    net: ReluNetwork, x: np.ndarray, eps: float, clip: bool = True, norm: Norm | str = Norm.LINF
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Wong & Kolter's Alg. 1: bounds ``(l_k, u_k)`` of the hidden pre-activations over the
    ε-ball (∩ [0,1]^n if ``clip``), via ``J`` with ``c = ±I`` layer by layer; sound (outward)."""
    return layer_bounds(net, _region(x, eps, clip, norm), wong_kolter_rule())


def _region(x: np.ndarray, eps: float, clip: bool, norm: Norm | str) -> Region:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if Norm.parse(norm) == Norm.LINF:
        return BoxRegion.linf(x, float(eps), clip=clip)
    if not clip:
        raise PaperReproError("the L1 dual bound is only implemented intersected with [0,1]^n")
    return L1Region(x, float(eps))


def dual_bound(
    net: ReluNetwork,
    x: np.ndarray,
    eps: float,
    c: np.ndarray,
    *,
    clip: bool = True,
    bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    alpha: Alpha | None = None,
    norm: Norm | str = Norm.LINF,
) -> DualBound:
    """``J_ε(x, g(c, α))`` of Thm. 1 for each row of ``c`` (``[m, n_L]``), plus a certified value.

    Args:
        net, x, eps: network, centre ``[n_0]`` and L∞ radius.
        c: objective rows; ``J ≤ min c ẑ_L`` over the relaxed adversarial polytope.
        clip: intersect the L∞ ball with [0,1]^n (the query's domain).
        bounds: layer bounds ``(l, u)``; computed by :func:`dual_layer_bounds` if omitted.
        alpha: dual variables per hidden layer (Eq. 8's ``u/(u−l)`` if omitted).
        norm: ``linf`` (the paper) or ``l1`` (the paper's remark: the input term uses the dual
            norm ‖·‖∞; here, with the [0,1] box, its exact knapsack minimum).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    if c.shape[1] != net.num_classes or x.shape[0] != net.input_dim:
        raise PaperReproError("dual_bound: c or x does not fit the network")
    if alpha is not None and len(alpha) != len(net.weights) - 1:
        raise PaperReproError(f"alpha needs one array per hidden layer ({len(net.weights) - 1})")
    if bounds is None:
        bounds = dual_layer_bounds(net, x, eps, clip, norm)
    nu = -c  # ν_L
    value = np.zeros(c.shape[0])
    for k in range(len(net.weights) - 1, -1, -1):
        value -= nu @ net.biases[k]  # −ν_{k+1} b_k
        nu_hat = nu @ net.weights[k]  # ν̂_k = ν_{k+1} W_k (rows)
        if k == 0:
            break
        lo, hi = bounds[k - 1]
        nu = _nu_from_nu_hat(nu_hat, lo, hi, None if alpha is None else alpha[k - 1])
        unstable = (lo < 0) & (hi > 0)
        value += (np.where(unstable, lo, 0.0) * np.maximum(nu, 0.0)).sum(axis=1)
    region = _region(x, eps, clip, norm)
    if isinstance(region, L1Region):  # dual norm ‖·‖∞, with the box: exact knapsack minimum
        value += region.min_linear(-nu_hat)
    elif clip:
        value += np.minimum(-nu_hat * region.lo, -nu_hat * region.hi).sum(axis=1)
    else:
        value += -nu_hat @ x - eps * np.abs(nu_hat).sum(axis=1)
    certified = linear_lower_bound(
        net, c, len(net.weights), bounds, region, wong_kolter_rule(alpha)
    )
    return DualBound(value, certified, bounds, nu_hat)


def robust_certificate(
    net: ReluNetwork,
    x: np.ndarray,
    label: int,
    eps: float,
    clip: bool = True,
    norm: Norm | str = Norm.LINF,
) -> np.ndarray:
    """Certified lower bounds on ``Z_label − Z_j`` for ``j ≠ label`` (``[n_L − 1]``): Cor. 1's
    ``J_ε(x, g(e_y 1ᵀ − I))`` without the trivial ``j = y`` entry. All ``> 0`` ⇒ no ``x′`` in the
    ball reaches (or ties) another class."""
    from paper_repro.bounds.crown import margin_matrix

    c = margin_matrix(net.num_classes, label)
    return dual_bound(net, x, eps, c, clip=clip, norm=norm).certified
