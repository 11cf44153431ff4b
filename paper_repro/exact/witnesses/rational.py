"""Exact rational evaluation of a query at a float64 point (no rounding anywhere).

Float64 weights, biases and inputs are dyadic rationals, so :class:`fractions.Fraction` represents
them exactly. Used by the SMT and Marabou back ends to accept only witnesses that are exactly
adversarial, and by the tests as an independent judge of every engine's witnesses.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


def frac(v: float | Fraction) -> Fraction:
    """``v`` as an exact rational (floats are converted exactly)."""
    if isinstance(v, Fraction):
        return v
    if not np.isfinite(v):
        raise PaperReproError(f"cannot convert the non-finite value {v} to a rational")
    return Fraction(float(v))


def exact_forward(query: Query, xp: list[Fraction]) -> list[list[Fraction]]:
    """Exact activations ``[z_1, …, z_{L−1}, logits]`` (lists of ``Fraction``) at input ``xp``."""
    return exact_activations(query.network, xp)


def exact_activations(net: ReluNetwork, xp: list[Fraction]) -> list[list[Fraction]]:
    """:func:`exact_forward` for a network without a query (e.g. a VNN-LIB point)."""
    z = xp
    out = []
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        fw = [[frac(v) for v in row] for row in w]
        h = [frac(b[j]) + sum((a * c for a, c in zip(fw[j], z, strict=True)), Fraction(0))
             for j in range(w.shape[0])]  # fmt: skip
        z = h if k == len(net.weights) - 1 else [max(v, Fraction(0)) for v in h]
        out.append(z)
    return out


def exact_margin(query: Query, witness: np.ndarray) -> tuple[Fraction, int]:
    """``max_t min_{j≠t} (Z_t − Z_j)`` over ``query.targets()`` at ``witness`` (``[n_0]``), exactly,
    with the maximising ``t``. ``≥ 0`` means ``witness`` is adversarial (ties count)."""
    xp = [frac(v) for v in np.asarray(witness, dtype=np.float64).reshape(-1)]
    logits = exact_forward(query, xp)[-1]
    best = None
    for t in query.targets():
        m = min(logits[t] - logits[j] for j in range(len(logits)) if j != t)
        if best is None or m > best[0]:
            best = (m, t)
    assert best is not None
    return best


def exact_distance(query: Query, witness: np.ndarray) -> Fraction:
    """``‖witness − x‖`` in the query's norm, exactly."""
    pairs = zip(np.asarray(witness, dtype=np.float64).reshape(-1), query.x, strict=True)
    diffs = [abs(frac(a) - frac(b)) for a, b in pairs]
    return max(diffs) if query.norm == Norm.LINF else sum(diffs, Fraction(0))


def repair_witness(query: Query, raw: np.ndarray, delta: float | Fraction) -> np.ndarray | None:
    """Pull a nearly-feasible float point (a solver's rounded model) exactly into
    ``[0,1]^n ∩ {‖x′ − x‖ ≤ δ}`` and return it if its exact margin is ``≥ 0``, else ``None``."""
    x = query.x
    w = np.clip(np.asarray(raw, dtype=np.float64).reshape(-1), 0.0, 1.0)
    bound = frac(delta)
    for _ in range(4):
        if exact_distance(query, w) <= bound:
            break
        if query.norm == Norm.LINF:
            d = float(bound)
            w = np.clip(w, x - d, x + d)
            far = np.array([abs(frac(a) - frac(b)) > bound for a, b in zip(w, x, strict=True)])
            w = np.where(far, np.nextafter(w, x), w)
        else:
            scale = float(bound / exact_distance(query, w)) * (1.0 - 1e-12)
            w = np.clip(x + (w - x) * scale, 0.0, 1.0)
    if exact_distance(query, w) > bound or exact_margin(query, w)[0] < 0:
        return None
    return w
