"""Branch and bound on the input box for networks with few inputs (ACAS Xu-style properties).

Decides whether some ``x`` in a box ``[lo, hi]`` has ``C f(x) ≤ 0`` (every row), the question of
:class:`~paper_repro.exact.engines.split_bab.SplitSearch`, by bisecting the *box* instead of
splitting ReLUs (ReluVal, Wang et al. 2018; Neurify). With five inputs and a wide box, as in
ACAS Xu, most ReLUs are unstable over the whole box and ReLU splitting barely moves the bound,
while halving one input interval tightens every layer's bounds at once.

* Each box gets CROWN bounds of every hidden layer and of the rows of ``C``, computed for a
  batch of boxes at once by the outward-rounded numpy routines of
  :mod:`paper_repro.bounds.outward`; a box is closed only when some row's sound lower bound is
  ``> 0`` (no point of the box meets that row, hence the case). A half inherits its box's
  hidden bounds (they hold on any part of it): only the ReLUs unstable under them are bounded
  again, and the new bound is intersected with the inherited one — CROWN's bound on a half
  can be *looser* than on the whole, its adaptive slopes changing with the bounds below.
* The centre of every box is run through the network (float64); one with every row ``≤ 0`` is
  returned as a *candidate*, for the caller to check exactly.
* A box left open is halved at the midpoint of one input, chosen for the row closest to
  closing the box by two "smear" scores (ReluVal: sensitivity × width), each scaled to 1 at its
  best input and added: the input coefficient of the row's CROWN bound × width, and the row's
  gradient at the centre × width — unless that input, measured as a share of the root box's
  width, is narrower than ``1 / max_aspect`` of the box's relatively widest input, which is
  halved instead (without it the smear scores cut ACAS Xu boxes into slivers along the inputs
  they favour). The two halves cover the box exactly, whatever the rounding of the midpoint.
* Boxes are kept on a stack (depth first, a batch at a time); :meth:`InputSplitSearch.run`
  stops at its deadline with them kept, so a later call continues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from paper_repro.bounds.crown import crown_rule
from paper_repro.bounds.outward import BoxRegion, linear_lower_bound
from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Decision, Verdict
from paper_repro.exact.engines.resumable import ResumableSearch
from paper_repro.network import ReluNetwork

_ROW_BYTES = 1 << 26  # memory of one flat batch of bound rows (their copies of the box's bounds)


@dataclass(frozen=True)
class InputSplitOptions:
    """``max_dim``: the engine is used for boxes with at most this many inputs of non-zero width
    (more: ReLU splitting, :class:`~paper_repro.exact.engines.split_bab.SplitSearch`);
    ``batch``: boxes bounded per step; ``max_boxes``: open boxes at most, ``max_bytes``: memory
    of the open boxes and their inherited bounds at most (then ``unknown``); ``max_aspect``: a
    box whose chosen input is, relative to the root box, narrower than ``1 / max_aspect`` of its
    relatively widest input is halved along that widest one."""

    max_dim: int = 12
    batch: int = 256
    max_boxes: int = 2_000_000
    max_bytes: int = 1 << 30
    max_aspect: float = 256.0

    def __post_init__(self) -> None:
        if self.max_dim < 1 or self.batch < 1 or self.max_boxes < 2 or self.max_bytes < 1:
            raise PaperReproError(
                f"input-split options must be positive (max_dim {self.max_dim}, batch "
                f"{self.batch}, max_boxes {self.max_boxes}, max_bytes {self.max_bytes})"
            )
        if not self.max_aspect >= 1:
            raise PaperReproError(f"max_aspect must be at least 1, got {self.max_aspect}")


class InputSplitSearch(ResumableSearch):
    """Input bisection for one question, resumable (:class:`ResumableSearch`: ``run(deadline)``
    answers ``robust``, ``adversarial`` with a float64 candidate to check exactly, or
    ``unknown``; after ``timeout: …`` a later ``run`` continues).

    Args:
        net: the ReLU network ``f``.
        lo, hi: the box, float64 ``[n₀]``.
        c: ``[K, n_L]`` output rows: the question is whether some ``x`` has ``C f(x) ≤ 0``.
        options: :class:`InputSplitOptions`.
    """

    def __init__(
        self,
        net: ReluNetwork,
        lo: np.ndarray,
        hi: np.ndarray,
        c: np.ndarray,
        options: InputSplitOptions = InputSplitOptions(),
    ) -> None:
        self.net = net
        self.options = options
        self.c = np.atleast_2d(np.asarray(c, np.float64))
        self.lo = np.asarray(lo, np.float64).reshape(1, -1).copy()  # open boxes [M, n₀]
        self.hi = np.asarray(hi, np.float64).reshape(1, -1).copy()
        if self.lo.shape != self.hi.shape or np.any(self.lo > self.hi):
            raise PaperReproError("input-split needs a non-empty box [lo, hi]")
        self.root_width = (self.hi - self.lo)[0]
        # inherited hidden bounds of each open box, [M, n_k] per layer (±inf: none yet)
        sizes = [w.shape[0] for w in net.weights[:-1]]
        self.blo = [np.full((1, n), -np.inf) for n in sizes]
        self.bhi = [np.full((1, n), np.inf) for n in sizes]
        self.closed = 0
        super().__init__()

    @property
    def open_bytes(self) -> int:
        """Memory held by the open boxes and their inherited bounds."""
        held = [self.lo, self.hi, *self.blo, *self.bhi]
        return int(sum(a.nbytes for a in held))

    def _pop(self, count: int) -> tuple[np.ndarray, np.ndarray, list, list]:
        """The last ``count`` open boxes (``lo, hi``: ``[B, n₀]``) and their inherited bounds
        (``[B, n_k]`` per layer), removed from the stack."""
        cut = max(0, len(self.lo) - count)
        out = self.lo[cut:], self.hi[cut:], [a[cut:] for a in self.blo], [a[cut:] for a in self.bhi]
        self.lo, self.hi = self.lo[:cut], self.hi[:cut]
        self.blo, self.bhi = [a[:cut] for a in self.blo], [a[:cut] for a in self.bhi]
        return out

    def _run(self, start: float, deadline: float) -> Decision:
        opts = self.options
        while len(self.lo):
            if time.monotonic() > deadline:
                return Decision(
                    Verdict.UNKNOWN,
                    None,
                    0.0,
                    f"timeout: {len(self.lo)} boxes open, {self.closed} closed",
                )
            lo, hi, plo, phi = self._pop(opts.batch)
            mid = np.clip(lo + (hi - lo) / 2, lo, hi)
            grads = self._gradients(mid)  # [B, K, n₀]
            found = self._candidate(mid, lo, hi, grads)
            if found is not None:
                return Decision(Verdict.ADVERSARIAL, found, 0.0)
            lower, coef, pre = self._lower_bounds(lo, hi, plo, phi)  # [B, K] sound, [B, K, n₀]
            done = lower.max(axis=1) > 0
            self.closed += int(done.sum())
            keep = ~done
            if not keep.any():
                continue
            lo, hi, lower, mid = lo[keep], hi[keep], lower[keep], mid[keep]
            width = np.where((mid > lo) & (mid < hi), hi - lo, 0.0)  # 0: no float between
            if not np.any(width > 0, axis=1).all():  # cannot be halved any further
                return Decision(Verdict.UNKNOWN, None, 0.0, "a box too small to halve is open")
            pick = np.arange(len(lo)), lower.argmax(axis=1)  # the row closest to closing
            dim = _split_dim(coef[keep][pick], grads[keep][pick], width)
            dim = _unsliver(
                dim, width / np.where(self.root_width > 0, self.root_width, 1.0), opts.max_aspect
            )
            per_box = 2 * (lo.shape[1] + sum(a.shape[1] for a in self.blo)) * lo.itemsize
            grown = 2 * len(lo) * per_box  # the two halves and their inherited bounds
            if len(self.lo) + 2 * len(lo) > opts.max_boxes or (
                self.open_bytes + grown > opts.max_bytes
            ):
                return Decision(
                    Verdict.UNKNOWN,
                    None,
                    0.0,
                    f"{len(self.lo) + 2 * len(lo)} open boxes would pass the memory cap "
                    f"({opts.max_boxes} boxes, {opts.max_bytes} bytes)",
                )
            rows_i = np.arange(len(lo))
            cut_at = mid[rows_i, dim]
            hi_left, lo_right = hi.copy(), lo.copy()
            hi_left[rows_i, dim] = cut_at
            lo_right[rows_i, dim] = cut_at
            self.lo = np.concatenate([self.lo, lo_right, lo])
            self.hi = np.concatenate([self.hi, hi, hi_left])
            for k, (lk, hk) in enumerate(pre):  # both halves inherit the box's bounds
                lk, hk = lk[keep], hk[keep]
                self.blo[k] = np.concatenate([self.blo[k], lk, lk])
                self.bhi[k] = np.concatenate([self.bhi[k], hk, hk])
        return Decision(Verdict.ROBUST, None, 0.0, f"{self.closed} boxes closed")

    def _lower_bounds(
        self, lo: np.ndarray, hi: np.ndarray, plo: list[np.ndarray], phi: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Outward-rounded CROWN lower bounds of every row of ``C f`` on each box, ``[B, K]``,
        each row's linear function of the input behind it, ``[B, K, n₀]``, and the boxes' hidden
        bounds ``(lo_k, hi_k)``, ``[B, n_k]`` each: the inherited ones ``plo, phi`` (sound on
        the box), tightened by CROWN where they leave a ReLU unstable."""
        pre: list[tuple[np.ndarray, np.ndarray]] = []  # [B, n_k]
        for k, (pl, ph) in enumerate(zip(plo, phi, strict=True), start=1):
            pre.append(_tightened(self.net, k, pre, (lo, hi), pl, ph))
        rows = np.broadcast_to(self.c, (len(lo), *self.c.shape))
        region = BoxRegion(lo[:, None, :], hi[:, None, :])
        coef: list[np.ndarray] = []
        wide = [(lk[:, None, :], hk[:, None, :]) for lk, hk in pre]  # broadcast over rows
        lower = linear_lower_bound(
            self.net, rows, len(self.net.weights), wide, region, crown_rule(), coef
        )
        return lower, coef[0], pre

    def _gradients(self, x: np.ndarray) -> np.ndarray:
        """``∂(C f)_k/∂x`` at the points ``x`` (``[B, n₀]``) through their activation patterns,
        ``[B, K, n₀]``."""
        pre = self.net.pre_activations(x)
        g = np.broadcast_to(self.c @ self.net.weights[-1], (len(x), len(self.c), pre[-1].shape[1]))
        for k in range(len(pre) - 1, -1, -1):
            g = (g * (pre[k] > 0)[:, None, :]) @ self.net.weights[k]
        return g

    def _candidate(
        self, mid: np.ndarray, lo: np.ndarray, hi: np.ndarray, grads: np.ndarray
    ) -> np.ndarray | None:
        """A point of one of the boxes with every row ``≤ 0`` in float64, or ``None``: tried
        are each box's centre, the corner that minimises each row and the sum of the rows as
        linearised at the centre (the exact minimiser where the network is affine on the box)."""
        dirs = np.concatenate([grads, grads.sum(axis=1, keepdims=True)], axis=1)  # [B, K+1, n₀]
        corners = np.where(dirs > 0, lo[:, None, :], hi[:, None, :])
        points = np.concatenate([mid[:, None, :], corners], axis=1).reshape(-1, mid.shape[1])
        values = (self.net.forward(points) @ self.c.T).max(axis=1)
        hit = np.flatnonzero(values <= 0)
        return points[hit[0]] if hit.size else None


def _tightened(
    net: ReluNetwork,
    k: int,
    pre: list[tuple[np.ndarray, np.ndarray]],
    box: tuple[np.ndarray, np.ndarray],
    plo: np.ndarray,
    phi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of hidden layer ``k``'s pre-activations on each of ``B`` boxes ``box = (lo,
    hi)`` (``[B, n₀]``), ``[B, n_k]`` each: ``plo, phi`` (sound on the boxes) where they make
    the ReLU stable, else their intersection with the outward-rounded CROWN bounds (``pre``:
    the layers below, ``[B, n_j]``). Only the unstable ReLUs get rows (``±e_i``), flat batches
    of them over all boxes (each pair of rows with its own box's bounds; about ``_ROW_BYTES`` a
    batch)."""
    lo, hi = plo.copy(), phi.copy()
    pairs_b, pairs_i = np.nonzero((plo < 0) & (phi > 0))  # the (box, ReLU) pairs to bound
    # floats a pair holds: its two rows, its box, the bounds below it (two passes' worth)
    per_pair = 2 * (2 * plo.shape[1] + 2 * box[0].shape[1] + 2 * sum(p[0].shape[1] for p in pre))
    step = max(1, _ROW_BYTES // (8 * per_pair))
    for start in range(0, len(pairs_b), step):
        b, i = pairs_b[start : start + step], pairs_i[start : start + step]
        r = np.arange(len(b))
        rows = np.zeros((len(b), 2, plo.shape[1]))  # ẑ_i and −ẑ_i, sharing the box's bounds
        rows[r, 0, i] = 1.0
        rows[r, 1, i] = -1.0
        region = BoxRegion(box[0][b, None, :], box[1][b, None, :])
        below = [(pl[b, None, :], ph[b, None, :]) for pl, ph in pre]
        both = linear_lower_bound(net, rows, k, below, region, crown_rule())  # [pairs, 2]
        lo[b, i] = np.maximum(lo[b, i], both[:, 0])
        hi[b, i] = np.minimum(hi[b, i], -both[:, 1])
    if np.any(lo > hi):  # pragma: no cover - impossible for a non-empty box
        raise PaperReproError("inconsistent layer bounds (empty input box?)")
    return lo, hi


def _unsliver(dim: np.ndarray, rel: np.ndarray, max_aspect: float) -> np.ndarray:
    """``dim`` (``[B]``), except where the chosen input's relative width ``rel`` (``[B, n₀]``:
    width / the root box's width, 0 where it cannot be halved) is below ``1 / max_aspect`` of
    the box's largest: there, that input."""
    rows = np.arange(len(dim))
    widest = rel.argmax(axis=1)
    return np.where(rel[rows, widest] > max_aspect * rel[rows, dim], widest, dim)


def _split_dim(coef: np.ndarray, grad: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Per box, the input to halve: the largest ``|a_i|·w_i / max_j |a_j|·w_j + |∂_i|·w_i /
    max_j |∂_j|·w_j`` — ``a`` the input coefficients of the row's CROWN bound, ``∂`` its gradient
    at the centre, ``w`` the widths (``[B, n₀]`` each; ``w = 0``: not splittable)."""
    score = np.zeros_like(width)
    for v in (np.abs(coef) * width, np.abs(grad) * width):
        score += v / np.maximum(v.max(axis=1, keepdims=True), 1e-300)
    return np.where(width > 0, score + 1e-12 * width, -1.0).argmax(axis=1)
