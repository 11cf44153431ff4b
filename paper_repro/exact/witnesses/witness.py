"""Independent checks of adversarial witnesses: exact rational arithmetic and float32 torch.

The network's float64 weights are the exact definition of the classifier (a float64 is a dyadic
rational). :func:`exact_margin` evaluates ``min_{j≠t} (logit_t − logit_j)`` at ``x′`` with no
rounding at all (big integers over a common power-of-two denominator, returned as a ``Fraction``);
:func:`exact_distance` computes ``‖x′ − x‖`` exactly. A witness is valid iff ``x′ ∈ [0,1]^n`` and
its exact margin is ``≥ 0`` (ties count, as in the query's ``logit_t ≥ logit_j``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from paper_repro.bounds.safe import gamma
from paper_repro.errors import PaperReproError
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


def _dyadic(values: np.ndarray) -> tuple[list[int], int]:
    """Exact integers ``m_i`` and shift ``e`` with ``values_i = m_i / 2**e`` (flattened; finite
    float64 values; ``e ≥ 0`` is the least such shift, as from ``float.as_integer_ratio``).

    Vectorised: ``frexp`` gives each value as an odd-reducible 53-bit integer times a power of
    two, and only the final shifts run on Python integers (about 10× faster than converting
    value by value, which took 2 ms per 784-pixel image)."""
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0:
        return [], 0
    frac, ex = np.frexp(v)  # v = frac · 2**ex, 0.5 ≤ |frac| < 1 (frac = 0 for v = 0)
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: at most 53 significant bits
    low = np.where(mant != 0, mant & -mant, 1)  # lowest set bit, to strip trailing zeros
    tz = np.frexp(low.astype(np.float64))[1] - 1
    odd = mant >> tz  # v = odd · 2**(ex − 53 + tz), exactly
    den = np.where(mant != 0, 53 - ex.astype(np.int64) - tz, 0)  # v = odd / 2**den
    e = max(0, int(den.max()))
    shifted = np.left_shift(odd.astype(object), (e - den).astype(object))
    return shifted.tolist(), e


_FORMS: dict[str, tuple[list, list]] = {}
"""Exact forms already built, by weights digest (content-addressed, so never stale)."""
_FORMS_KEPT = 8


class ExactNetwork:
    """The weights of a :class:`ReluNetwork` as exact dyadic integers (converted once per
    distinct weights in a process: about 15 ms for 784-24-24-10, which every query paid)."""

    def __init__(self, network: ReluNetwork) -> None:
        self.network = network
        key = network.digest()
        if key not in _FORMS:
            layers = [
                (_dyadic(w), _dyadic(b), w.shape)
                for w, b in zip(network.weights, network.biases, strict=True)
            ]
            # the integer weights as object arrays: numpy's object matmul runs the big-integer
            # products and sums in C (about half the time of a Python generator per row)
            matrices = [np.array(wi, dtype=object).reshape(shape) for (wi, _), _, shape in layers]
            while len(_FORMS) >= _FORMS_KEPT:
                del _FORMS[next(iter(_FORMS))]
            _FORMS[key] = (layers, matrices)
        self.layers, self.matrices = _FORMS[key]


def exact_logits(network: ReluNetwork | ExactNetwork, x: np.ndarray) -> list[Fraction]:
    """The logits at ``x`` (``[n_0]``) computed exactly from the float64 weights, ``[n_L]``."""
    exact = network if isinstance(network, ExactNetwork) else ExactNetwork(network)
    z, ez = _dyadic(x)
    for k, ((_, ew), (bi, eb), _) in enumerate(exact.layers):
        shift = ew + ez  # scale of w·z; bring b to the same scale
        if eb > shift:  # rescale products up so the bias fits exactly
            up = eb - shift
            z, ez, shift = [v << up for v in z], ez + up, eb
        acc = exact.matrices[k].dot(np.array(z, dtype=object))  # Python ints: exact
        new = [int(a) + (b << (shift - eb)) for a, b in zip(acc, bi, strict=True)]
        if k < len(exact.layers) - 1:
            new = [max(v, 0) for v in new]
        z, ez = new, shift
    return [Fraction(v, 1 << ez) for v in z]


def exact_margin(network: ReluNetwork | ExactNetwork, x: np.ndarray, target: int) -> Fraction:
    """``min_{j≠target} (logit_target − logit_j)`` at ``x``, exactly (≥ 0 ⇔ ``target`` is
    reached).
    """
    logits = exact_logits(network, x)
    return min(logits[target] - v for j, v in enumerate(logits) if j != target)


def exact_distance(x: np.ndarray, xprime: np.ndarray, norm: Norm) -> Fraction:
    """``‖x′ − x‖`` (L∞ or L1) in exact rationals."""
    xs = np.asarray(x, np.float64).ravel()
    ints, e = _dyadic(np.concatenate([np.asarray(xprime, np.float64).ravel(), xs]))
    n = xs.size
    diffs = [abs(a - b) for a, b in zip(ints[:n], ints[n:], strict=True)]
    total = max(diffs, default=0) if norm == Norm.LINF else sum(diffs)
    return Fraction(total, 1 << e)


def round_up(value: Fraction) -> float:
    """The smallest float64 ``≥ value``."""
    f = float(value)
    return f if Fraction(f) >= value else math.nextafter(f, math.inf)


def round_down(value: Fraction) -> float:
    """The largest float64 ``≤ value``."""
    f = float(value)
    return f if Fraction(f) <= value else math.nextafter(f, -math.inf)


def float32_margin(network: ReluNetwork, x: np.ndarray, target: int) -> float:
    """``min_{j≠t} (logit_t − logit_j)`` from the float32 torch copy of the network."""
    model = network_to_torch(network)
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(x), dtype=torch.float32).reshape(1, -1))[0]
    others = torch.cat([logits[:target], logits[target + 1 :]])
    return float(logits[target] - others.max())


@dataclass(frozen=True)
class Witness:
    """A checked adversarial example.

    Attributes:
        x: ``x′``, ``[n_0]``, in [0, 1].
        target: the class it reaches (exact margin ≥ 0).
        distance: ``‖x′ − x‖`` rounded up to float64 (the certified upper bound).
        margin: exact margin, as a float rounded down.
    """

    x: np.ndarray
    target: int
    distance: float
    margin: float


def check_witness(
    network: ReluNetwork | ExactNetwork,
    x: np.ndarray,
    xprime: np.ndarray,
    target: int,
    norm: Norm,
) -> Witness | None:
    """A :class:`Witness` if ``x′`` is in [0,1]^n and reaches ``target`` exactly, else ``None``."""
    xp = _in_box(x, xprime)
    if xp is None or float_margin_bounds(network, xp, target)[1] < 0.0:
        return None  # certainly not adversarial: skip the (slow) exact evaluation
    return _exact_witness(network, x, xp, target, norm)


def initial_witness(query: Query, initial: np.ndarray | None) -> Witness | None:
    """The closest exact witness among a user-supplied example checked against every target of
    ``query`` (``None``: no example, or it reaches none).

    Raises:
        PaperReproError: ``initial`` does not have ``query.x``'s size.
    """
    if initial is None:
        return None
    x0 = np.asarray(initial, dtype=np.float64).reshape(-1)
    if x0.shape != query.x.shape:
        raise PaperReproError(f"initial example has {x0.size} values, expected {query.x.size}")
    exact = ExactNetwork(query.network)
    found = [check_witness(exact, query.x, x0, t, query.norm) for t in query.targets()]
    found = [w for w in found if w is not None]
    return min(found, key=lambda w: w.distance) if found else None


def _in_box(x: np.ndarray, xprime: np.ndarray) -> np.ndarray | None:
    """``x′`` flattened to float64 if it has ``x``'s size, is finite and lies in [0,1]^n."""
    xp = np.asarray(xprime, np.float64).reshape(-1)
    if xp.shape != x.shape or not np.all(np.isfinite(xp)) or xp.min() < 0 or xp.max() > 1:
        return None
    return xp


def _exact_witness(
    network: ReluNetwork | ExactNetwork, x: np.ndarray, xp: np.ndarray, target: int, norm: Norm
) -> Witness | None:
    """The exact-rational half of :func:`check_witness` (``xp`` already validated)."""
    margin = exact_margin(network, xp, target)
    if margin < 0:
        return None
    dist = round_up(exact_distance(x, xp, norm))
    return Witness(x=xp.copy(), target=target, distance=dist, margin=round_down(margin))


def float_margin_bounds(
    network: ReluNetwork | ExactNetwork, x: np.ndarray, target: int
) -> tuple[float, float]:
    """An enclosure ``(lo, hi)`` of the exact margin ``min_{j≠t} (logit_t − logit_j)`` at ``x``
    (``[n_0]``) from one float64 forward pass and a forward error bound.

    Per layer, ``|fl(W â + b) − (W a + b)| ≤ |W| e + γ_{n+1} (|W| |â| + |b|)`` (Higham, Thm 3.5,
    any summation order), where ``e`` bounds the error of the previous layer's ``â`` (ReLU is
    1-Lipschitz) and ``n`` is the fan-in; the final subtraction adds ``u |m̂|``. The bound, itself
    computed in floats, is doubled. Used only to *reject* candidates without exact rationals
    (``hi < 0``): a speed filter; acceptance always goes through :func:`exact_margin`.
    """
    net = network.network if isinstance(network, ExactNetwork) else network
    a, err = np.asarray(x, np.float64), np.zeros(np.asarray(x).shape)
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        aw = np.abs(w)
        z = w @ a + b
        err = aw @ err + gamma(w.shape[1] + 1) * (aw @ np.abs(a) + np.abs(b))
        a = np.maximum(z, 0.0) if k < len(net.weights) - 1 else z
    others = np.arange(a.size) != target
    margins = a[target] - a[others]
    bound = 2.0 * (err[target] + err[others] + gamma(1) * np.abs(margins)) + 1e-300
    return float(np.min(margins - bound)), float(np.min(margins + bound))


def repair(
    network: ReluNetwork | ExactNetwork,
    x: np.ndarray,
    xprime: np.ndarray,
    target: int,
    norm: Norm,
) -> Witness | None:
    """Push a near-adversarial ``x′`` (float margin ≈ 0) over the decision boundary, then check.

    Steps along the local gradient of the worst margin (exact in ``x′``'s linear region), projected
    to [0,1], with step sizes doubling from 1e-13 to ~1.3e-5 (L∞ sign steps; L1 a single
    coordinate). Steps that :func:`float_margin_bounds` cannot place strictly on the target's side
    are passed over without the exact check. Returns the first exactly-valid point, or ``None``.
    """
    xp = np.clip(np.asarray(xprime, np.float64), 0.0, 1.0)
    found = check_witness(network, x, xp, target, norm)
    if found is not None:
        return found
    exact = network if isinstance(network, ExactNetwork) else ExactNetwork(network)
    network = exact.network
    direction = _margin_direction(network, xp, target, norm)
    for step in 1e-13 * 2.0 ** np.arange(0, 28):
        cand = _in_box(x, np.clip(xp + step * direction, 0.0, 1.0))
        if cand is None or not float_margin_bounds(exact, cand, target)[0] > 0.0:
            continue  # not certainly adversarial in floats: a larger step is cheaper than rationals
        found = _exact_witness(exact, x, cand, target, norm)
        if found is not None:
            return found
    return None


def _margin_direction(network: ReluNetwork, xp: np.ndarray, target: int, norm: Norm) -> np.ndarray:
    """The step (``[n]``) that raises the target's least margin fastest at ``xp``: the sign of
    its gradient (L∞), or the one coordinate with the largest gradient that has room (L1)."""
    logits = network.forward(xp)
    others = [j for j in range(network.num_classes) if j != target]
    j = others[int(np.argmin(logits[target] - logits[others]))]
    grad = _margin_gradient(network, xp, target, j)
    if norm == Norm.LINF:
        return np.sign(grad)
    room = np.where(grad > 0, 1.0 - xp, xp)
    i = int(np.argmax(np.abs(grad) * (room > 0)))
    direction = np.zeros_like(xp)
    direction[i] = np.sign(grad[i])
    return direction


def float32_repair(
    network: ReluNetwork | ExactNetwork,
    x: np.ndarray,
    w: Witness,
    norm: Norm,
    max_distance: float,
) -> Witness | None:
    """A witness near ``w`` valid both exactly and in the float32 model, at distance
    ``≤ max_distance`` from ``x``, or ``None``. "Valid in float32" asks for a float32 margin of
    at least 16 float32 ulps of the largest logit (``16 · 2⁻²³ · max |logit|``): float32 logits
    of the same point differ by a few ulps between a single-row and a batched forward pass
    (measured: a batch said +, one row −2.2e-8), so a margin of a few ulps would not survive
    the user's own evaluation.

    ``w`` is exactly adversarial but its float32 margin is negative (float32 rounding of a point
    on the decision boundary, typically −1e-7 … −1e-6). Steps along the exact margin gradient
    (L∞: its sign; L1: the single best coordinate), projected to [0,1], of sizes doubling from
    1e-9 to ~5e-4; the first candidate whose float32 margin (one row at a time, as
    :func:`float32_margin`) clears the threshold and that passes the exact check and the distance
    limit is returned."""
    exact = network if isinstance(network, ExactNetwork) else ExactNetwork(network)
    net = exact.network
    xp = np.asarray(w.x, np.float64)
    logits = net.forward(xp)
    direction = _margin_direction(net, xp, w.target, norm)
    steps = 1e-9 * 2.0 ** np.arange(20)
    cands = np.clip(xp[None, :] + steps[:, None] * direction[None, :], 0.0, 1.0)
    need = 16.0 * 2.0**-23 * float(np.abs(logits).max())
    model = network_to_torch(net)
    for cand in cands:
        with torch.no_grad():
            out = model(torch.as_tensor(cand, dtype=torch.float32).reshape(1, -1))[0]
        if float(out[w.target] - torch.cat([out[: w.target], out[w.target + 1 :]]).max()) < need:
            continue
        found = check_witness(exact, x, cand, w.target, norm)
        if found is not None and found.distance <= max_distance:
            return found
        if found is not None:
            return None  # larger steps are farther still
    return None


def _margin_gradient(network: ReluNetwork, x: np.ndarray, t: int, j: int) -> np.ndarray:
    """∂(logit_t − logit_j)/∂x at ``x`` (the linear region's gradient), ``[n_0]``."""
    g = network.weights[-1][t] - network.weights[-1][j]
    pre = network.pre_activations(x)
    for k in range(len(pre) - 1, -1, -1):
        g = (g * (pre[k] > 0)) @ network.weights[k]
    return g


def fit_within(
    network: ReluNetwork | ExactNetwork, x: np.ndarray, w: Witness, delta: float, norm: Norm
) -> Witness | None:
    """``w`` if its distance is ``≤ delta``; else ``x + c (w.x − x)`` for the largest tried
    ``c < 1`` that brings it within ``delta`` and stays exactly adversarial (LP points can overshoot
    the radius by a few ulps); ``None`` if none does."""
    if w.distance <= delta:
        return w
    base = delta / w.distance
    for shrink in (0.0, 1e-15, 1e-13, 1e-11):
        cand = np.clip(x + (base * (1.0 - shrink)) * (w.x - x), 0.0, 1.0)
        found = check_witness(network, x, cand, w.target, norm)
        if found is not None and found.distance <= delta:
            return found
    return None
