"""Checks of a candidate point against one case of a VNN-LIB property: exactly, in rational
arithmetic (what ``sat`` rests on), and in the float32 model a user runs (reported beside it)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from paper_repro.exact.frontends.case_fold import polytope
from paper_repro.exact.witnesses.rational import exact_activations
from paper_repro.exact.witnesses.witness import ExactNetwork, exact_logits
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork
from paper_repro.vnnlib import Case


def check_point(
    network: ReluNetwork | ExactNetwork,
    case: Case,
    x: np.ndarray,
    rational: dict[int, Fraction] | None = None,
) -> tuple[list[Fraction], list[Fraction]] | None:
    """``(point, outputs)`` in exact rationals if the point — ``x`` (float64 ``[n]``) with the
    coordinates of ``rational`` replaced by those exact values — lies in ``case``'s box and meets
    every constraint of ``case`` exactly on ``network`` (strict ones strictly), else ``None``."""
    exact = network if isinstance(network, ExactNetwork) else ExactNetwork(network)
    xf = np.asarray(x, np.float64).reshape(-1)
    if not np.all(np.isfinite(xf)):
        return None
    point = [Fraction(float(v)) for v in xf]
    for i, v in (rational or {}).items():
        point[i] = v
    if not case.box.contains(point):
        return None
    y = exact_logits(exact, xf) if not rational else exact_activations(exact.network, point)[-1]
    return (point, y) if all(c.holds(y) for c in case.constraints) else None


def float32_slack(network: ReluNetwork, case: Case, x: np.ndarray) -> float:
    """``min_k (d_k − c_k·y)`` with ``y`` from the float32 torch model at ``x`` (``inf`` if the
    case has no constraint)."""
    import torch

    model = network_to_torch(network, torch.float32)
    with torch.no_grad():
        y = model(torch.as_tensor(np.asarray(x), dtype=torch.float32).reshape(1, -1))[0]
    y64 = y.double().numpy()
    c, d = polytope(case)
    return float(np.min(d - c @ y64)) if c.shape[0] else math.inf
