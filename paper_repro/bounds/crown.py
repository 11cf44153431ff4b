"""CROWN / DeepPoly backward linear bounds on logit margins ``c @ Z(x′)`` (numpy float64).

Each unstable ReLU (``l < 0 < u``) is bounded above by the chord ``z ≤ u (ẑ − l) / (u − l)`` and
below by ``z ≥ α ẑ``; CROWN (Zhang et al., 2018) and DeepPoly (Singh et al., 2019) choose
``α = 1`` if ``u ≥ −l`` else ``0`` (:attr:`LowerSlope.ADAPTIVE`). Coefficients are propagated
backwards from the margin rows to the input, layer bounds are computed the same way layer by
layer, and the input term is minimised exactly over the region (L∞ ball ∩ [0,1]^n, or the L1
ball ∩ [0,1]^n by a fractional knapsack). All arithmetic is rounded outward
(:mod:`paper_repro.bounds.outward`): the lower bounds are sound for the exact real network.
"""

from __future__ import annotations

import enum
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


class LowerSlope(enum.StrEnum):
    """``α`` of the lower ReLU bound ``z ≥ α ẑ`` for unstable neurons."""

    ADAPTIVE = "adaptive"  # CROWN / DeepPoly: 1 if u ≥ −l else 0
    ZERO = "zero"
    ONE = "one"
    PARALLEL = "parallel"  # u / (u − l): Wong & Kolter's fixed dual choice (their Eq. 8)


@dataclass(frozen=True)
class CrownOptions:
    """``lower_slope``: see :class:`LowerSlope`; ``clip``: intersect the ball with [0,1]^n."""

    lower_slope: LowerSlope = LowerSlope.ADAPTIVE
    clip: bool = True


@dataclass(frozen=True)
class MarginBounds:
    """Result of :func:`crown_margins`.

    Attributes:
        lower: ``[m]`` sound lower bounds on ``c_i @ Z(x′)`` over the region.
        layer_bounds: ``(lo, hi)`` of each hidden pre-activation, ``[n_k]`` each.
        unstable: number of hidden ReLUs with ``lo < 0 < hi``.
    """

    lower: np.ndarray
    layer_bounds: list[tuple[np.ndarray, np.ndarray]]
    unstable: int


def make_region(x: np.ndarray, eps: float, norm: Norm | str, clip: bool = True) -> Region:
    """The input set ``{x′ : ‖x′ − x‖ ≤ eps}`` (∩ ``[0,1]^n`` when ``clip``; L1 always clips)."""
    norm = Norm.parse(norm)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if norm == Norm.LINF:
        return BoxRegion.linf(x, float(eps), clip=clip)
    if not clip:
        raise PaperReproError("the L1 region is only implemented intersected with [0,1]^n")
    return L1Region(x, float(eps))


def crown_rule(lower_slope: LowerSlope = LowerSlope.ADAPTIVE) -> SlopeRule:
    """The CROWN slope rule: ``Λ = g`` (active), ``0`` (inactive), and for unstable neurons
    ``g·u/(u−l)`` where ``g < 0`` (upper chord) or ``g·α`` where ``g ≥ 0`` (lower line)."""
    lower_slope = LowerSlope(lower_slope)

    def rule(_k: int, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        unstable = (lo < 0) & (hi > 0)
        width = np.where(unstable, hi - lo, 1.0)
        chord = np.where(unstable, hi / width, 0.0)
        if lower_slope == LowerSlope.ADAPTIVE:
            alpha = (hi >= -lo).astype(np.float64)
        elif lower_slope == LowerSlope.ZERO:
            alpha = np.zeros_like(lo)
        elif lower_slope == LowerSlope.ONE:
            alpha = np.ones_like(lo)
        else:
            alpha = chord
        # per neuron (small arrays), the slope for g < 0 and for g ≥ 0: the chord / α where
        # unstable, 1 where active, 0 where inactive; then one product with g (large)
        active = (lo >= 0).astype(np.float64)
        neg = np.where(unstable, chord, active)
        pos = np.where(unstable, alpha, active)
        return g * np.where(g < 0, neg, pos)

    return rule


def margin_matrix(num_classes: int, label: int, targets: list[int] | None = None) -> np.ndarray:
    """Rows ``e_label − e_j`` for ``j`` in ``targets`` (default: every ``j ≠ label``), shape
    ``[len(targets), num_classes]``: Wong & Kolter's ``c = e_y 1ᵀ − I`` without its zero row."""
    if targets is None:
        targets = [j for j in range(num_classes) if j != label]
    c = np.zeros((len(targets), num_classes))
    for r, j in enumerate(targets):
        c[r, label] += 1.0
        c[r, j] -= 1.0
    return c


def crown_layer_bounds(
    net: ReluNetwork, region: Region, options: CrownOptions = CrownOptions()
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound bounds ``(lo, hi)`` (``[n_k]``) on every hidden pre-activation over ``region``."""
    return layer_bounds(net, region, crown_rule(options.lower_slope))


def crown_margins(
    net: ReluNetwork,
    x: np.ndarray,
    eps: float,
    c: np.ndarray,
    norm: Norm | str = Norm.LINF,
    options: CrownOptions = CrownOptions(),
) -> MarginBounds:
    """Sound lower bounds on ``c @ Z(x′)`` for all ``x′`` with ``‖x′ − x‖ ≤ eps`` (∩ [0,1]^n).

    Args:
        net: the ReLU network.
        x: centre, ``[n_0]``.
        eps: radius in the given norm (pixel units in [0,1]).
        c: ``[m, n_L]`` margin rows, e.g. :func:`margin_matrix`.
        norm: ``linf`` or ``l1``.
        options: see :class:`CrownOptions`.
    """
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    if c.shape[1] != net.num_classes:
        raise PaperReproError(f"margin rows have {c.shape[1]} columns, expected {net.num_classes}")
    region = make_region(x, eps, norm, options.clip)
    rule = crown_rule(options.lower_slope)
    bounds = layer_bounds(net, region, rule)
    lower = linear_lower_bound(net, c, len(net.weights), bounds, region, rule)
    unstable = int(sum(((lo < 0) & (hi > 0)).sum() for lo, hi in bounds))
    return MarginBounds(lower, bounds, unstable)
