"""Wong & Kolter's dual network bound in torch, batched and differentiable (for robust training).

The same bound as :mod:`paper_repro.bounds.dual` (their Eq. 6–8 and Alg. 1, with the fixed
``α = u/(u−l)`` of Eq. 8), in float32/float64 torch over a batch of inputs, so that the robust
cross-entropy of their Eq. 14 can be minimised by backpropagating through the bound — the layer
bounds ``l, u`` included, as in their training. :mod:`paper_repro.bounds.dual` stays the numpy
reference with outward rounding (certified values); this module's value equals its plain
``value`` up to floating-point rounding (tested).

Layers are 0-based as in :mod:`paper_repro.bounds.dual`: ``ẑ_{k+1} = W_k z_k + b_k``,
``z_0 = x``, ``z_k = relu(ẑ_k)``. With ``α = d = u/(u−l)`` the dual network is linear:
``ν_k = D_k ν̂_k`` with ``D_k`` of their Eq. 10.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _weights(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [(m.weight, m.bias) for m in lin]


def _input_term(
    nu_hat0: torch.Tensor, x: torch.Tensor, eps: float, clip: bool, lin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``min_{x′} −ν̂₀·x′`` and ``min_{x′} +ν̂₀·x′`` over the ε-ball (∩ [0,1]ⁿ if ``clip``).

    ``nu_hat0``: ``[B, m, n₀]``; ``x``: ``[B, n₀]``; ``lin``: ``ν̂₀·x`` (``[B, m]``, computed
    from the first layer's pre-activations, cheaper than from ``nu_hat0``). Returns two
    ``[B, m]`` tensors.
    """
    if clip:
        lo = torch.clamp(x - eps, min=0.0).unsqueeze(1)
        hi = torch.clamp(x + eps, max=1.0).unsqueeze(1)
        neg = torch.minimum(-nu_hat0 * lo, -nu_hat0 * hi).sum(-1)
        pos = torch.minimum(nu_hat0 * lo, nu_hat0 * hi).sum(-1)
        return neg, pos
    norm = eps * nu_hat0.abs().sum(-1)
    return -lin - norm, lin - norm


def _backward(
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    bounds: list[tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    eps: float,
    c: torch.Tensor,
    clip: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``J(c)`` and ``J(−c)`` (their Eq. 6) for objective rows ``c`` on the output of ``layers``.

    Args:
        layers: ``(W_k, b_k)`` for ``k = 0 … K−1``; ``c`` applies to ``ẑ_K``.
        bounds: ``(l_k, u_k)`` of the hidden pre-activations ``k = 1 … K−1`` (``[B, n_k]``).
        x: ``[B, n₀]``.
        c: ``[B, m, n_K]`` or ``[m, n_K]``.

    Returns:
        ``(J(c), J(−c))``, each ``[B, m]``: lower bounds on ``c·ẑ_K`` and on ``−c·ẑ_K``.
    """
    batch = x.shape[0]
    nu = -(c if c.dim() == 3 else c.unsqueeze(0).expand(batch, -1, -1))  # ν_K for c
    affine = torch.zeros(nu.shape[:2], dtype=x.dtype)  # −Σ ν_{k+1} b_k (sign flips for −c)
    relu_pos = torch.zeros_like(affine)  # Σ l [ν]_+ for c
    relu_neg = torch.zeros_like(affine)  # Σ l [−ν]_+ for −c
    for k in range(len(layers) - 1, -1, -1):
        w, b = layers[k]
        affine = affine - nu @ b
        nu_hat = nu @ w  # ν̂_k = ν_{k+1} W_k, [B, m, n_k]
        if k == 0:
            lin = (nu * (x @ w.T).unsqueeze(1)).sum(-1)  # ν̂₀·x = ν₁·(W₀x)
            break
        lo, hi = bounds[k - 1]
        unstable = (lo < 0) & (hi > 0)
        d = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), (lo >= 0).to(x.dtype))
        nu = d.unsqueeze(1) * nu_hat  # Eq. 7 with α = u/(u−l)
        l_unst = torch.where(unstable, lo, 0.0).unsqueeze(1)
        relu_pos = relu_pos + (l_unst * nu.clamp(min=0)).sum(-1)
        relu_neg = relu_neg + (l_unst * (-nu).clamp(min=0)).sum(-1)
    neg_in, pos_in = _input_term(nu_hat, x, eps, clip, lin)
    return affine + neg_in + relu_pos, -affine + pos_in + relu_neg


def _first_layer_bounds(
    w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, eps: float, clip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``J`` for ``c = ±I`` on ``ẑ_1 = W_0 x + b_0`` in closed form (Alg. 1's initialisation):
    ``W_0 x + b_0 ∓ ε‖W_0‖_{1,:}``, or with ``clip`` the exact box extremes — the same values
    as :func:`_backward` without its ``[B, n_1, n_0]`` dual tensors."""
    if clip:
        lo, hi = torch.clamp(x - eps, min=0.0), torch.clamp(x + eps, max=1.0)
        w_pos, w_neg = w.clamp(min=0), w.clamp(max=0)
        return lo @ w_pos.T + hi @ w_neg.T + b, hi @ w_pos.T + lo @ w_neg.T + b
    centre = x @ w.T + b
    radius = eps * w.abs().sum(dim=1)
    return centre - radius, centre + radius


def layer_bounds(
    model: nn.Module, x: torch.Tensor, eps: float, clip: bool = False
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Their Alg. 1: ``(l_k, u_k)`` of every hidden pre-activation ``ẑ_k`` over the L∞ ball of
    radius ``eps`` around each row of ``x`` (``[B, 784]``), each ``[B, n_k]``; differentiable."""
    layers = _weights(model)
    x = x.reshape(x.shape[0], -1)
    if len(layers) < 2:
        return []
    bounds = [_first_layer_bounds(*layers[0], x, eps, clip)]
    for k in range(2, len(layers)):
        eye = torch.eye(layers[k - 1][0].shape[0], dtype=x.dtype)
        lower, neg_upper = _backward(layers[:k], bounds, x, eps, eye, clip)
        bounds.append((lower, -neg_upper))
    return bounds


def margin_bounds(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, clip: bool = False
) -> torch.Tensor:
    """``J_ε(x, g(e_y 1ᵀ − I))`` (their Thm. 2 / Cor. 1): row ``j`` lower-bounds
    ``ẑ_y − ẑ_j`` over the ε-ball, ``[B, 10]`` with ``0`` at ``j = y``.

    Args:
        model: an MLP (``nn.Linear`` layers with ReLUs between them).
        x: ``[B, 784]`` in [0, 1]; y: ``[B]`` labels.
        eps: L∞ radius (pixel units in [0, 1]).
        clip: intersect the ball with [0, 1]ⁿ (tighter, still sound on the image domain); the
            paper's Eq. 6 is ``clip=False``.
    """
    x = x.reshape(x.shape[0], -1)
    layers = _weights(model)
    bounds = layer_bounds(model, x, eps, clip)
    classes = layers[-1][0].shape[0]
    eye = torch.eye(classes, dtype=x.dtype)
    c = eye[y].unsqueeze(1) - eye.unsqueeze(0)  # [B, m, classes]: row j = e_y − e_j
    lower, _ = _backward(layers, bounds, x, eps, c, clip)
    return lower


def robust_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, clip: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The robust cross-entropy of their Eq. 14, ``CE(−J_ε(x, g(e_y 1ᵀ − I)), y)`` averaged over
    the batch, and the robust error indicator (``[B]`` bool: some ``J_j < 0``, Cor. 1 fails;
    ties count as errors)."""
    j = margin_bounds(model, x, y, eps, clip)
    not_certified = (j + F.one_hot(y, j.shape[1]).to(j.dtype)).min(dim=1).values <= 0
    return F.cross_entropy(-j, y), not_certified
