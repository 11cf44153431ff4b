"""The bookkeeping shared by the minimal-distance attacks: the result record and a per-example
"closest float64-verified adversarial example so far" tracker with a final segment bisection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import nn

from paper_repro.attacks.common import (
    Norm,
    check_batch,
    distance,
    float64_copy,
    is_targeted_adversarial,
    leaky_gradient_copy,
    logit_hinge,
)


@dataclass(frozen=True)
class CWResult:
    """Per-example outcome of a targeted attack.

    Attributes:
        x_adv: ``[B, d]`` adversarial inputs (dtype of ``x``, in [0, 1]); rows of NaN where
            nothing adversarial was found.
        distance: ``[B]`` float64 ``‖x_adv − x‖`` in the attack's norm, recomputed from the
            returned ``x_adv``; ``inf`` where nothing was found.
        success: ``[B]`` bool, ``Z(x_adv)_t ≥ max_{j≠t} Z(x_adv)_j`` in float64.
        norm: the distance metric.
    """

    x_adv: torch.Tensor
    distance: torch.Tensor
    success: torch.Tensor
    norm: Norm


NEAR = 1e-3  # float32 logit margin below which an iterate is re-checked in float64


class Best:
    """Closest float64-verified adversarial example seen so far, per row."""

    def __init__(self, x: torch.Tensor, norm: Norm):
        self.x = x
        self.norm = norm
        self.adv = torch.full_like(x, float("nan"))
        self.dist = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)

    def update(
        self,
        model64: nn.Module,
        cand: torch.Tensor,
        targets: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Record adversarial rows of ``cand`` (rows ``rows`` of the batch); return their mask."""
        rows = torch.arange(self.x.shape[0]) if rows is None else rows
        if rows.numel() == 0:
            return torch.zeros(0, dtype=torch.bool)
        cand = cand.detach().to(self.x.dtype)
        ok = is_targeted_adversarial(model64, cand, targets[rows])
        d = distance(self.x[rows], cand, self.norm)
        better = ok & (d < self.dist[rows])
        idx = rows[better]
        self.adv[idx] = cand[better]
        self.dist[idx] = d[better]
        return ok

    def refine(self, model64: nn.Module, targets: torch.Tensor, steps: int) -> None:
        """Bisection on ``s`` for ``x + s·(adv − x)`` adversarial (``s = 1`` is)."""
        found = torch.isfinite(self.dist) & (self.dist > 0)
        if steps <= 0 or not found.any():
            return
        rows = found.nonzero().flatten()
        x, adv, t = self.x[rows], self.adv[rows], targets[rows]
        lo = torch.zeros(rows.numel(), 1, dtype=torch.float64)
        hi = torch.ones(rows.numel(), 1, dtype=torch.float64)
        for _ in range(steps):
            mid = (lo + hi) / 2
            cand = _segment(x, adv, mid)
            ok = is_targeted_adversarial(model64, cand, t).view(-1, 1)
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid)
        cand = _segment(x, adv, hi)
        ok = is_targeted_adversarial(model64, cand, t)
        d = distance(x, cand, self.norm)
        better = ok & (d < self.dist[rows])
        self.adv[rows[better]] = cand[better]
        self.dist[rows[better]] = d[better]

    def result(self) -> CWResult:
        """The record of the rows' current best (copies of the distances)."""
        return CWResult(self.adv, self.dist.clone(), torch.isfinite(self.dist), self.norm)


def _segment(x: torch.Tensor, adv: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    out = x.double() + s * (adv.double() - x.double())
    return out.clamp(0.0, 1.0).to(x.dtype)


def start(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, norm: Norm
) -> tuple[nn.Module, Best]:
    """Validate the batch; return the float64 reference model and a tracker that already holds
    ``x`` itself for rows classified as their target (distance 0)."""
    check_batch(x, y, targets)
    model64 = float64_copy(model)
    best = Best(x.detach().clone(), norm)
    best.update(model64, x, targets)  # an input already classified as t is its own answer (d = 0)
    return model64, best


class Retryable(Protocol):
    """An attack configuration that :func:`fallback` can re-run (a frozen dataclass)."""

    fallback_slope: float
    refine_steps: int

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor
    ) -> CWResult: ...


def fallback(
    attack: Retryable,
    model: nn.Module,
    model64: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    best: Best,
) -> None:
    """Retry the rows with no adversarial example on a leaky-gradient copy of the model
    (:func:`~paper_repro.attacks.common.leaky_gradient_copy`); successes, verified on
    ``model64``, go into ``best``."""
    failed = (~torch.isfinite(best.dist)).nonzero().flatten()
    if attack.fallback_slope <= 0 or failed.numel() == 0:
        return
    surrogate = leaky_gradient_copy(model, attack.fallback_slope)
    if surrogate is None:
        return
    retry = replace(attack, fallback_slope=0.0, refine_steps=0)
    res = retry(surrogate, x[failed], y[failed], targets[failed])
    best.update(model64, res.x_adv[res.success], targets, failed[res.success])


def record_near(
    record: Best, model64: nn.Module, v: torch.Tensor, z: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Float64-check only rows whose float32 margin is within ``NEAR`` of adversarial."""
    near = (logit_hinge(z.detach(), targets, 0.0) <= NEAR).nonzero().flatten()
    ok = torch.zeros(v.shape[0], dtype=torch.bool)
    ok[near] = record.update(model64, v[near], targets, near)
    return ok
