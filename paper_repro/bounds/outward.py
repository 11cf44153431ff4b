"""Rigorous (outward-rounded) linear lower bounds shared by :mod:`.crown` and :mod:`.dual`.

Everything here is float64 numpy with an explicit rounding-error analysis: for a sum of ``n``
float products the computed value differs from the exact one by at most
``γ_n Σ|terms|`` with ``γ_n = n·u / (1 − n·u)``, ``u = 2^-53`` (Higham, *Accuracy and Stability*,
Sec. 3.1; holds for any summation order and with FMA, so for OpenBLAS/MKL ``dgemm`` too — it
assumes IEEE binary64 with round-to-nearest and no Strassen-type fast matrix products). Each
step subtracts such a term, with ``γ`` over-estimated and an absolute ``1e-300``-scale slack for
underflow, so every returned lower bound is ≤ the exact real-arithmetic minimum.

The core, :func:`linear_lower_bound`, is the Lagrangian / backward-propagation bound shared by
CROWN and by Wong & Kolter's dual network (their Thm. 1, Eq. 6): for *any* choice of the
coefficients ``Λ_k`` on the pre-activations ``ẑ_k`` (supplied by a :data:`SlopeRule`) it is sound,
because the per-neuron term ``min_{ẑ∈[l,u]} g·relu(ẑ) − Λ·ẑ`` is evaluated exactly at the
breakpoints ``{l, u, 0}``.

Batches: a :class:`BoxRegion` made by :meth:`BoxRegion.linf_batch` holds ``B`` boxes (``lo, hi``:
``[B, 1, n]``); :func:`linear_lower_bound` and :func:`layer_bounds` then bound ``B`` regions at
once with the same arithmetic (``c``: ``[m, n_L]`` or ``[B, m, n_L]``; results ``[B, m]``;
layer bounds ``[B, 1, n_k]``). Every reduction runs over the last axis, every error term is the
per-entry one above, so each image's bound has the same soundness argument as a single call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork

_U = 2.0**-53
_TINY = 1e-290


def gamma(n: int) -> float:
    """Higham's ``γ_{n+2}``, doubled for safety: bounds the error of a length-``n`` dot product."""
    nu = (n + 2) * _U
    return 2.0 * nu / (1.0 - nu)


def up(a: np.ndarray | float) -> np.ndarray:
    """The next float above ``a`` (for quantities that must be rounded up)."""
    return np.nextafter(np.asarray(a, dtype=np.float64), np.inf)


def matmul_err(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fl(a @ b)`` and an elementwise bound on its distance to the exact product (a stack
    ``a`` of ``[..., m, k]`` times a matrix or vector ``b`` is one 2-D product: one BLAS call
    instead of one per matrix of the stack; the bound holds for any summation order)."""
    if a.ndim > 2 and b.ndim <= 2:
        flat = a.reshape(-1, a.shape[-1])
        c, err = matmul_err(flat, b)
        shape = a.shape[:-1] + b.shape[1:]
        return c.reshape(shape), err.reshape(shape)
    c = a @ b
    k = a.shape[-1]
    err = gamma(k) * (np.abs(a) @ np.abs(b)) * (1.0 + gamma(k)) + _TINY * (k + 1)
    return c, err


def sum_lower(parts: list[np.ndarray]) -> np.ndarray:
    """A lower bound on the exact sum of the float vectors ``parts`` (each ``[m]``, or shapes
    that broadcast together, e.g. ``[m]`` and ``[B, m]``)."""
    parts = np.broadcast_arrays(*parts)
    total = np.sum(parts, axis=0)
    mag = np.sum(np.abs(parts), axis=0)
    return total - gamma(len(parts)) * mag * (1.0 + gamma(len(parts))) - _TINY


@dataclass(frozen=True)
class BoxRegion:
    """The box ``[lo, hi]`` (``[n]`` each): the L∞ ball ∩ ``[0,1]^n`` (or the plain ball)."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def linf(cls, x: np.ndarray, eps: float, clip: bool = True) -> BoxRegion:
        """``{x′ : ‖x′ − x‖∞ ≤ eps}`` (∩ ``[0,1]^n`` when ``clip``), rounded outward."""
        x = np.asarray(x, dtype=np.float64)
        if not (eps >= 0 and np.isfinite(eps)):
            raise PaperReproError(f"the radius must be finite and ≥ 0, got {eps}")
        lo = np.nextafter(x - eps, -np.inf)
        hi = np.nextafter(x + eps, np.inf)
        if clip:
            lo, hi = np.maximum(lo, 0.0), np.minimum(hi, 1.0)
        return cls(lo, hi)

    @classmethod
    def linf_batch(cls, xs: np.ndarray, eps: np.ndarray, clip: bool = True) -> BoxRegion:
        """``B`` boxes at once: :meth:`linf` of each row of ``xs`` (``[B, n]``) with its radius
        ``eps[b]`` (``[B]``), stored as ``[B, 1, n]`` to broadcast against ``[B, m, n]`` rows."""
        xs = np.asarray(xs, dtype=np.float64)
        eps = np.asarray(eps, dtype=np.float64).reshape(-1)
        if xs.ndim != 2 or eps.shape[0] != xs.shape[0]:
            raise PaperReproError("linf_batch needs [B, n] centres and [B] radii")
        if not np.all((eps >= 0) & np.isfinite(eps)):
            raise PaperReproError("every radius must be finite and ≥ 0")
        lo = np.nextafter(xs - eps[:, None], -np.inf)
        hi = np.nextafter(xs + eps[:, None], np.inf)
        if clip:
            lo, hi = np.maximum(lo, 0.0), np.minimum(hi, 1.0)
        return cls(lo[:, None, :], hi[:, None, :])

    def abs_max(self) -> np.ndarray:
        """``max |x′_j|`` over the region, ``[n]`` (``[B, 1, n]`` for a batch)."""
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def min_linear(self, a: np.ndarray) -> np.ndarray:
        """Lower bound on ``min_{x′} a @ x′`` per row of ``a`` (``[..., m, n]`` → ``[..., m]``)."""
        terms = np.minimum(a * self.lo, a * self.hi)
        return sum_lower([terms.sum(axis=-1)]) - gamma(a.shape[-1]) * np.abs(terms).sum(axis=-1)


@dataclass(frozen=True)
class L1Region:
    """``{x′ ∈ [0,1]^n : ‖x′ − x‖₁ ≤ eps}`` (``x``: ``[n]``)."""

    x: np.ndarray
    eps: float

    def __post_init__(self) -> None:
        if not (self.eps >= 0 and np.isfinite(self.eps)):
            raise PaperReproError(f"the radius must be finite and ≥ 0, got {self.eps}")

    def box(self) -> BoxRegion:
        """The enclosing box ``[x − eps, x + eps] ∩ [0,1]``."""
        return BoxRegion.linf(self.x, self.eps)

    def abs_max(self) -> np.ndarray:
        return self.box().abs_max()

    def min_linear(self, a: np.ndarray) -> np.ndarray:
        """Lower bound on ``min a @ x′`` per row: ``a·x − G`` where the gain ``G`` of moving
        coordinates (fractional knapsack: budget ``eps``, caps ``x_j`` / ``1 − x_j``) is bounded
        from above by the LP dual ``λ·eps + Σ_j cap_j [|a_j| − λ]_+`` at the greedy ``λ``."""
        x = np.asarray(self.x, dtype=np.float64)
        g = np.abs(a)
        cap = np.where(a > 0, x, up(1.0 - x))  # a_j > 0: move x_j down; a_j < 0: up
        order = np.argsort(-g, axis=1)
        g_sorted = np.take_along_axis(g, order, axis=1)
        cum = np.cumsum(np.take_along_axis(cap, order, axis=1), axis=1)
        eps = float(up(self.eps))
        k = (cum < eps).sum(axis=1)  # first index whose cap exhausts the budget
        lam = np.where(
            k < a.shape[1], g_sorted[np.arange(a.shape[0]), np.minimum(k, a.shape[1] - 1)], 0.0
        )
        gain_terms = cap * np.maximum(g - lam[:, None], 0.0)
        gain = (lam * eps + gain_terms.sum(axis=1)) * (1.0 + gamma(a.shape[1] + 3)) + _TINY
        ax = a @ x
        ax_lo = ax - gamma(a.shape[1]) * (g @ np.abs(x)) - _TINY
        return sum_lower([ax_lo, -gain])


Region = BoxRegion | L1Region

SlopeRule = Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``rule(k, g, lo, hi) -> Λ``: given the hidden layer ``k`` (1-based), the coefficients ``g``
(``[m, n_k]``) on the ReLU outputs ``z_k`` and the bounds ``lo, hi`` (``[n_k]``) of ``ẑ_k``, the
coefficients ``Λ`` (``[m, n_k]``) on ``ẑ_k``."""


def relu_min(g: np.ndarray, lam: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Lower bound on ``min_{ẑ∈[lo,hi]} g·relu(ẑ) − lam·ẑ`` elementwise (``[m, n]``).

    The function is piecewise linear in ``ẑ`` with a kink at 0, so the minimum is attained at
    ``lo``, ``hi`` or (if ``lo < 0 < hi``) at 0, where it is 0.
    """
    best = None
    for v in (lo, hi):  # in place where possible: the same operations in the same order
        gr = g * np.maximum(v, 0.0)
        lv = lam * v
        val = gr - lv
        margin = np.abs(gr, out=gr)
        margin += np.abs(lv, out=lv)
        margin *= gamma(2)
        val -= margin
        val -= _TINY
        best = val if best is None else np.minimum(best, val, out=best)
    assert best is not None
    return np.where((lo < 0) & (hi > 0), np.minimum(best, 0.0), best)


def linear_lower_bound(
    net: ReluNetwork,
    c: np.ndarray,
    layer: int,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    region: Region,
    rule: SlopeRule,
    input_coef: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Sound lower bound on ``min_{x′∈region} c @ ẑ_layer(x′)`` for each row of ``c``.

    Args:
        net: the network; ``ẑ_{k+1} = W_k z_k + b_k``, ``z_0 = x′``, ``z_k = relu(ẑ_k)``.
        c: ``[m, n_layer]`` objective rows on the outputs of affine layer ``layer − 1``
            (``layer = len(net.weights)`` means the logits).
        layer: 1-based index of the pre-activation ``ẑ_layer``.
        pre_bounds: sound ``(lo, hi)`` of ``ẑ_1 … ẑ_{layer−1}`` (``[n_k]`` each, or ``[m, n_k]``:
            bounds of each row's own subdomain, e.g. branch-and-bound nodes).
        region: the input set.
        rule: the slope choice (CROWN, Wong–Kolter α, ...); any choice is sound.
        input_coef: if given, the rows' coefficients on the input ``x′`` (``[m, n₀]``: the
            linear function whose minimum over the region is the bound's input term) are
            appended to it (for branching heuristics; not part of the bound).

    Returns:
        ``[m]`` lower bounds, rounded outward.
    """
    coef = np.asarray(c, dtype=np.float64)
    parts: list[np.ndarray] = []
    for k in range(layer - 1, -1, -1):
        w, b = net.weights[k], net.biases[k]
        g, g_err = matmul_err(coef, w)
        cb, cb_err = matmul_err(coef, b)
        parts.append(cb - cb_err)
        zmax = region.abs_max() if k == 0 else np.maximum(pre_bounds[k - 1][1], 0.0)
        slack = (g_err * zmax).sum(axis=-1)  # zmax: [n_k], or [m, n_k] (bounds per row)
        parts.append(-(slack * (1.0 + gamma(zmax.shape[-1])) + _TINY))
        if k == 0:
            parts.append(region.min_linear(g))
            if input_coef is not None:
                input_coef.append(g)
            break
        lo, hi = pre_bounds[k - 1]
        lam = rule(k, g, lo, hi)
        beta = relu_min(g, lam, lo, hi)
        parts.append(sum_lower(list(np.moveaxis(beta, -1, 0))))  # sum over the neurons
        coef = lam
    return sum_lower(parts)


def layer_bounds(
    net: ReluNetwork, region: Region, rule: SlopeRule
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound ``(lo, hi)`` of every hidden pre-activation ``ẑ_1 … ẑ_{L−1}``, layer by layer
    (each layer bounded with ``c = ±I`` using the bounds of the layers before it); ``[n_k]``
    each, or ``[B, 1, n_k]`` for a batch of regions."""
    bounds: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(1, len(net.weights)):
        n = net.weights[k - 1].shape[0]
        both = linear_lower_bound(net, np.vstack([np.eye(n), -np.eye(n)]), k, bounds, region, rule)
        if both.ndim == 2:  # a batch: [B, 2n] -> [B, 1, n] so that it broadcasts over rows
            both = both[:, None, :]
        lo, hi = both[..., :n], -both[..., n:]
        if np.any(lo > hi):  # pragma: no cover - impossible for a non-empty region
            raise PaperReproError("inconsistent layer bounds (empty input region?)")
        bounds.append((lo, hi))
    return bounds
