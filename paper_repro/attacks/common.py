"""Shared pieces of the targeted attacks: input checks, the float64 success test and distances.

Success is decided the way the exact solvers decide it (Carlini et al., Sec. 2 and Sec. 4: an
adversarial input ``x′`` for target ``t`` has ``argmax F(x′) = t``), with ties resolved *for* the
target and in float64 on the network: ``Z(x′)_t ≥ max_{j≠t} Z(x′)_j``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from paper_repro.errors import PaperReproError
from paper_repro.query import Norm

__all__ = [
    "Norm",
    "check_batch",
    "distance",
    "float64_copy",
    "is_targeted_adversarial",
    "leaky_gradient_copy",
    "logit_hinge",
    "model_dtype",
    "targeted_margin",
]


def check_batch(x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None) -> None:
    """Validate a batch: ``x`` ``[B, d]`` finite in [0, 1], ``y``/``targets`` ``[B]`` integers.

    Raises:
        PaperReproError: empty batch, wrong shapes, values outside [0, 1], or a target equal to
            the example's label.
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise PaperReproError(
            f"attacks expect a non-empty batch [B, d], got shape {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise PaperReproError("attack inputs must be finite pixel values in [0, 1]")
    if y.shape != (x.shape[0],):
        raise PaperReproError(f"labels must have shape [{x.shape[0]}], got {tuple(y.shape)}")
    if targets is not None:
        if targets.shape != (x.shape[0],):
            raise PaperReproError(
                f"targets must have shape [{x.shape[0]}], got {tuple(targets.shape)}"
            )
        same = (targets == y).nonzero().flatten()
        if same.numel() > 0:
            raise PaperReproError(
                f"target equals the label for example(s) {same[:5].tolist()}: a targeted "
                "adversarial example needs a target class different from the label"
            )


class _LeakyGradRelu(torch.autograd.Function):
    """ReLU forward; backward passes ``slope`` times the gradient where the input is ≤ 0."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.slope = slope
        return z.clamp(min=0.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        return grad * torch.where(z > 0, 1.0, ctx.slope).to(grad.dtype), None


class LeakyGradientReLU(nn.Module):
    """Exact ReLU forward with a leaky surrogate gradient (slope ``slope`` on the inactive side)."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = float(slope)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _LeakyGradRelu.apply(z, self.slope)


def leaky_gradient_copy(model: nn.Module, slope: float) -> nn.Module | None:
    """A copy of ``model`` whose ``nn.ReLU`` modules pass gradient ``slope`` through inactive units.

    The forward pass (hence every logit) is unchanged; only gradients differ, which lets a
    gradient attack "see" adversarial regions behind ReLUs that are off at ``x``. Returns
    ``None`` when the model has no ``nn.ReLU`` module to replace.
    """
    clone = copy.deepcopy(model)
    found = False
    for parent in clone.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, LeakyGradientReLU(slope))
                found = True
    return clone.eval() if found else None


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of ``model``'s parameters (float32 when it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in eval mode (the reference for every success decision)."""
    return copy.deepcopy(model).double().eval()


@torch.no_grad()
def targeted_margin(model64: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``Z(x)_t − max_{j≠t} Z(x)_j`` in float64, shape ``[B]`` (≥ 0 means adversarial for ``t``).

    Args:
        model64: a float64 model, e.g. from :func:`float64_copy`.
        x: ``[B, d]`` inputs (any float dtype; converted to float64).
        targets: ``[B]`` target classes.
    """
    z = model64(x.double())
    zt = z.gather(1, targets.view(-1, 1)).squeeze(1)
    others = z.scatter(1, targets.view(-1, 1), float("-inf"))
    return zt - others.max(dim=1).values


def is_targeted_adversarial(
    model64: nn.Module, x: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """``[B]`` bool: ``Z(x)_t ≥ max_{j≠t} Z(x)_j`` in float64 (ties count for the target)."""
    return targeted_margin(model64, x, targets) >= 0.0


def distance(x: torch.Tensor, x_adv: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-row distance ``‖x_adv − x‖`` in float64, shape ``[B]``, in [0,1] pixel units.

    For :attr:`Norm.L1` one pixel going from black to white counts 1 (Dathathri et al., Sec. 2).
    """
    diff = (x_adv.double() - x.double()).abs()
    if norm is Norm.LINF:
        return diff.max(dim=1).values
    if norm is Norm.L1:
        return diff.sum(dim=1)
    raise PaperReproError(f"unknown norm {norm!r}")


def logit_hinge(z: torch.Tensor, targets: torch.Tensor, kappa: float) -> torch.Tensor:
    """CW's targeted loss ``g(x′) = max(max_{i≠t} Z_i − Z_t + κ, 0)`` per row (Carlini et al.,
    Sec. 2; Carlini & Wagner 2017, objective f_6), shape ``[B]``."""
    zt = z.gather(1, targets.view(-1, 1)).squeeze(1)
    others = z.scatter(1, targets.view(-1, 1), float("-inf")).max(dim=1).values
    return torch.clamp(others - zt + kappa, min=0.0)
