"""The per-neuron ReLU relaxation of a batch of branch-and-bound subdomains (α/β-CROWN).

For coefficients ``g`` on a hidden layer's output ``z = relu(ẑ)`` and a subdomain's bounds
``ẑ ∈ [l, u]`` and split, :func:`relu_coefficients` gives the coefficients ``Λ`` on ``ẑ`` and
the per-neuron term ``min_{ẑ∈[l,u]} g·relu(ẑ) − Λ·ẑ`` of the Lagrangian bound described in
:mod:`paper_repro.bounds.split_bounds` (lower slopes ``α``, split multipliers ``β``).
:class:`Relaxation` holds what of that does not change while ``α, β`` are optimised, so an Adam
step evaluates a layer in a few tensor operations.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


def relu_coefficients(g, lo, hi, split, alpha, beta):
    """``Λ`` on the pre-activations (see :mod:`paper_repro.bounds.split_bounds`) and the
    per-neuron term ``min_{ẑ∈[l,u]} g·relu(ẑ) − Λ·ẑ`` (``[B, n]`` each; the exact breakpoint
    minimum, as in :func:`paper_repro.bounds.outward.relu_min` but not rounded outward)."""
    unstable = (lo < 0) & (hi > 0)
    chord = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), 0.0)
    lam_unstable = torch.where(g < 0, g * chord, g * alpha)
    lam_stable = torch.where(lo >= 0, g - beta * (split > 0), beta * (split < 0))
    lam = torch.where(unstable, lam_unstable, lam_stable)
    at_lo = g * torch.clamp(lo, min=0.0) - lam * lo
    at_hi = g * torch.clamp(hi, min=0.0) - lam * hi
    term = torch.minimum(at_lo, at_hi)
    term = torch.where(unstable, torch.clamp(term, max=0.0), term)
    return lam, term


@dataclass(frozen=True)
class Relaxation:
    """One hidden layer's node-bound constants for a batch (``[B, n]`` each), fixed while
    ``α, β`` are optimised: with them :meth:`apply` is :func:`relu_coefficients` in a few
    operations. ``chord = u/(u−l)`` and ``icpt = −chord·l`` on unstable neurons (``0``
    elsewhere), ``unstable`` and ``pos`` (``l ≥ 0``) as 0/1, ``sgn`` the sign ``β`` enters
    ``Λ`` with (``−1`` split active, ``+1`` split inactive) and ``ts`` the split term's
    minimiser (``min(l, u)`` resp. ``−max(l, u)``)."""

    chord: torch.Tensor
    icpt: torch.Tensor
    unstable: torch.Tensor
    pos: torch.Tensor
    sgn: torch.Tensor
    ts: torch.Tensor

    @classmethod
    def of(cls, lo, hi, split) -> Relaxation:
        """From a batch's clipped pre-activation bounds and splits (``[B, n]`` each)."""
        unstable = (lo < 0) & (hi > 0)
        chord = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), 0.0)
        pos = ((lo >= 0) & ~unstable).to(lo.dtype)
        act, ina = ((split > 0) & ~unstable).to(lo.dtype), ((split < 0) & ~unstable).to(lo.dtype)
        ts = act * pos * torch.minimum(lo, hi) - ina * (1 - pos) * torch.maximum(lo, hi)
        return cls(chord, -chord * lo, unstable.to(lo.dtype), pos, ina * (1 - pos) - act * pos, ts)

    def take(self, rows) -> Relaxation:
        """The constants of the batch rows ``rows``."""
        return Relaxation(*(getattr(self, f.name)[rows] for f in fields(self)))

    def apply(self, g, alpha, beta):
        """``Λ`` (``[B, n]``), each unstable ReLU's loss ``−min(g, 0)·icpt`` (``[B, n]``, ≥ 0)
        and ``Σ_i term_i`` (``[B]``) of :func:`relu_coefficients` for coefficients ``g``."""
        neg = torch.clamp(g, max=0.0)
        lam = neg * self.chord + (g - neg) * (alpha * self.unstable) + g * self.pos
        lam = lam + beta * self.sgn
        term = neg * self.icpt
        return lam, -term, term.sum(1) + (beta * self.ts).sum(1)
