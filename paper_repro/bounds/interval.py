"""Interval bound propagation (IBP) over the input region of a minimal-distortion query.

The region is ``R(x, δ) = {x′ ∈ [0,1]^n : ‖x′ − x‖ ≤ δ}`` (Carlini et al., Sec. 3). For L∞ it is the
box ``[x − δ, x + δ] ∩ [0,1]``; for L1 it is that box intersected with the L1 ball, and the range of
any affine function over it is computed exactly by a fractional-knapsack argument
(:func:`linear_range`). Every bound is widened outward by a relative + absolute margin so that it
stays sound under float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm

REL_MARGIN = 1e-9
"""Outward widening relative to the magnitude of the terms a bound was computed from."""
ABS_MARGIN = 1e-12
"""Outward widening added to every bound."""

Bounds = list[tuple[np.ndarray, np.ndarray]]
"""Per affine layer ``k``: (lower, upper) of its outputs ``W_k z_k + b_k``, each ``[n_{k+1}]``."""


@dataclass(frozen=True)
class InputRegion:
    """``{x′ ∈ [0,1]^n : ‖x′ − x‖ ≤ delta}`` for the norm ``norm``.

    Attributes:
        x: centre, shape ``[n]``, values in [0, 1].
        delta: radius (≥ 0, finite), in [0,1] pixel units.
        norm: L∞ or L1.
    """

    x: np.ndarray
    delta: float
    norm: Norm

    def __post_init__(self) -> None:
        if not (np.isfinite(self.delta) and self.delta >= 0.0):
            raise PaperReproError(f"region radius must be finite and ≥ 0, got {self.delta}")

    @cached_property
    def lo(self) -> np.ndarray:
        """Per-coordinate lower end of the box ``max(0, x − δ)`` (rounded down), ``[n]``."""
        return np.maximum(0.0, np.nextafter(self.x - self.delta, -np.inf))

    @cached_property
    def hi(self) -> np.ndarray:
        """Per-coordinate upper end of the box ``min(1, x + δ)`` (rounded up), ``[n]``."""
        return np.minimum(1.0, np.nextafter(self.x + self.delta, np.inf))

    @cached_property
    def moves(self) -> np.ndarray:
        """``[n, 3]`` columns: room up ``hi − x``, room down ``x − lo``, and ``|x|`` (the
        per-coordinate quantities :func:`linear_range` contracts ``a`` with)."""
        return np.stack([self.hi - self.x, self.x - self.lo, np.abs(self.x)], axis=1)


def widen(lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move ``lo`` down and ``hi`` up by ``REL_MARGIN * scale + ABS_MARGIN`` (all ``[m]``)."""
    pad = REL_MARGIN * np.abs(scale) + ABS_MARGIN
    return lo - pad, hi + pad


def linear_range(
    a: np.ndarray, c: np.ndarray, region: InputRegion
) -> tuple[np.ndarray, np.ndarray]:
    """Sound range of ``a @ x′ + c`` over ``region``.

    Args:
        a: coefficients ``[m, n]``.
        c: offsets ``[m]``.
        region: the input region.

    Returns:
        ``(lo, hi)``, each ``[m]``: exact (up to the outward margin) for both norms. For L1 the
        extreme values are a fractional knapsack: moving coordinate ``i`` away from ``x_i`` changes
        the function by ``|a_i|`` per unit of budget, up to the box capacity.
    """
    a = np.atleast_2d(a)
    x, lo_box, hi_box = region.x, region.lo, region.hi
    centre = a @ x + c
    if region.norm == Norm.LINF:  # one product per sign with (room up, room down, |x|)
        pos, neg = np.maximum(a, 0.0) @ region.moves, np.maximum(-a, 0.0) @ region.moves
        gain_hi, gain_lo = pos[:, 0] + neg[:, 1], pos[:, 1] + neg[:, 0]
        scale = pos[:, 2] + neg[:, 2] + np.abs(c) + gain_hi + gain_lo
        return widen(centre - gain_lo, centre + gain_hi, scale)
    scale = np.abs(a) @ np.abs(x) + np.abs(c)
    down_cap, up_cap = x - lo_box, hi_box - x  # room to move each coordinate down / up
    up_room, down_room = np.where(a > 0, up_cap, down_cap), np.where(a > 0, down_cap, up_cap)
    gain_hi, gain_lo = _knapsacks(np.abs(a), (up_room, down_room), region.delta)
    scale = scale + gain_hi + gain_lo
    return widen(centre - gain_lo, centre + gain_hi, scale)


def _knapsack(value: np.ndarray, cap: np.ndarray, budget: float) -> np.ndarray:
    """Per row: max ``Σ value_i t_i`` s.t. ``0 ≤ t_i ≤ cap_i``, ``Σ t_i ≤ budget``. ``[m, n]
    → [m]`` (:func:`_knapsacks` with one capacity matrix)."""
    return _knapsacks(value, (cap,), budget)[0]


def _knapsacks(value: np.ndarray, caps: tuple[np.ndarray, ...], budget: float) -> list:
    """:func:`_knapsack` for several capacity matrices sharing one value matrix (``[m, n]``).

    The greedy (largest value first) solution is optimal. Only the ``k`` largest values of each row
    are sorted (``argpartition``), once for all capacities; rows whose ``k`` items cannot absorb
    the budget are solved with a full sort.
    """
    value = np.atleast_2d(value)
    n = value.shape[1]
    k = int(min(n, 2 * np.ceil(budget) + 64))
    if 2 * k >= n:
        return [_greedy(value, np.atleast_2d(cap), budget) for cap in caps]
    top = np.argpartition(-value, k - 1, axis=1)[:, :k]
    v = np.take_along_axis(value, top, axis=1)
    order = np.argsort(-v, axis=1, kind="stable")
    top, v = np.take_along_axis(top, order, axis=1), np.take_along_axis(v, order, axis=1)
    outs = []
    for cap in caps:
        cap = np.atleast_2d(cap)
        cp = np.take_along_axis(cap, top, axis=1)
        out = _take_greedy(v, cp, budget)
        short = np.flatnonzero(cp.sum(axis=1) < budget)
        if short.size:
            out[short] = _greedy(value[short], cap[short], budget)
        outs.append(out)
    return outs


def _greedy(value: np.ndarray, cap: np.ndarray, budget: float) -> np.ndarray:
    order = np.argsort(-value, axis=1, kind="stable")
    v = np.take_along_axis(value, order, axis=1)
    return _take_greedy(v, np.take_along_axis(cap, order, axis=1), budget)


def _take_greedy(v: np.ndarray, cp: np.ndarray, budget: float) -> np.ndarray:
    """The greedy's gain for items already sorted by decreasing value ``v`` (capacities ``cp``)."""
    before = np.cumsum(cp, axis=1) - cp
    take = np.clip(budget - before, 0.0, cp)
    # Rounding in the cumulative sums can only misplace budget by ~1 ulp per term; the caller's
    # relative margin (which includes this gain) absorbs it.
    return np.sum(v * take, axis=1)


def interval_bounds(network: ReluNetwork, region: InputRegion) -> Bounds:
    """IBP bounds on every affine layer's outputs (pre-activations, then logits).

    The first layer is bounded exactly by :func:`linear_range`; later layers by centre/radius
    interval arithmetic, ``mid′ = W mid + b``, ``rad′ = |W| rad`` (Gowal et al.'s IBP).

    Returns:
        ``[(lo_k, hi_k)]`` for ``k = 1..L``; ``lo_k, hi_k`` have shape ``[n_k]``.
    """
    out: Bounds = [linear_range(network.weights[0], network.biases[0], region)]
    for w, b in zip(network.weights[1:], network.biases[1:], strict=True):
        lo, hi = out[-1]
        lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        out.append(affine_interval(w, b, lo, hi))
    return out


def affine_interval(
    w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of ``w @ z + b`` for ``lo ≤ z ≤ hi`` (``w``: ``[m, n]``; result ``[m]``
    each).
    """
    mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
    centre = w @ mid + b
    spread = np.abs(w) @ rad
    scale = np.abs(w) @ (np.abs(mid) + rad) + np.abs(b)
    return widen(centre - spread, centre + spread, scale)


def intersect(a: Bounds, b: Bounds) -> Bounds:
    """Element-wise tightest of two sound bound lists (both valid ⇒ result valid)."""
    return [
        (np.maximum(la, lb), np.minimum(ua, ub)) for (la, ua), (lb, ub) in zip(a, b, strict=True)
    ]


def count_unstable(bounds: Bounds) -> int:
    """Hidden ReLUs whose pre-activation interval straddles 0 (the output layer is excluded)."""
    return int(sum(np.sum((lo < 0.0) & (hi > 0.0)) for lo, hi in bounds[:-1]))
