"""First-order L∞ attacks: FGSM (Goodfellow et al.), BIM/PGD (Kurakin et al.; Madry et al.) and
Pahlavan et al.'s targeted iterated FGSM (Sec. 3, random start, 40 steps).

All work on batches: ``x`` is ``[B, 784]`` float32 in [0, 1], labels ``[B]`` int64; outputs stay in
the ε-ball around ``x`` and in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paper_repro.errors import PaperReproError


def _check_eps(eps: float) -> None:
    if not eps >= 0.0:
        raise PaperReproError(f"attack ε must be ≥ 0, got {eps}")


def _ball(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The L∞ ball ∩ [0,1]^n as bounds ``(lo, hi)``, so that ``clamp(x′, lo, hi)`` projects in one
    op; it equals ``clamp(min(max(x′, x − ε), x + ε), 0, 1)`` bit for bit (min and max are exact
    and ``x ∈ [0,1]``)."""
    return torch.clamp(x - eps, 0.0, 1.0), torch.clamp(x + eps, 0.0, 1.0)


def _check_steps(steps: int, step_size: float) -> None:
    if steps < 0 or not step_size >= 0:
        raise PaperReproError(f"attack needs steps ≥ 0 and step_size ≥ 0, got {steps}, {step_size}")


def _sign_steps(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int,
    step: float,
    random_start: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Projected sign-gradient steps of size ``step`` on ``CE(f(x′), labels)`` within the ε-ball:
    ``step > 0`` ascends (untargeted), ``step < 0`` descends towards ``labels`` (targeted)."""
    x_adv = x.clone()
    lo, hi = _ball(x, eps)
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
        x_adv = torch.clamp(x + eps * noise, lo, hi)
    for _ in range(steps):
        grad = _loss_grad(model, x_adv, labels)
        # ``step * sign`` is exact, so the fused add rounds as ``x_adv + step * sign`` does
        x_adv = torch.clamp(torch.add(x_adv, grad.sign(), alpha=step), lo, hi).detach()
    return x_adv


def _loss_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


@dataclass(frozen=True)
class FGSM:
    """Fast gradient sign method: ``clip_[0,1](x + ε·sign(∇_x CE(f(x), y)))`` (untargeted)."""

    eps: float

    def __post_init__(self) -> None:
        _check_eps(self.eps)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grad = _loss_grad(model, x, y)
        return torch.clamp(x + self.eps * grad.sign(), 0.0, 1.0).detach()


@dataclass(frozen=True)
class PGD:
    """Untargeted L∞ projected gradient descent with a uniform random start (Madry et al.).

    Attributes:
        eps: radius of the L∞ ball, in [0,1] pixel units.
        steps: gradient-sign steps.
        step_size: α per step (Madry et al. use 0.01 for ε = 0.3 with 40 steps).
        random_start: start from a uniform point of the ball (else from ``x``, i.e. BIM).
    """

    eps: float
    steps: int = 40
    step_size: float = 0.01
    random_start: bool = True

    def __post_init__(self) -> None:
        _check_eps(self.eps)
        _check_steps(self.steps, self.step_size)

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return _sign_steps(
            model, x, y, self.eps, self.steps, self.step_size, self.random_start, generator
        )


@dataclass(frozen=True)
class IteratedFGSM:
    """Targeted iterated FGSM from a random start (Pahlavan et al., Sec. 3; Kurakin et al.).

    ``x^{i+1} = clip_{x,ε}(x^i − α·sign(∇_x CE(f(x^i), y′)))`` towards the target labels ``y′``.
    With ``targets=None`` in the call, targets are drawn uniformly from the classes other
    than ``y``.
    """

    eps: float
    steps: int = 40
    step_size: float = 0.01
    random_start: bool = True

    def __post_init__(self) -> None:
        _check_eps(self.eps)
        _check_steps(self.steps, self.step_size)

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        num_classes: int = 10,
    ) -> torch.Tensor:
        if targets is None:
            shift = torch.randint(1, num_classes, y.shape, generator=generator)
            targets = (y + shift) % num_classes
        return _sign_steps(
            model, x, targets, self.eps, self.steps, -self.step_size, self.random_start, generator
        )
