"""Carlini–Wagner targeted attacks with the L∞ and the L1 distance, batched.

Carlini, Katz, Barrett & Dill (2018, Sec. 2 and Sec. 4) start every minimal-distortion search from
a CW adversarial example ``x′_init``: minimise ``d(x, x′) + c·g(x′)`` with the logits loss
``g(x′) = max(max_{i≠t} Z(x′)_i − Z(x′)_t, 0)`` (optionally with a confidence κ added inside the
max), used "with L1 and L∞ distortions". Here:

* :class:`CarliniWagnerLinf` follows CW's L∞ attack (Carlini & Wagner 2017, Sec. VI-C): replace
  the non-differentiable ``‖δ‖∞`` by the penalty ``Σ_i max(|δ_i| − τ, 0)``; after each successful
  optimisation set ``τ ← min(τ, ‖δ‖∞)·0.9`` and warm-start from the last adversarial example; when
  an optimisation fails, double ``c`` and retry, giving up once ``c`` exceeds ``largest_const``.
  Departures from CW's reference settings (1,000 steps, first ``c`` = 1e-5), chosen on MNIST MLPs
  for speed at equal quality: 100 Adam steps and first ``c`` = 0.1 per optimisation; an
  optimisation "succeeds" once an adversarial iterate lies within ``τ`` plus one learning-rate
  step; after ``c`` is exhausted, ``τ`` is retried half-way back to the last success
  (``tau_halvings`` times), refining the coarse 0.9 factor; an example that has never succeeded
  continues from its last iterate instead of restarting from ``x``.
* :class:`CarliniWagnerL1` minimises ``‖δ‖₁ + c·g(x′)`` by FISTA with soft-thresholding (the
  proximal step of the L1 term, as in EAD by Chen et al. 2018 with the L2 weight set to 0) and a
  binary search over ``c``.

The box ``[0, 1]`` is kept by projection (clamping), not by the tanh change of variables: MNIST
images have most pixels at exactly 0 or 1, where ``tanh`` saturates and those pixels could hardly
move. Every iterate is checked in float64 on the network (:func:`is_targeted_adversarial`; ties
count for the target) and the closest adversarial one is kept; finally it is pulled towards ``x``
along the segment by bisection, which can only shrink the distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from paper_repro.attacks.common import Norm, logit_hinge, model_dtype
from paper_repro.attacks.tracking import Best, CWResult, fallback, record_near, start
from paper_repro.errors import PaperReproError

__all__ = ["CWResult", "CarliniWagnerL1", "CarliniWagnerLinf"]


@dataclass(frozen=True)
class CarliniWagnerLinf:
    """CW's targeted L∞ attack (Carlini & Wagner 2017, Sec. VI-C), batched with per-example τ, c.

    Attributes:
        steps: Adam steps per ``(τ, c)`` optimisation.
        lr: largest Adam step size (pixel units, [0,1] scale).
        lr_tau: the step size of an optimisation is ``min(lr, lr_tau·τ)``, so it shrinks with
            the distances being resolved.
        initial_const: first ``c`` of every example.
        largest_const: an example stops once its ``c`` would exceed this.
        const_factor: ``c ← c·const_factor`` after a failed optimisation.
        tau_decrease: ``τ ← min(τ, ‖δ‖∞)·tau_decrease`` after a successful one.
        min_tau: an example stops once ``τ`` falls below this (CW: 1/256).
        reduce_const: halve ``c`` after each success (CW's ``REDUCE_CONST``).
        kappa: confidence κ ≥ 0 inside the hinge ``g``.
        max_rounds: cap on optimisations per batch.
        refine_steps: bisection steps pulling the result towards ``x`` (0 = off).
        tau_halvings: after ``c`` is exhausted at some τ, retry this many times with τ half-way
            back to the last successful ``‖δ‖∞`` (refines CW's coarse 0.9 factor).
        abort_early: end an optimisation once every example in it has an adversarial iterate
            inside its τ-box (CW's ``ABORT_EARLY``); batch-wide, so it rarely fires on big
            batches.
        fallback_slope: examples left without an adversarial example are attacked again with
            gradients leaking this slope through inactive ReLUs (:func:`leaky_gradient_copy`;
            exact forward pass, so success is still decided on the true network); 0 = off.
    """

    steps: int = 100
    lr: float = 5e-3
    lr_tau: float = 0.05
    initial_const: float = 0.1
    largest_const: float = 20.0
    const_factor: float = 2.0
    tau_decrease: float = 0.9
    min_tau: float = 1.0 / 256
    reduce_const: bool = False
    kappa: float = 0.0
    max_rounds: int = 100
    refine_steps: int = 12
    abort_early: bool = True
    tau_halvings: int = 2
    fallback_slope: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.max_rounds < 1 or min(self.refine_steps, self.tau_halvings) < 0:
            raise PaperReproError(
                "CW L∞ needs steps ≥ 1, max_rounds ≥ 1, refine_steps ≥ 0, tau_halvings ≥ 0"
            )
        if not (
            self.lr > 0 and self.lr_tau > 0 and self.initial_const > 0 and self.largest_const > 0
        ):
            raise PaperReproError("CW L∞ needs lr > 0 and positive constants")
        if not (self.const_factor > 1 and 0 < self.tau_decrease < 1 and self.min_tau >= 0):
            raise PaperReproError("CW L∞ needs const_factor > 1, 0 < tau_decrease < 1")
        if not self.kappa >= 0:
            raise PaperReproError(f"CW confidence κ must be ≥ 0, got {self.kappa}")
        if not self.fallback_slope >= 0:
            raise PaperReproError(f"fallback_slope must be ≥ 0, got {self.fallback_slope}")

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor,
        x_start: torch.Tensor | None = None,
    ) -> CWResult:
        """Attack ``x`` ``[B, d]`` (labels ``y`` ``[B]``) towards ``targets`` ``[B]``.

        ``x_start`` (``[B, d]``, optional, NaN rows allowed): known adversarial inputs, e.g. from
        :class:`~paper_repro.attacks.ClosestFGSM`; rows verified adversarial seed the search
        (``τ`` starts below their distance), so the result is never farther than them.
        """
        model64, best = start(model, x, y, targets, Norm.LINF)
        active = best.dist > 0  # not already classified as the target
        n = x.shape[0]
        work = model_dtype(model)
        x0 = x.detach().to(work)
        warm = x0.clone()
        tau = torch.ones(n)
        const = torch.full((n,), self.initial_const)
        won_const = torch.full((n,), self.initial_const)
        last_d = torch.ones(n)
        if x_start is not None:
            if x_start.shape != x.shape:
                raise PaperReproError(f"x_start must have shape {tuple(x.shape)}")
            given = (~torch.isnan(x_start).any(dim=1)).nonzero().flatten()
            good = best.update(model64, x_start[given].clamp(0.0, 1.0), targets, given)
            seeded = given[good & (best.dist[given] > 0)]
            warm[seeded] = best.adv[seeded].to(work)
            last_d[seeded] = best.dist[seeded].float()
            tau[seeded] = last_d[seeded] * self.tau_decrease
        halvings = torch.full((n,), self.tau_halvings)
        for _ in range(self.max_rounds):
            rows = active.nonzero().flatten()
            if rows.numel() == 0:
                break
            round_best = Best(x[rows].detach().clone(), Norm.LINF)
            ok, last = self._optimise(
                model,
                model64,
                x0[rows],
                warm[rows],
                targets[rows],
                tau[rows],
                const[rows],
                round_best,
            )
            # rows that never succeeded continue from where the failed optimisation stopped
            fresh = ~ok & ~torch.isfinite(best.dist[rows])
            warm[rows[fresh]] = last[fresh]
            best.update(model64, round_best.adv[ok], targets, rows[ok])
            won, lost = rows[ok], rows[~ok]
            last_d[won] = round_best.dist[ok].float()
            tau[won] = torch.minimum(tau[won], last_d[won]) * self.tau_decrease
            warm[won] = round_best.adv[ok].to(work)
            won_const[won] = const[won]
            if self.reduce_const:
                const[won] = const[won] / 2
            const[lost] = const[lost] * self.const_factor
            # c exhausted at this τ: retry half-way back to the last success, else stop
            spent = lost[const[lost] > self.largest_const]
            retry = spent[halvings[spent] > 0]
            tau[retry] = (tau[retry] + last_d[retry]) / 2
            const[retry] = won_const[retry]
            halvings[retry] -= 1
            active[spent] = False
            active[retry] = True
            active[won] = tau[won] >= self.min_tau
        fallback(self, model, model64, x, y, targets, best)
        best.refine(model64, targets, self.refine_steps)
        return best.result()

    def _optimise(
        self,
        model: nn.Module,
        model64: nn.Module,
        x0: torch.Tensor,
        start: torch.Tensor,
        targets: torch.Tensor,
        tau: torch.Tensor,
        const: torch.Tensor,
        record: Best,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one ``(τ, c)`` optimisation.

        Returns:
            ``[b]`` bool: an adversarial iterate with ``‖δ‖∞ ≤ τ`` (+ lr slack) was reached (CW's
            success criterion; the warm start alone does not count); and the last iterate.
        """
        # Adam written out so that each row can have its own step size ``min(lr, lr_tau·τ)``
        lr = torch.clamp(tau * self.lr_tau, max=self.lr).to(x0.dtype).view(-1, 1)
        v = start.clone()
        m1, m2 = torch.zeros_like(v), torch.zeros_like(v)
        b1, b2 = 0.9, 0.999
        tau_col = tau.to(x0.dtype).view(-1, 1)
        done = torch.zeros(x0.shape[0], dtype=torch.bool)
        for k in range(1, self.steps + 1):
            v.requires_grad_(True)
            z = model(v)
            penalty = torch.clamp((v - x0).abs() - tau_col, min=0.0).sum(dim=1)
            g = logit_hinge(z, targets, self.kappa)
            (grad,) = torch.autograd.grad((penalty + const * g).sum(), v)
            v = v.detach()
            # CW's early abort: (τ, c) succeeded once an iterate inside the τ-box is adversarial
            inside = ((v - x0).abs() <= tau_col + lr).all(dim=1)
            done |= record_near(record, model64, v, z, targets) & inside
            if self.abort_early and bool(done.all()):
                return done, v
            m1.mul_(b1).add_(grad, alpha=1 - b1)
            m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            step = (m1 / (1 - b1**k)) / ((m2 / (1 - b2**k)).sqrt() + 1e-8)
            v = (v - lr * step).clamp_(0.0, 1.0)
        inside = ((v - x0).abs() <= tau_col + lr).all(dim=1)
        return done | (record.update(model64, v, targets) & inside), v


@dataclass(frozen=True)
class CarliniWagnerL1:
    """Targeted L1 attack: minimise ``‖δ‖₁ + c·g(x + δ)`` over the box by FISTA (EAD-style).

    Each of ``binary_search_steps`` rounds runs ``steps`` proximal-gradient iterations from ``x``
    with learning rate ``lr·(1 − k/steps)^½`` and the soft-threshold ``S_λ(δ) =
    sign(δ)·max(|δ| − λ, 0)`` (``λ`` = current learning rate), projected on [0, 1]; then ``c`` is
    bisected per example (×10 until a first success).

    Attributes:
        steps: FISTA iterations per value of ``c``.
        lr: initial step size.
        initial_const: first ``c``.
        binary_search_steps: values of ``c`` tried per example.
        kappa: confidence κ ≥ 0 inside the hinge ``g``.
        refine_steps: bisection steps pulling the result towards ``x`` (0 = off).
        fallback_slope: as for :class:`CarliniWagnerLinf`.
    """

    steps: int = 300
    lr: float = 1e-2
    initial_const: float = 1.0
    binary_search_steps: int = 9
    kappa: float = 0.0
    refine_steps: int = 12
    fallback_slope: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.binary_search_steps < 1 or self.refine_steps < 0:
            raise PaperReproError(
                "CW L1 needs steps ≥ 1, binary_search_steps ≥ 1, refine_steps ≥ 0"
            )
        if not (self.lr > 0 and self.initial_const > 0):
            raise PaperReproError("CW L1 needs lr > 0 and initial_const > 0")
        if not self.kappa >= 0:
            raise PaperReproError(f"CW confidence κ must be ≥ 0, got {self.kappa}")
        if not self.fallback_slope >= 0:
            raise PaperReproError(f"fallback_slope must be ≥ 0, got {self.fallback_slope}")

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor
    ) -> CWResult:
        """Attack ``x`` ``[B, d]`` (labels ``y`` ``[B]``) towards ``targets`` ``[B]``."""
        model64, best = start(model, x, y, targets, Norm.L1)
        n = x.shape[0]
        work = model_dtype(model)
        x0 = x.detach().to(work)
        const = torch.full((n,), self.initial_const, dtype=torch.float64)
        lo = torch.zeros(n, dtype=torch.float64)
        hi = torch.full((n,), float("inf"), dtype=torch.float64)
        rows = (~best.result().success).nonzero().flatten()
        if rows.numel() == 0:
            return best.result()
        for _ in range(self.binary_search_steps):
            round_best = Best(x[rows].detach().clone(), Norm.L1)
            self._fista(model, model64, x0[rows], targets[rows], const[rows].to(work), round_best)
            ok = torch.isfinite(round_best.dist)
            best.update(model64, round_best.adv[ok], targets, rows[ok])
            won, lost = rows[ok], rows[~ok]
            hi[won] = torch.minimum(hi[won], const[won])
            lo[lost] = torch.maximum(lo[lost], const[lost])
            bracketed = torch.isfinite(hi[rows])
            const[rows] = torch.where(bracketed, (lo[rows] + hi[rows]) / 2, const[rows] * 10.0)
        fallback(self, model, model64, x, y, targets, best)
        best.refine(model64, targets, self.refine_steps)
        return best.result()

    def _fista(
        self,
        model: nn.Module,
        model64: nn.Module,
        x0: torch.Tensor,
        targets: torch.Tensor,
        const: torch.Tensor,
        record: Best,
    ) -> None:
        x_prev = x0.clone()
        y = x0.clone()
        for k in range(self.steps):
            lr = self.lr * (1.0 - k / self.steps) ** 0.5
            yv = y.clone().requires_grad_(True)
            z = model(yv)
            record_near(record, model64, yv, z, targets)
            g = logit_hinge(z, targets, self.kappa)
            (grad,) = torch.autograd.grad((const * g).sum(), yv)
            with torch.no_grad():
                z = yv - lr * grad - x0
                delta = z.sign() * torch.clamp(z.abs() - lr, min=0.0)
                x_new = torch.clamp(x0 + delta, 0.0, 1.0)
                y = x_new + (k / (k + 3.0)) * (x_new - x_prev)
                y.clamp_(0.0, 1.0)
                x_prev = x_new
                record_near(record, model64, x_new, model(x_new), targets)
        record.update(model64, x_prev, targets)
