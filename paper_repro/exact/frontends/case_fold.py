"""A VNN-LIB case's box in floats and its fold into the engines' network (for :mod:`.verify`).

The exact box ``[l, u]`` (rationals) is covered by the float box ``[l_f, l_f + s]``: ``l_f`` the
lower bounds rounded down, ``s`` the widths rounded up until ``l_f + s ≥ u`` exactly
(:func:`float_box`). It is the image of ``z ∈ [0,1]^{n′}`` under ``x = l_f + s ⊙ z``
(coordinates with ``s = 0`` are constants, folded into the bias), folded into the first layer;
the case's constraints ``C y ≤ d`` become an extra linear output layer ``o_0 = 0``,
``o_k = c_k·y − d_k ∓ E_k`` folded into the last layer (:func:`fold_case`), with ``E_k`` a
rigorous bound on the float rounding of both folds, so a proof about the folded network is a
proof about the exact box, and a point of the folded network maps back by :func:`from_cube`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from paper_repro.bounds.safe import gamma
from paper_repro.exact.witnesses.witness import round_down, round_up
from paper_repro.network import ReluNetwork
from paper_repro.vnnlib import Case

_U = 2.0**-53


@dataclass(frozen=True)
class FloatBox:
    """A case's box in floats: ``[lo, lo + s]`` covers it exactly (``lo`` rounded down, ``s``
    rounded up); ``inner_lo ≤ x ≤ inner_hi`` are floats inside it, except on the coordinates of
    ``rational`` (no float64 inside; the exact value used instead), where both are the nearest
    float."""

    lo: np.ndarray
    s: np.ndarray
    inner_lo: np.ndarray
    inner_hi: np.ndarray
    rational: dict[int, Fraction]


def from_cube(box: FloatBox, active: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``x = l + s⊙z`` on the ``active`` coordinates (``l`` elsewhere), clipped into the box."""
    x = box.lo.copy()
    x[active] = box.lo[active] + box.s[active] * np.asarray(z)
    return np.clip(x, box.inner_lo, box.inner_hi)


def polytope(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The case's constraints as floats: ``C`` ``[K, m]``, ``d`` ``[K]``."""
    m = len(case.constraints[0].coeffs) if case.constraints else 0
    c = np.array([[float(v) for v in k.coeffs] for k in case.constraints]).reshape(-1, m)
    d = np.array([float(k.rhs) for k in case.constraints])
    return c, d


def float_box(case: Case) -> FloatBox:
    """The :class:`FloatBox` of ``case``."""
    box = case.box
    lo = np.array([round_down(v) for v in box.lower])
    s = np.array([round_up(v) for v in box.upper]) - lo
    for i in range(s.size):  # the width must reach the exact upper bound
        while Fraction(float(lo[i])) + Fraction(float(s[i])) < box.upper[i]:
            s[i] = math.nextafter(s[i], math.inf)
    inner_lo = np.array([_inside(v, st, 1) for v, st in zip(box.lower, box.lower_strict)])  # noqa: B905
    inner_hi = np.array([_inside(v, st, -1) for v, st in zip(box.upper, box.upper_strict)])  # noqa: B905
    rational = {}
    for i in np.flatnonzero(inner_lo > inner_hi):  # no float64 inside: use an exact value
        a, b = box.lower[i], box.upper[i]
        rational[int(i)] = a if a == b else (a + b) / 2
        inner_lo[i] = inner_hi[i] = float(rational[int(i)])
    return FloatBox(lo, s, inner_lo, inner_hi, rational)


def _inside(v: Fraction, strict: bool, direction: int) -> float:
    """The float nearest ``v`` on its inner side (``direction`` +1: ``≥ v``; −1: ``≤ v``)."""
    f = round_up(v) if direction > 0 else round_down(v)
    if strict and Fraction(f) == v:
        f = math.nextafter(f, direction * math.inf)
    return f


def fold_case(
    network: ReluNetwork, case: Case, lo: np.ndarray, s: np.ndarray, pad: float = -1.0
) -> tuple[ReluNetwork, np.ndarray]:
    """The engine's network ``z ↦ (0, C y(l + s⊙z) − d + pad·E)`` over ``z ∈ [0,1]^{n′}`` and
    the mask of the input coordinates kept (``s > 0``; at least one). ``pad < 0`` (outer):
    every output is ``≤`` the exact one; ``pad ≥ 1`` (inner): ``≥`` it, by ``(pad − 1) E`` more.

    ``E ≥ 0`` bounds the difference between the folded float network (before ``−E``) and the
    exact composition on the cube: first layer ``|ΔW z| + |Δb| ≤ 2(u |W₁ s| + γ_{n+1}(|W₁||l| +
    |b₁|))``, carried by ``|W_k|`` through the hidden layers (ReLU is 1-Lipschitz); last layer
    ``(|C|+ΔC)|W_L| e + (ΔC|W_L| + γ_m|C||W_L|) h_max + ΔC|b_L| + Δd + γ_{m+1}(|C||b_L| + |d|)``
    with ``h_max`` bounding the folded network's last hidden activations; all doubled."""
    ws, bs = list(network.weights), list(network.biases)
    if len(ws) == 1:  # y = relu(v) − relu(−v): one exact hidden layer for the fold
        m = ws[0].shape[0]
        ws = [np.vstack([ws[0], -ws[0]]), np.hstack([np.eye(m), -np.eye(m)])]
        bs = [np.concatenate([bs[0], -bs[0]]), np.zeros(m)]
    active = s > 0
    if not active.any():
        active[0] = True
    w1, b1 = ws[0], bs[0]
    w1a = w1[:, active] * s[active]
    b1f = b1 + w1 @ lo
    grow = 1.0 + 1e-9  # headroom for the rounding of the bound computations themselves
    rounding = gamma(w1.shape[1] + 1) * (np.abs(w1) @ np.abs(lo) + np.abs(b1))
    err = 2.0 * (_U * np.abs(w1a).sum(axis=1) + rounding)
    hmax = (np.abs(w1a).sum(axis=1) + np.abs(b1f)) * grow
    for w, b in zip(ws[1:-1], bs[1:-1], strict=True):
        err = (np.abs(w) @ err) * grow
        hmax = (np.abs(w) @ hmax + np.abs(b)) * grow
    cq = [k.coeffs for k in case.constraints]
    cf = np.array([[float(v) for v in row] for row in cq])
    dq = [k.rhs for k in case.constraints]
    df = np.array([float(v) for v in dq])
    dc = np.array([[float(abs(Fraction(float(v)) - v)) for v in row] for row in cq]) * 2.0
    dd = np.array([float(abs(Fraction(float(v)) - v)) for v in dq]) * 2.0
    wl, bl = ws[-1], bs[-1]
    m = wl.shape[0]
    aw, ac = np.abs(wl), np.abs(cf)
    out_w = cf @ wl
    out_b = cf @ bl - df
    e = (ac + dc) @ aw @ err
    e += (dc @ aw + gamma(m) * (ac @ aw)) @ hmax
    e += dc @ np.abs(bl) + dd + gamma(m + 1) * (ac @ np.abs(bl) + np.abs(df))
    e = 2.0 * e * grow + 1e-300
    out_b = np.nextafter(out_b + pad * e, np.inf if pad > 0 else -np.inf)
    last_w = np.vstack([np.zeros((1, wl.shape[1])), out_w])
    last_b = np.concatenate([[0.0], out_b])
    folded = ReluNetwork.from_arrays([w1a, *ws[1:-1], last_w], [b1f, *bs[1:-1], last_b])
    return folded, active
