"""A multi-restart PGD falsifier for box-input, polytope-output properties (before any BaB).

For each case ``k`` of a property (inputs in a box ``[lo, hi]``, outputs with ``C_k y ≤ d_k``)
PGD minimises the worst violation ``max_i (C_k y − d_k)_i`` over the box from ``restarts`` random
starts (the first at the box centre), in float32 torch: signed-gradient steps of
``2.5 (hi − lo) / steps`` per coordinate on average (decaying linearly from twice that to 0),
projected back onto the box. Every candidate with a
float32 violation ``≤ 0`` is offered to ``check`` (an exact judge, see
:mod:`paper_repro.exact.frontends.verify`); the first it accepts is returned. For the VNN-COMP MNIST
properties (``Y_j ≥ Y_label`` per case) this is PGD towards each class on the CW margin loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from paper_repro.exact.engines.input_split import InputSplitOptions
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork


@dataclass(frozen=True)
class PgdOptions:
    """``steps`` per run, ``restarts`` random starts per case, RNG ``seed``, ``chunk``: cases per
    batch, ``check_every``: steps between exact checks of the candidates, ``per_check``: most
    candidates per case sent to the exact judge at each check. A box with at most
    ``few_inputs`` inputs of non-zero width gets ``few_restarts`` starts per case instead (and
    proportionally fewer cases per batch): there a start is cheap and a 20-start search misses
    counterexamples a denser one finds at once (ACAS Xu 2_9 property 8: none with 20 starts,
    found with the first 1,000)."""

    steps: int = 100
    restarts: int = 20
    seed: int = 0
    chunk: int = 32
    check_every: int = 10
    per_check: int = 2
    few_inputs: int = InputSplitOptions.max_dim  # the boxes input bisection takes
    few_restarts: int = 1000


def pgd_falsify(
    network: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    polytopes: list[tuple[np.ndarray, np.ndarray]],
    check: Callable[[np.ndarray, int], bool],
    deadline: float,
    options: PgdOptions = PgdOptions(),
) -> tuple[np.ndarray, int] | None:
    """Search for an input in the box whose outputs satisfy one case's constraints.

    Args:
        network: the classifier.
        lo, hi: the box (float64, ``[n]``, ``lo ≤ hi``; floats inside the property's box).
        polytopes: per case ``(C, d)``, ``C``: ``[K, m]``, ``d``: ``[K]`` (float approximations;
            ``K = 0`` is allowed: any point of the box).
        check: ``check(x, case)`` — ``x``: float64 ``[n]`` in ``[lo, hi]``; the exact judge.
        deadline: ``time.monotonic()`` value after which the search stops.
        options: :class:`PgdOptions`.

    Returns:
        ``(x, case)`` for the first candidate ``check`` accepted, else ``None``.
    """
    model = network_to_torch(network, torch.float32)
    gen = torch.Generator().manual_seed(options.seed)
    lo_t = torch.as_tensor(lo, dtype=torch.float32)
    hi_t = torch.as_tensor(hi, dtype=torch.float32)
    # float32 rounding of the box must stay inside it: clip float64 candidates again later
    width = hi_t - lo_t
    step = 2.5 * width / max(1, options.steps)
    r, chunk = options.restarts, options.chunk
    if int((hi > lo).sum()) <= options.few_inputs:
        r = max(r, options.few_restarts)
        chunk = max(1, options.chunk * options.restarts // r)
    for first in range(0, len(polytopes), chunk):
        if time.monotonic() > deadline:
            return None
        part = polytopes[first : first + chunk]
        k_max = max(1, max(c.shape[0] for c, _ in part))
        m = network.num_classes
        cs = torch.zeros((len(part), k_max, m), dtype=torch.float32)
        ds = torch.full((len(part), k_max), 1e30, dtype=torch.float32)  # padding: never binds
        for i, (c, d) in enumerate(part):
            cs[i, : c.shape[0]] = torch.as_tensor(c, dtype=torch.float32)
            ds[i, : c.shape[0]] = torch.as_tensor(d, dtype=torch.float32)
        cs_b = cs.repeat_interleave(r, dim=0)  # [cases·r, K, m]
        ds_b = ds.repeat_interleave(r, dim=0)
        x = lo_t + width * torch.rand((len(part) * r, lo.size), generator=gen)
        x[::r] = lo_t + 0.5 * width
        for it in range(options.steps + 1):
            x.requires_grad_(True)
            y = model(x)
            viol = (torch.einsum("bkm,bm->bk", cs_b, y) - ds_b).amax(dim=1)
            done = it == options.steps or time.monotonic() > deadline
            if it % options.check_every == 0 or done:
                found = _check(
                    x.detach(), viol.detach(), (len(part), r, first), options, lo, hi, check
                )
                if found is not None:
                    return found
            if done:
                break
            (grad,) = torch.autograd.grad(viol.sum(), x)
            with torch.no_grad():
                decay = 2.0 * (1.0 - it / options.steps)  # linear decay, mean 1
                x = torch.minimum(torch.maximum(x - decay * step * grad.sign(), lo_t), hi_t)
        if time.monotonic() > deadline:
            return None
    return None


def _check(x, viol, where, options, lo, hi, check) -> tuple[np.ndarray, int] | None:
    """Offer each case's best candidates with float32 violation ≤ 0 to the exact judge
    (``where``: cases in the batch, restarts per case, index of the batch's first case)."""
    n_cases, r, first = where
    v = viol.reshape(n_cases, r)
    for i in range(n_cases):
        order = torch.argsort(v[i])
        for j in order[: options.per_check].tolist():
            if float(v[i, j]) > 0.0:
                break
            cand = np.clip(x[i * r + j].double().numpy(), lo, hi)
            if check(cand, first + i):
                return cand, first + i
    return None
