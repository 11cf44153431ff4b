"""First incumbents for the exact engines: a targeted L∞ attack with a bisection over ε.

Carlini et al. (Sec. 3) start every search from an attack's adversarial example (``δ_max``). We use
targeted iterated FGSM from random starts (Kurakin et al.; :class:`~paper_repro.attacks.gradient.
IteratedFGSM`) in float64 torch, bisecting the smallest ε at which it succeeds; every candidate is
checked exactly (:func:`paper_repro.exact.witness.check_witness`), so the result is a valid witness
whatever the attack does. The L∞ witness is also an L1 witness (with its L1 distance).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from paper_repro.attacks.gradient import IteratedFGSM
from paper_repro.exact.witness import ExactNetwork, Witness, check_witness
from paper_repro.models import network_to_torch
from paper_repro.query import Norm, Query


def attack_incumbent(
    query: Query,
    target: int,
    seed: int = 0,
    restarts: int = 4,
    steps: int = 30,
    bisections: int = 7,
    seconds: float = 2.0,
    exact: ExactNetwork | None = None,
) -> Witness | None:
    """The closest exactly-checked adversarial example for ``target`` that the attack finds.

    Args:
        query: the query (its norm decides the reported distance).
        target: the class to reach.
        seed: RNG seed for the random starts.
        restarts: attack runs per ε (batched).
        steps: iterated-FGSM steps per run, step size ε/8.
        bisections: halvings of the ε interval after the first success.
        seconds: wall-time budget.
        exact: the network's exact form (built here if not given).

    Returns:
        The best :class:`Witness` (smallest distance in ``query.norm``), or ``None``.
    """
    deadline = time.monotonic() + seconds
    net = query.network
    model = network_to_torch(net, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(query.x, dtype=torch.float64).reshape(1, -1).repeat(restarts, 1)
    y = torch.full((restarts,), query.label, dtype=torch.long)
    tgt = torch.full((restarts,), target, dtype=torch.long)
    best: Witness | None = None
    exact = exact or ExactNetwork(net)

    def attempt(eps: float) -> bool:
        nonlocal best
        attack = IteratedFGSM(eps=eps, steps=steps, step_size=eps / 8.0)
        adv = attack(model, x, y, targets=tgt, generator=gen, num_classes=net.num_classes)
        logits = net.forward(adv.numpy())
        ok = np.flatnonzero(logits[:, target] >= logits.max(axis=1))
        if ok.size == 0:
            return False
        diff = adv.numpy()[ok] - query.x
        dist = np.abs(diff).max(axis=1) if query.norm == Norm.LINF else np.abs(diff).sum(axis=1)
        for i in ok[np.argsort(dist)]:  # closest first; the exact check is the slow part
            w = check_witness(exact, query.x, adv[i].numpy(), target, query.norm)
            if w is not None:
                if best is None or w.distance < best.distance:
                    best = w
                return True
        return False

    lo, hi = 0.0, 1.0
    if not attempt(hi):
        return None
    for _ in range(bisections):
        if time.monotonic() > deadline:
            break
        mid = (lo + hi) / 2.0
        if attempt(mid):
            hi = mid
        else:
            lo = mid
    return best
