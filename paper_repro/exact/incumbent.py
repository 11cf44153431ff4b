"""First incumbents for the exact engines: a targeted L∞ attack with a bisection over ε.

Carlini et al. (Sec. 3) start every search from an attack's adversarial example (``δ_max``). We use
targeted iterated FGSM from random starts (Kurakin et al.; the update of
:class:`~paper_repro.attacks. gradient.IteratedFGSM`) in float64 torch, batched over a grid of
radii ε; every candidate is checked exactly (:func:`paper_repro.exact.witness.check_witness`), so
the result is a valid witness whatever the attack does. The L∞ witness is also an L1 witness (with
its L1 distance).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from paper_repro.exact.witness import ExactNetwork, Witness, check_witness
from paper_repro.models import network_to_torch
from paper_repro.query import Norm, Query


def attack_incumbent(
    query: Query,
    target: int,
    seed: int = 0,
    restarts: int = 2,
    steps: int = 25,
    grid: int = 12,
    seconds: float = 2.0,
    exact: ExactNetwork | None = None,
) -> Witness | None:
    """The closest exactly-checked adversarial example for ``target`` that the attack finds.

    Targeted iterated FGSM (Kurakin et al.; step ε/8, random start) run *batched over a grid of
    radii* ε: a geometric grid on (0, 1] first, then a linear grid between the last failing and the
    first succeeding radius.

    Args:
        query: the query (its norm decides the reported distance).
        target: the class to reach.
        seed: RNG seed for the random starts.
        restarts: runs per radius.
        steps: iterated-FGSM steps per run.
        grid: radii per round.
        seconds: wall-time budget (checked between rounds).
        exact: the network's exact form (built here if not given).

    Returns:
        The best :class:`Witness` (smallest distance in ``query.norm``), or ``None``.
    """
    deadline = time.monotonic() + seconds
    net = query.network
    exact = exact or ExactNetwork(net)
    model = network_to_torch(net, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(query.x, dtype=torch.float64).reshape(1, -1)
    best: Witness | None = None

    def run(eps_values: np.ndarray) -> np.ndarray:
        """Attack at every radius; returns the per-radius success flags."""
        nonlocal best
        eps = torch.as_tensor(np.repeat(eps_values, restarts), dtype=torch.float64)[:, None]
        xs = x.repeat(len(eps), 1)
        noise = torch.rand(xs.shape, generator=gen, dtype=torch.float64) * 2 - 1
        adv = _project(xs + eps * noise, xs, eps)
        tgt = torch.full((len(eps),), target, dtype=torch.long)
        for _ in range(steps):
            adv = adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(adv), tgt, reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            adv = _project(adv - eps / 8.0 * grad.sign(), xs, eps)
        adv_np = adv.detach().numpy()
        logits = net.forward(adv_np)
        ok = logits[:, target] >= logits.max(axis=1)
        diff = adv_np - query.x
        dist = np.abs(diff).max(axis=1) if query.norm == Norm.LINF else np.abs(diff).sum(axis=1)
        for i in np.flatnonzero(ok)[np.argsort(dist[ok])][:3]:  # the exact check is slow
            w = check_witness(exact, query.x, adv_np[i], target, query.norm)
            if w is not None and (best is None or w.distance < best.distance):
                best = w
        return ok.reshape(len(eps_values), restarts).any(axis=1)

    radii = np.geomspace(1.0 / 2 ** (grid - 1), 1.0, grid)
    ok = run(radii)
    if not ok.any():
        return None
    first = int(np.argmax(ok))
    lo = radii[first - 1] if first > 0 else 0.0
    if time.monotonic() < deadline:
        run(np.linspace(lo, radii[first], grid + 2)[1:-1])
    return best


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)
