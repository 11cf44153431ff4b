"""Certified radii and robust error bounds (Wong & Kolter, Sec. 3.5: Cor. 1 and Eq. 17).

A radius ``ε`` is *certified* for ``(x, y)`` when the sound lower bounds on every margin
``Z_y − Z_j`` (``j ≠ y``) over ``{x′ ∈ [0,1]^n : ‖x′ − x‖ ≤ ε}`` are strictly positive (ties count
as adversarial in this project, so ``≥ 0`` would not do). The largest certified radius is found by
bisection on ``ε`` (the paper uses Newton's method on Eq. 17; bisection needs no monotonicity
argument: the returned ``ε`` is always one that was itself certified). It is a lower bound on the
exact minimal untargeted distance ``δ*`` (Carlini et al.).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from paper_repro.bounds.crown import (
    CrownOptions,
    LowerSlope,
    crown_margins,
    crown_rule,
    margin_matrix,
)
from paper_repro.bounds.dual import dual_bound, wong_kolter_rule
from paper_repro.bounds.outward import BoxRegion, layer_bounds, linear_lower_bound
from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm


class BoundMethod(enum.StrEnum):
    """``dual``: Wong–Kolter dual network; ``crown``: CROWN (both for L∞ and L1)."""

    DUAL = "dual"
    CROWN = "crown"


@dataclass(frozen=True)
class RadiusOptions:
    """Attributes:
    method: the bound; norm: ``linf`` or ``l1``; tol: bisection stops when the bracket is
    narrower than ``tol`` (pixel units); eps_max: the largest radius tried (default: 1 for L∞,
    ``n_0`` for L1); clip: intersect the ball with [0,1]^n (the query's domain)."""

    method: BoundMethod = BoundMethod.DUAL
    norm: Norm = Norm.LINF
    tol: float = 1e-6
    eps_max: float | None = None
    clip: bool = True


@dataclass(frozen=True)
class CertifiedRadius:
    """``radius``: largest certified ε found (0.0 if none); ``upper``: smallest ε that failed
    (``radius ≤ certifiable limit < upper`` for monotone bounds; ``inf`` if ``eps_max`` passed);
    ``calls``: bound evaluations."""

    radius: float
    upper: float
    calls: int


@dataclass(frozen=True)
class RobustError:
    """Wong & Kolter Cor. 1 over a set: ``bound`` = fraction of examples that are misclassified
    or not certified at ``eps`` (an upper bound on the error of any attack within ``eps``)."""

    bound: float
    clean_errors: int
    uncertified: int
    total: int
    eps: float


def margin_lower_bounds(
    net: ReluNetwork, x: np.ndarray, label: int, eps: float, options: RadiusOptions
) -> np.ndarray:
    """Sound lower bounds on ``Z_label − Z_j`` (``j ≠ label``, ``[n_L − 1]``) over the ε-ball."""
    c = margin_matrix(net.num_classes, label)
    if options.method == BoundMethod.DUAL:
        return dual_bound(net, x, eps, c, clip=options.clip, norm=options.norm).certified
    opts = CrownOptions(LowerSlope.ADAPTIVE, clip=options.clip)
    return crown_margins(net, x, eps, c, options.norm, opts).lower


def is_certified(
    net: ReluNetwork, x: np.ndarray, label: int, eps: float, options: RadiusOptions
) -> bool:
    """True if no ``x′`` within ``eps`` of ``x`` (in [0,1]^n) reaches or ties another class."""
    return bool(np.all(margin_lower_bounds(net, x, label, eps, options) > 0.0))


BATCH = 16
"""Images per call of the batched certificate (larger batches are slower: the ``[B, m, n₀]``
input-layer terms outgrow the cache; docs/engine.md has the measurement)."""


def margin_lower_bounds_batch(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray,
    eps: np.ndarray,
    options: RadiusOptions,
) -> np.ndarray:
    """:func:`margin_lower_bounds` for every row of ``xs`` (``[N, n₀]``) with its label (``[N]``)
    and radius (``[N]``, or one float), ``[N, n_L − 1]``: the same outward-rounded arithmetic
    (:mod:`paper_repro.bounds.outward`) on :data:`BATCH` boxes at a time. L∞ ball ∩ [0,1]^n only.
    """
    if Norm.parse(options.norm) != Norm.LINF or not options.clip:
        raise PaperReproError("batched certificates are implemented for the L∞ ball ∩ [0,1]^n only")
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    labels = np.asarray(labels).reshape(-1)
    eps = np.broadcast_to(np.asarray(eps, dtype=np.float64), labels.shape)
    if xs.shape[0] != labels.shape[0] or xs.shape[1] != net.input_dim:
        raise PaperReproError("margin_lower_bounds_batch needs [N, n0] images and N labels")
    if np.any(labels < 0) or np.any(labels >= net.num_classes):
        raise PaperReproError(f"labels must be classes of a {net.num_classes}-class network")
    if options.method == BoundMethod.DUAL:
        rule = wong_kolter_rule()
    else:
        rule = crown_rule(LowerSlope.ADAPTIVE)  # crown_margins' rule (CrownOptions' default)
    out = np.empty((xs.shape[0], net.num_classes - 1))
    for start in range(0, xs.shape[0], BATCH):
        end = min(start + BATCH, xs.shape[0])
        region = BoxRegion.linf_batch(xs[start:end], eps[start:end], clip=True)
        c = np.stack([margin_matrix(net.num_classes, int(y)) for y in labels[start:end]])
        bounds = layer_bounds(net, region, rule)
        out[start:end] = linear_lower_bound(net, c, len(net.weights), bounds, region, rule)
    return out


def certified_batch(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray,
    eps: np.ndarray,
    options: RadiusOptions,
) -> np.ndarray:
    """:func:`is_certified` for every row of ``xs`` at its radius ``eps`` → ``[N]`` bool."""
    return np.all(margin_lower_bounds_batch(net, xs, labels, eps, options) > 0.0, axis=1)


def certified_radius(
    net: ReluNetwork, x: np.ndarray, label: int, options: RadiusOptions = RadiusOptions()
) -> CertifiedRadius:
    """The largest ε (up to ``options.tol``) certified by ``options.method`` around ``x``.

    ``x``: ``[n_0]`` in [0, 1]; ``label``: the class to keep (use the prediction for Eq. 17).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not 0 <= label < net.num_classes:
        raise PaperReproError(f"label {label} is not a class of a {net.num_classes}-class network")
    if not options.tol > 0:
        raise PaperReproError(f"tol must be > 0, got {options.tol}")
    norm = Norm.parse(options.norm)
    eps_max = options.eps_max
    if eps_max is None:
        eps_max = 1.0 if norm == Norm.LINF else float(net.input_dim)
    calls = 1
    if not is_certified(net, x, label, 0.0, options):
        return CertifiedRadius(0.0, 0.0, calls)
    calls += 1
    if is_certified(net, x, label, eps_max, options):
        return CertifiedRadius(eps_max, float("inf"), calls)
    lo, hi = 0.0, eps_max
    while hi - lo > options.tol:
        mid = 0.5 * (lo + hi)
        calls += 1
        if is_certified(net, x, label, mid, options):
            lo = mid
        else:
            hi = mid
    return CertifiedRadius(lo, hi, calls)


def robust_error_bound(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray,
    eps: float,
    options: RadiusOptions = RadiusOptions(),
) -> RobustError:
    """Cor. 1 over ``xs`` (``[N, n_0]``) with true ``labels`` (``[N]``): misclassified clean
    points (argmax ≠ label, ties included) and points without a certificate count as errors."""
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    labels = np.asarray(labels).reshape(-1)
    if xs.shape[0] != labels.shape[0] or xs.shape[0] == 0:
        raise PaperReproError("robust_error_bound needs as many labels as (≥ 1) examples")
    logits = net.forward(xs)
    clean_errors = uncertified = 0
    for x, y, z in zip(xs, labels, logits, strict=True):
        y = int(y)
        if np.any(np.delete(z, y) >= z[y]):
            clean_errors += 1
        elif not is_certified(net, x, y, eps, options):
            uncertified += 1
    total = xs.shape[0]
    return RobustError((clean_errors + uncertified) / total, clean_errors, uncertified, total, eps)


def certified_radii(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray | None = None,
    options: RadiusOptions = RadiusOptions(),
) -> np.ndarray:
    """:func:`certified_radius` for each row of ``xs`` (``[N, n_0]``) → ``[N]`` radii.

    ``labels=None`` certifies the network's own prediction (Wong & Kolter's Eq. 17, "distance to
    the decision boundary"); with true labels, misclassified points get radius 0.
    """
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    if labels is None:
        labels = np.argmax(net.forward(xs), axis=1)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != xs.shape[0]:
        raise PaperReproError("certified_radii needs one label per example")
    return np.array(
        [certified_radius(net, x, int(y), options).radius for x, y in zip(xs, labels, strict=True)]
    )
