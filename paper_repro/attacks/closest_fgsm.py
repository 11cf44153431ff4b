"""Pahlavan et al.'s "closest FGSM adversary" (Sec. 3.4): binary search over the L∞ radius δ.

For every image and target class, search ``δ ∈ [0, 1]`` (``δ_min = 0``, ``δ_max = 1``) for the
smallest radius at which the targeted iterated FGSM of their Sec. 3.3.1 — random start in the
δ-ball, ``steps`` updates ``x ← clip_{x,δ}(x − α·sign(∇_x CE(f(x), t)))`` with the step size a
fixed fraction of the ball, ``α = step_fraction·δ`` — ends on an input classified as the target.

Determinism: the random start is a fixed noise ``u ∈ [−1, 1]^d`` per example, drawn once from a
generator seeded with ``seed``; the attack at radius δ starts from ``clip(x + δ·u)``. So re-running
:meth:`ClosestFGSM.attack` with the returned radii reproduces the returned images exactly, and the
search keeps the invariant "success at ``delta`` (upper end), failure at ``delta_lower``".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paper_repro.attacks.common import (
    check_batch,
    float64_copy,
    is_targeted_adversarial,
    model_dtype,
    targeted_margin,
)
from paper_repro.errors import PaperReproError


class Criterion(enum.StrEnum):
    """When the attack at radius δ counts as a success (float64, ties count as adversarial).

    ``target``: classified as the attacked target, ``Z_t ≥ max_{j≠t} Z_j`` (default; matches the
    targeted exact query). ``misclassified``: any class other than the label reaches the top,
    ``max_{j≠y} Z_j ≥ Z_y`` — the literal "seeing if the network misclassified it" of Sec. 3.4.
    """

    TARGET = "target"
    MISCLASSIFIED = "misclassified"


@dataclass(frozen=True)
class ClosestFGSMResult:
    """Outcome of the δ search, per example (``[B]`` tensors, δ in [0,1] pixel units).

    Attributes:
        delta: smallest radius found at which the attack succeeds (upper end of the final
            bracket); NaN where even ``δ = 1`` fails.
        delta_lower: largest radius at which the attack was seen to fail (lower end; 0 at start).
            Both are 0 for an input that already meets the success criterion.
        x_adv: ``[B, d]`` the attack's output at ``delta``; NaN rows where none was found.
        success: the attack succeeded at ``delta`` (float64 check, ties count for the target).
    """

    delta: torch.Tensor
    delta_lower: torch.Tensor
    x_adv: torch.Tensor
    success: torch.Tensor

    @property
    def delta_pixels(self) -> torch.Tensor:
        """``delta`` in 0..255 pixel units (Pahlavan et al. report δ-robustness this way)."""
        return self.delta * 255.0


@dataclass(frozen=True)
class ClosestFGSM:
    """Binary search over δ for the targeted iterated FGSM (Pahlavan et al., Sec. 3.4).

    Attributes:
        steps: iterated-FGSM steps per attempt (their 40).
        step_fraction: ``α = step_fraction·δ``.
        search_steps: bisection steps on ``[0, 1]`` (12 → bracket width 1/4096 < 1/255).
        random_start: start from ``clip(x + δ·u)`` (their choice) or from ``x``.
        seed: seeds the generator of the start noise ``u``.
        criterion: what counts as success, see :class:`Criterion`.
    """

    steps: int = 40
    step_fraction: float = 0.1
    search_steps: int = 12
    random_start: bool = True
    seed: int = 0
    criterion: Criterion = Criterion.TARGET

    def __post_init__(self) -> None:
        if self.steps < 1 or self.search_steps < 0:
            raise PaperReproError("closest FGSM needs steps ≥ 1 and search_steps ≥ 0")
        if not self.step_fraction > 0:
            raise PaperReproError(f"step_fraction must be > 0, got {self.step_fraction}")

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed start direction ``u`` (``[B, d]``, uniform in [−1, 1]) for this batch.

        Drawn in float32 whatever the dtype of ``x`` (so float32 and float64 runs agree)."""
        if not self.random_start:
            return torch.zeros_like(x)
        gen = torch.Generator().manual_seed(self.seed)
        u = torch.rand(x.shape, generator=gen, dtype=torch.float32) * 2 - 1
        return u.to(x.dtype)

    def attack(
        self,
        model: nn.Module,
        x: torch.Tensor,
        targets: torch.Tensor,
        delta: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Targeted iterated FGSM with per-example radius ``delta`` ``[B]`` → ``x_adv`` ``[B, d]``.

        ``noise`` defaults to :meth:`noise` of this batch. Rows with ``delta`` NaN come back NaN.
        """
        if delta.shape != (x.shape[0],):
            raise PaperReproError(f"delta must have shape [{x.shape[0]}], got {tuple(delta.shape)}")
        if bool((delta < 0).any()):
            raise PaperReproError("attack radius δ must be ≥ 0")
        nan = torch.isnan(delta)
        out_dtype = x.dtype
        x = x.to(model_dtype(model))
        eps = torch.where(nan, torch.zeros_like(delta), delta).to(x.dtype).view(-1, 1)
        lo, hi = torch.clamp(x - eps, min=0.0), torch.clamp(x + eps, max=1.0)
        u = self.noise(x) if noise is None else noise.to(x.dtype)
        x_adv = torch.minimum(torch.maximum(x + eps * u, lo), hi)
        alpha = self.step_fraction * eps
        for _ in range(self.steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.minimum(torch.maximum(x_adv - alpha * grad.sign(), lo), hi)
        x_adv = x_adv.detach().to(out_dtype)
        x_adv[nan] = float("nan")
        return x_adv

    def succeeded(
        self, model64: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """``[B]`` bool: ``x_adv`` meets :attr:`criterion` on the float64 model ``model64``."""
        if self.criterion is Criterion.TARGET:
            return is_targeted_adversarial(model64, x_adv, targets)
        return targeted_margin(model64, x_adv, y) <= 0.0

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor
    ) -> ClosestFGSMResult:
        """Search δ for ``x`` ``[B, d]`` with labels ``y`` towards ``targets`` ``[B]``.

        The caller keeps only correctly classified images (as Pahlavan et al. do); an image
        that already meets the criterion gets ``δ = 0``.
        """
        check_batch(x, y, targets)
        model64 = float64_copy(model)
        x = x.detach()
        n = x.shape[0]
        lo = torch.zeros(n, dtype=torch.float64)
        hi = torch.ones(n, dtype=torch.float64)
        at_zero = self.succeeded(model64, x, y, targets)
        hi[at_zero] = 0.0
        noise = self.noise(x)
        x_hi = self.attack(model, x, targets, hi, noise)
        ok_hi = self.succeeded(model64, x_hi, y, targets)
        hi[~ok_hi] = float("nan")
        lo[~ok_hi] = 1.0
        for _ in range(self.search_steps):
            rows = (ok_hi & ~at_zero).nonzero().flatten()
            if rows.numel() == 0:
                break
            mid = (lo[rows] + hi[rows]) / 2
            cand = self.attack(model, x[rows], targets[rows], mid, noise[rows])
            ok = self.succeeded(model64, cand, y[rows], targets[rows])
            hi[rows[ok]] = mid[ok]
            x_hi[rows[ok]] = cand[ok]
            lo[rows[~ok]] = mid[~ok]
        x_hi[~ok_hi] = float("nan")
        return ClosestFGSMResult(delta=hi, delta_lower=lo, x_adv=x_hi, success=ok_hi)


def all_target_pairs(y: torch.Tensor, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, target ≠ label) pair, image-major: ``(index [B·(K−1)], targets [B·(K−1)])``.

    Pahlavan et al. (Sec. 3.4) and Carlini et al. (Sec. 4: 10 images × 9 targets) attack every
    other class. Use as ``x[index], y[index], targets``.
    """
    if y.ndim != 1 or y.numel() == 0:
        raise PaperReproError("labels must be a non-empty 1-D tensor")
    if bool(((y < 0) | (y >= num_classes)).any()):
        raise PaperReproError(f"labels must lie in 0..{num_classes - 1}")
    index = torch.arange(y.numel()).repeat_interleave(num_classes - 1)
    shift = torch.arange(1, num_classes).repeat(y.numel())
    return index, (y[index] + shift) % num_classes
