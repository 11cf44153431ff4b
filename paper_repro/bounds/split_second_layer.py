"""Sound bounds of the second hidden layer's pre-activations under first-layer ReLU splits.

In branch and bound (:mod:`paper_repro.exact.engines.split_bab`) every node fixes some ReLUs
active or inactive. Splitting a first-layer ReLU ``j`` makes it linear on the node, which can
tighten the bounds ``[l, u]`` of every second-layer pre-activation ``ẑ₂ᵢ`` — and with them the
triangle relaxations of the second layer in the node's own bound. Recomputing those bounds by a
backward pass per node would cost ``n₂ × n₁ × n₀`` per node; here they are *updated* from the
root's instead.

At the root, each row ``r`` (``+ẑ₂ᵢ`` for a lower bound, ``−ẑ₂ᵢ`` for an upper one, for the
second-layer ReLUs unstable at the root) has the Lagrangian bound of
:func:`paper_repro.bounds.outward.linear_lower_bound` with CROWN's coefficients ``Λ_r`` on
``ẑ₁`` (``g_r = ±W₂[i]`` on ``z₁``)::

    bound_r = ±b₂ᵢ + Λ_r·b₁ + Σ_j term_rj + min_{x ∈ box} (Λ_r W₁)·x,
    term_rj = min_{ẑ ∈ [l₁ⱼ, u₁ⱼ]} g_rj·relu(ẑ) − Λ_rj·ẑ.

Any ``Λ`` gives a valid bound (the per-neuron minimum is exact). On a node, a split ReLU ``j``
takes ``Λ'_rj = g_rj`` (active: ``relu(ẑ) = ẑ`` on its range) or ``0`` (inactive), which makes
its term ``0``; only the split columns change, so the node's bound is the root's plus
``Σ_split (Λ' − Λ)_rj (b₁ⱼ + W₁[j]·x)`` and minus the root terms of the split ReLUs — a cost of
``n₂ × (splits) × n₀`` per node. The ``n₀``-long part (the node's ``Λ'W₁`` and its minimum over
the box) is computed in float32 or float64 torch (``single_precision``), the rest in float64;
the result is lowered by a rounding margin (``8·γ_n`` with the unit roundoff of the type used,
times the sum of the absolute values of every addend, Higham's bound, as in
:mod:`paper_repro.bounds.outward`), so the bounds are sound; they never replace a tighter root
bound. Float32 costs a margin of about ``10⁻⁴`` of that sum and halves the memory traffic of
the product, which dominates the engine's time on two-layer networks.
"""

from __future__ import annotations

import numpy as np
import torch

from paper_repro.bounds.crown import crown_rule
from paper_repro.bounds.outward import gamma
from paper_repro.network import ReluNetwork

_FLOOR = 1e-30  # covers underflow (float32: 2⁻¹⁴⁹ per operation) over thousands of terms
_CHUNK = 16  # nodes per tensor op: [chunk, rows, n₀] float64 stays ≲ 30 MB


class SecondLayerBounds:
    """Second-layer pre-activation bounds of nodes, from their first-layer splits.

    Args:
        net: a network with at least two hidden layers.
        lo, hi: the input box, ``[n₀]`` each.
        first, second: sound root bounds ``(l, u)`` of ``ẑ₁`` (``[n₁]``) and ``ẑ₂`` (``[n₂]``).
        single_precision: compute ``Λ'W₁`` and its box minimum in float32 (the margin grows to
            match; see the module docstring).
    """

    def __init__(
        self,
        net: ReluNetwork,
        lo: np.ndarray,
        hi: np.ndarray,
        first: tuple[np.ndarray, np.ndarray],
        second: tuple[np.ndarray, np.ndarray],
        single_precision: bool = False,
    ) -> None:
        (l1, u1), (l2, u2) = first, second
        self.l2, self.u2 = np.asarray(l2, np.float64), np.asarray(u2, np.float64)
        self.unstable = np.flatnonzero((self.l2 < 0) & (self.u2 > 0))
        w1, b1 = net.weights[0], net.biases[0]
        w2, b2 = net.weights[1], net.biases[1]
        g = np.vstack([w2[self.unstable], -w2[self.unstable]])  # [T, n₁]
        unstable1 = (l1 < 0) & (u1 > 0)
        lam = crown_rule()(1, g, l1, u1)  # CROWN's coefficients on ẑ₁, as at the root
        term = np.minimum(g * np.maximum(l1, 0.0) - lam * l1, g * np.maximum(u1, 0.0) - lam * u1)
        term = np.where(unstable1, np.minimum(term, 0.0), term)
        xmax = np.maximum(np.abs(lo), np.abs(hi))
        zmax = np.maximum(np.abs(l1), np.abs(u1))
        cb = np.concatenate([b2[self.unstable], -b2[self.unstable]])
        dt = torch.float32 if single_precision else torch.float64
        n1 = len(l1)
        # W₁ with a zero row n₁ (the key of an unused split slot)
        self.w1 = torch.from_numpy(np.vstack([w1, np.zeros((1, w1.shape[1]))])).to(dt)
        self.w1_mag = np.abs(w1) @ xmax + np.abs(b1)  # [n₁]: |W₁[j]|·|x| + |b₁ⱼ|
        # per first-layer ReLU j and phase (0: active, 1: inactive), over the rows: the change
        # of its coefficient, of the constant (bias term minus the dropped root term) and of
        # the rounding magnitude when j is split
        d_lam = np.stack([g - lam, -lam]).transpose(0, 2, 1)  # [2, n₁, T]
        # the constant also takes the split's share of a·lo (a = Λ'W₁ is low rank in the
        # splits: only its box term Σ_i (hi − lo)_i·min(a_i, 0) needs the node's whole a)
        d_const = d_lam * (np.asarray(b1) + w1 @ lo)[None, :, None] - term.T[None]
        d_mag = np.abs(d_lam) * self.w1_mag[None, :, None]
        # the float32 part's magnitude: Σ_i |a_i|·(|lo_i| + w_i), bounded per term of a
        abs_x = np.abs(lo) + (hi - lo)
        d_mag32 = np.abs(d_lam) * (np.abs(w1) @ abs_x)[None, :, None]
        # rows 0 … 2n₁−1: (j, active), (j, inactive); row 2n₁: zeros (an unused slot)
        table = np.concatenate([d_lam.reshape(2 * n1, -1), np.zeros((1, g.shape[0]))])
        self.d_lam = torch.from_numpy(table).to(dt)
        self.d_rest = torch.from_numpy(
            np.stack(
                [
                    np.concatenate([x.reshape(2 * n1, -1), table[-1:]])
                    for x in (d_const, d_mag, d_mag32)
                ]
            )
        )  # [3, 2n₁ + 1, T] float64
        a = lam @ w1
        self.a = torch.from_numpy(a).to(dt)  # [T, n₀]
        self.mag32 = torch.from_numpy(np.abs(a) @ abs_x)  # [T]
        self.const = torch.from_numpy(cb + lam @ b1 + term.sum(axis=1) + a @ lo)
        self.mag = torch.from_numpy(
            np.abs(cb)
            + np.abs(lam) @ self.w1_mag
            + np.abs(term).sum(axis=1)
            + (np.abs(g) + np.abs(lam)) @ zmax
        )
        self.width = torch.from_numpy(hi - lo).to(dt)  # ≥ 0
        self.gamma = 8.0 * gamma(len(lo) + n1 + 4)
        self.single = single_precision

    def bounds(self, splits1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound ``(l₂, u₂)`` (``[B, n₂]`` each) of nodes with first-layer splits ``splits1``
        (int8 ``[B, n₁]``: ``+1`` active, ``−1`` inactive, ``0`` free); never looser than the
        root's."""
        b = splits1.shape[0]
        lo = np.tile(self.l2, (b, 1))
        hi = np.tile(self.u2, (b, 1))
        n = len(self.unstable)
        if n == 0:
            return lo, hi
        for first in range(0, b, _CHUNK):
            s = splits1[first : first + _CHUNK]
            bound = self._chunk(s)
            if bound is None:
                continue
            rows = slice(first, first + len(s))
            lo[rows, self.unstable] = np.maximum(lo[rows, self.unstable], bound[:, :n])
            hi[rows, self.unstable] = np.minimum(hi[rows, self.unstable], -bound[:, n:])
        return lo, hi

    def _chunk(self, s: np.ndarray) -> np.ndarray | None:
        """Sound lower bounds ``[c, T]`` of every row on nodes ``s`` (``None``: no splits)."""
        split = s != 0
        depth = int(split.sum(axis=1).max())
        if depth == 0:
            return None
        cols = np.argsort(~split, axis=1, kind="stable")[:, :depth]  # [c, D]: split columns first
        valid = np.take_along_axis(split, cols, axis=1)
        phase = np.take_along_axis(s, cols, axis=1)
        n1 = self.w1.shape[0] - 1
        key = torch.from_numpy(np.where(valid, cols + n1 * (phase < 0), 2 * n1))  # table row
        wkey = torch.from_numpy(np.where(valid, cols, n1))  # row of self.w1
        d_const, d_mag, d_mag32 = self.d_rest[:, key].sum(dim=2)  # [c, T] each, float64
        const = self.const + d_const
        margin = self.gamma * (self.mag + d_mag) + _FLOOR  # float64 rounding
        if self.single:  # the float32 product and box minimum: Higham, ×2 for the conversions
            margin = margin + 2.0 * _gamma32(len(self.width) + depth + 6) * (self.mag32 + d_mag32)
        # a = Λ'W₁ per node and row; min over the box = a·lo + Σ_i (hi − lo)_i·min(a_i, 0),
        # a·lo being in const already
        a = torch.baddbmm(
            self.a.expand(len(s), -1, -1), self.d_lam[key].transpose(1, 2), self.w1[wkey]
        )
        box_min = (torch.clamp_(a, max=0.0) @ self.width).double()  # [c, T]
        return (const + box_min - margin).numpy()


def _gamma32(n: int) -> float:
    """:func:`~paper_repro.bounds.outward.gamma` with float32's unit roundoff ``2⁻²⁴``."""
    nu = (n + 2) * 2.0**-24
    return 2.0 * nu / (1.0 - nu)
